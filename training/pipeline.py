"""The Object Detection API pipeline config of a training run: a livedroid template (or the
user's own pipeline.config) filled with the dataset's classes and files, the training settings and
the start checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from livedroid.errors import UserError

if TYPE_CHECKING:  # prepare needs Pillow; `livedroid train --help` must not (the runtime-only install)
    from livedroid.training.dataset.prepare import PreparedDataset

TEMPLATES_DIR = Path(__file__).parent / "configs"
DEFAULT_TEMPLATE = "ssd_mobilenet_v2_300_coco_tf1"  # the architecture of the offline COCO weights
PIPELINE_FILE = "pipeline.config"


#: MobileNetV2 layers up to block 5 (stride 8): edges and textures, as useful for droids as for
#: COCO. Kept as they are by default: steps are faster and 100-300 photos cannot improve them.
EARLY_MOBILENET_LAYERS = [r"(^|/)(bn_)?Conv1/", r"(^|/)expanded_conv_", r"(^|/)block_[1-5]_"]


@dataclass
class TrainSettings:
    """What a user tunes; the defaults are the recipe measured in models/star-wars/MODEL_CARD.md.
    ``learning_rate`` is the cosine schedule's peak, reached after a linear warm-up over the first
    tenth of the steps (200 at most). 1500 steps (92 epochs of star-wars' 130 photos) halve the
    3000 of the shipped model at the same validation figures within run-to-run noise (card, row 5)."""

    batch_size: int = 8
    steps: int = 1500
    learning_rate: float = 0.004
    freeze_early_layers: bool = True
    #: Global norm a step's gradients are scaled down to when above it, so that one odd batch cannot
    #: throw weights out of range (the drone set, issue 33). Measured norms: 100-200 in the first 5
    #: steps (new class head), 25-50 by step 10, on star-wars and the drone set alike; 10 would have
    #: slowed every step.
    gradient_clip_norm: float = 100.0


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.config"))


def build_pipeline(
    dataset: PreparedDataset,
    settings: TrainSettings,
    *,
    template: str | None = None,
    config_path: Path | None = None,
    checkpoint: Path | None = None,
):
    """A ``TrainEvalPipelineConfig`` ready to train.

    With ``config_path`` the user's model, optimizer and augmentations are kept and only the
    classes, files, batch size, steps and checkpoint are set; a template also gets livedroid's
    learning-rate schedule. ``checkpoint`` is a detection checkpoint prefix: its backbone and
    box-predictor tower are restored, the class head is new.
    """
    from livedroid.training import compat  # noqa: F401  (before the API's protos)
    from object_detection.protos import train_pb2

    if config_path is not None and template is not None:
        raise UserError("give either --config or --model, not both")
    source = Path(config_path) if config_path else TEMPLATES_DIR / f"{template or DEFAULT_TEMPLATE}.config"
    if not source.is_file():
        raise UserError(f"model template '{template}' not found (choose from {', '.join(template_names())})"
                        if config_path is None else f"pipeline config not found: {config_path}")
    config = parse_pipeline(source.read_text(encoding="utf-8"), str(source))
    architecture = config.model.WhichOneof("model")
    if architecture is None:
        raise UserError(f"{source}: has no model {{ ... }} section")
    getattr(config.model, architecture).num_classes = max(dataset.label_map)

    train = config.train_config
    train.batch_size = settings.batch_size
    train.num_steps = settings.steps
    if config_path is None:
        _set_schedule(train.optimizer, settings)
        train.gradient_clipping_by_norm = settings.gradient_clip_norm
        train.ClearField("freeze_variables")
        if settings.freeze_early_layers and "mobilenet" in getattr(config.model, architecture).feature_extractor.type:
            train.freeze_variables.extend(EARLY_MOBILENET_LAYERS)
    train.ClearField("fine_tune_checkpoint")
    if checkpoint is not None:
        train.fine_tune_checkpoint = str(checkpoint)
        train.fine_tune_checkpoint_type = "detection"
        train.fine_tune_checkpoint_version = train_pb2.CheckpointVersion.Value("V2")

    reader = config.train_input_reader
    reader.label_map_path = str(dataset.label_map_path.resolve())
    reader.tf_record_input_reader.ClearField("input_path")
    reader.tf_record_input_reader.input_path.append(str(Path(dataset.train_pattern).resolve()))
    config.eval_config.metrics_set[:] = ["coco_detection_metrics"]
    del config.eval_input_reader[:]
    evaluation = config.eval_input_reader.add()
    evaluation.label_map_path = reader.label_map_path
    evaluation.shuffle = False
    evaluation.num_epochs = 1
    evaluation.tf_record_input_reader.input_path.append(str(Path(dataset.val_pattern).resolve()))
    return config


def parse_pipeline(text: str, source: str):
    """Parse pipeline config text; a syntax error becomes a UserError naming the line."""
    from livedroid.training import compat  # noqa: F401
    from google.protobuf import text_format
    from object_detection.protos import pipeline_pb2

    config = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        text_format.Merge(text, config)
    except text_format.ParseError as error:
        raise UserError(f"{source}: not a valid pipeline config ({error})") from None
    return config


def save_pipeline(config, folder: Path) -> Path:
    from google.protobuf import text_format

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PIPELINE_FILE
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    return path


def load_pipeline(folder: Path):
    """The pipeline config a ``fit`` run saved in its folder."""
    path = Path(folder) / PIPELINE_FILE
    if not path.is_file():
        raise UserError(f"{folder} has no {PIPELINE_FILE}: run 'livedroid train fit' first")
    return parse_pipeline(path.read_text(encoding="utf-8"), str(path))


def _set_schedule(optimizer, settings: TrainSettings) -> None:
    """Momentum SGD with linear warm-up then cosine decay, the zoo models' own schedule."""
    warmup = min(200, settings.steps // 10)
    optimizer.Clear()
    momentum = optimizer.momentum_optimizer
    momentum.momentum_optimizer_value = 0.9
    cosine = momentum.learning_rate.cosine_decay_learning_rate
    cosine.learning_rate_base = settings.learning_rate
    cosine.total_steps = settings.steps
    cosine.warmup_learning_rate = settings.learning_rate / 3 if warmup else settings.learning_rate
    cosine.warmup_steps = warmup
    optimizer.use_moving_average = False
