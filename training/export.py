"""``livedroid train export``: the trained checkpoint as a SavedModel (batch input) and as TFLite
float32, float16 and full-int8 files with labels packed, and with ``--onnx`` the SavedModel as ONNX
(tf2onnx), in a folder ``livedroid run`` plays; then a check that each file finds what the
SavedModel finds on validation images."""

from __future__ import annotations

import glob
import io
import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from livedroid.detections import Detections, best_same_class
from livedroid.errors import UserError, first_line
from livedroid.labels import format_label_map, load_labels
from livedroid.training.dataset.tfrecords import read_records
from livedroid.training.pipeline import load_pipeline

#: Output file of each TFLite variant; ``livedroid run`` prefers model_int8.tflite, then model.tflite.
TFLITE_FILES = {"float32": "model.tflite", "float16": "model_float16.tflite", "int8": "model_int8.tflite"}
#: The SavedModel as ONNX (``--onnx``): tf2onnx keeps its input (uint8 frames of any size and
#: batch) and its output names, which livedroid's ``saved_model`` layout reads.
ONNX_FILE = "model.onnx"
ONNX_OPSET = 17
#: Name under which the batch-input module is registered with the API's exporter.
BATCH_INPUT = "image_batch"
AGREEMENT_MIN_SCORE = 0.5
AGREEMENT_MIN_IOU = 0.5


@dataclass
class Agreement:
    """How many SavedModel detections (score >= ``min_score``, or each image's best) a TFLite file
    finds again: same class, IoU >= 0.5, its own score at least half as high (int8 lowers scores)."""

    variant: str
    images: int
    reference: int
    matched: int
    mean_iou: float | None
    min_score: float

    def __str__(self) -> str:
        iou = f"; mean IoU {self.mean_iou:.3f}" if self.mean_iou is not None else ""
        return (
            f"{self.variant:>8}: {self.matched}/{self.reference} SavedModel detections (score >= "
            f"{self.min_score:g}, or each image's best) found again on {self.images} validation images{iou}"
        )


class VariantFailed(UserError):
    """A TFLite variant could not be written; the files before it were (float before int8), and
    their agreement with the SavedModel saved in export.json."""

    def __init__(self, variant: str, reason: str, out_dir: Path, written: list[str]) -> None:
        self.variant, self.reason, self.out_dir, self.written = variant, reason, out_dir, written
        super().__init__(f"TFLite {variant}: {TFLITE_FILES[variant]} {reason}; written in {out_dir}: {', '.join(written)}")

    @property
    def written_quantizations(self) -> list[str]:
        """The TFLite variants written before the failure (float ones)."""
        return [quantization for quantization, name in TFLITE_FILES.items() if name in self.written]

    @property
    def playable(self) -> Path | None:
        """The float TFLite file written, which livedroid can play instead, if any."""
        written = self.written_quantizations
        return self.out_dir / TFLITE_FILES[written[-1]] if written else None


def export(
    model_dir: Path,
    out_dir: Path,
    *,
    quantizations: tuple[str, ...] = ("float32", "float16", "int8"),
    max_detections: int = 100,
    calibration_images: int = 100,
    check_images: int = 20,
    agreement_min_score: float = AGREEMENT_MIN_SCORE,
    onnx: bool = False,
) -> list[Agreement]:
    """Write ``out_dir/saved_model``, ``out_dir/model*.tflite``, with ``onnx`` ``out_dir/model.onnx``,
    and ``out_dir/label_map.pbtxt``; return the agreement of each file with the SavedModel (also
    saved as export.json).
    Float variants are written before int8, and int8 alone brings float16 with it, so that an int8
    file that fails (:class:`VariantFailed`) leaves a float model to play.
    Models whose TFLite graph livedroid cannot feed (see ``_tflite_ready``) get the SavedModel only."""
    from livedroid.training.compat import tf
    from object_detection import exporter_lib_v2
    from tensorflow.lite.python.convert_phase import ConverterError  # what tf.lite's converter raises

    from livedroid.training.tflite_export import ModelCannotRun, convert_saved_model_to_tflite

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    config = load_pipeline(model_dir)
    if tf.train.latest_checkpoint(str(model_dir)) is None:
        raise UserError(f"{model_dir} has no checkpoint: run 'livedroid train fit' first")
    labels = load_labels(config.train_input_reader.label_map_path)
    if quantizations and not _tflite_ready(config):
        print("note: TFLite export needs an SSD with a MobileNet feature extractor: writing the SavedModel only")
        quantizations = ()
    quantizations = floats_first(quantizations)

    out_dir.mkdir(parents=True, exist_ok=True)
    with _timed("SavedModel"):
        exporter_lib_v2.DETECTION_MODULE_MAP[BATCH_INPUT] = _batch_module_class(tf, exporter_lib_v2)
        exporter_lib_v2.export_inference_graph(BATCH_INPUT, config, str(model_dir), str(out_dir))
    (out_dir / "label_map.pbtxt").write_text(format_label_map(labels), encoding="utf-8")
    if onnx:
        with _timed("ONNX"):
            save_onnx(out_dir / "saved_model", out_dir / ONNX_FILE, labels)

    written, failure = {}, None
    train_images = _images(config.train_input_reader.tf_record_input_reader.input_path, calibration_images)
    with tempfile.TemporaryDirectory(prefix="livedroid-tflite-graph-") as graph_dir:
        if quantizations:
            with _timed("TFLite graph"):
                save_tflite_graph(config, model_dir, Path(graph_dir), max_detections)
        for quantization in quantizations:
            (out_dir / TFLITE_FILES[quantization]).unlink(missing_ok=True)  # never a stale file beside new ones
            with _timed(f"TFLite {quantization}"):
                try:
                    convert_saved_model_to_tflite(
                        graph_dir,
                        out_dir / TFLITE_FILES[quantization],
                        quantization=quantization,
                        representative_images=train_images if quantization == "int8" else None,
                        labels=labels,
                    )
                except ModelCannotRun as error:
                    failure = (quantization, f"cannot run in LiteRT with XNNPACK ({error}; weights blown up "
                                             "in training give int8 scales XNNPACK refuses)")
                except (ValueError, ConverterError) as error:
                    failure = (quantization, f"conversion failed ({first_line(error)})")
            if failure:
                break
            written[quantization] = TFLITE_FILES[quantization]
    files = written | ({"onnx": ONNX_FILE} if onnx else {})
    if not files:
        if failure:
            raise VariantFailed(*failure, out_dir, ["saved_model"])
        return []

    check = _images(config.eval_input_reader[0].tf_record_input_reader.input_path, check_images)
    with _timed("agreement check"):
        from livedroid.detectors import load_detector

        reference = load_detector(out_dir).detect(check)
        agreements = [
            compare(reference, load_detector(out_dir / name, threads=2).detect(check), variant, agreement_min_score)
            for variant, name in files.items()
        ]
    (out_dir / "export.json").write_text(json.dumps([asdict(a) for a in agreements], indent=2), encoding="utf-8")
    print(f"\nexported to {out_dir}; agreement with the SavedModel:")
    for agreement in agreements:
        print(f"  {agreement}")
    if failure:
        raise VariantFailed(*failure, out_dir, ["saved_model", *files.values(), "export.json"])
    return agreements


def floats_first(quantizations: tuple[str, ...]) -> tuple[str, ...]:
    """The TFLite variants in the order written: float32, float16, int8; int8 alone brings float16."""
    if quantizations and set(quantizations) == {"int8"}:
        quantizations = ("float16", "int8")
    return tuple(q for q in TFLITE_FILES if q in quantizations)


def save_onnx(saved_model: Path, path: Path, labels: dict[int, str]) -> None:
    """The SavedModel's ``serving_default`` as ONNX, by tf2onnx in its own process (it holds the
    graph twice over in memory and logs pages), with the labels in the model's metadata as
    Ultralytics writes them (``names``: class index → name), so the file plays on its own."""
    import onnx

    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--output", str(path),
               "--opset", str(ONNX_OPSET), "--signature_def", "serving_default"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not path.is_file():
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"tf2onnx failed (exit {result.returncode}): {lines[-1] if lines else 'no output'}")
    model = onnx.load(str(path))
    model.metadata_props.add(key="names", value=repr({label_id - 1: name for label_id, name in sorted(labels.items())}))
    onnx.save(model, str(path))


def _batch_module_class(tf, exporter_lib_v2):
    """The exporter's ``image_tensor`` module takes one frame ([1, H, W, 3]); this one takes a
    batch of same-sized uint8 frames, which ``livedroid run --batch`` feeds in one call."""

    class DetectionFromImageBatchModule(exporter_lib_v2.DetectionInferenceModule):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
        def __call__(self, input_tensor):
            images, true_shapes = self._preprocess_input(input_tensor, lambda image: image)
            return self._run_inference_on_images(images, true_shapes)

    return DetectionFromImageBatchModule


def _tflite_ready(config) -> bool:
    """Whether the TFLite graph's input is the image scaled to [-1, 1], as livedroid's TFLite
    runtime and the int8 calibration feed it: true of SSDs with MobileNet feature extractors (the
    API's TFLite graph takes the preprocessed input, and ResNet's subtracts channel means)."""
    return config.model.WhichOneof("model") == "ssd" and "mobilenet" in config.model.ssd.feature_extractor.type


def save_tflite_graph(config, model_dir: Path, out_dir: Path, max_detections: int) -> None:
    """What the API's ``export_tflite_graph_tf2`` writes (its ``SSDModule``: image in, the
    ``TFLite_Detection_PostProcess`` placeholder out), with the outputs named in the signature.

    The API's own export returns them as an unnamed tuple, which the converter lists as
    ``output_0..3``; livedroid's TFLite runtime finds outputs by name (``detection_boxes`` …).
    """
    from livedroid.training.compat import tf
    from object_detection.builders import model_builder
    from object_detection.export_tflite_graph_lib_tf2 import SSDModule

    from livedroid.training.ssd_tflite_graph import OUTPUT_NAMES

    model = model_builder.build(config.model, is_training=False)
    tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(str(model_dir))).expect_partial()
    ssd = SSDModule(config, model, max_detections, False)  # False: fast NMS, see ssd_tflite_graph

    class NamedOutputs(tf.Module):
        def __init__(self):
            super().__init__()
            self.ssd = ssd  # tracks the model's variables

        @tf.function(input_signature=[tf.TensorSpec(ssd.input_shape(), tf.float32, name="input")])
        def detect(self, image):
            # inference_fn returns the post-process outputs reversed (count, scores, classes, boxes).
            return dict(zip(reversed(OUTPUT_NAMES), self.ssd.inference_fn(image)))

    module = NamedOutputs()
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.detect})


def compare(reference: list[Detections], candidate: list[Detections], variant: str, min_score: float) -> Agreement:
    """Match each image's reference detections (score >= ``min_score``, and at least its best
    one, so that a barely trained model is compared too) with the candidate's."""
    found, ious = 0, []
    for expected, got in zip(reference, candidate):
        best = float(expected.scores.max()) if len(expected) else 0.0
        expected = expected.select(min_score=min(min_score, best))
        got = got.select(min_score=min(min_score, best) / 2)
        found += len(expected)
        for box, class_id in zip(expected.xyxy, expected.class_ids):
            match = best_same_class(box, class_id, got.xyxy, got.class_ids)
            if match and match[1] >= AGREEMENT_MIN_IOU:
                ious.append(match[1])
    return Agreement(variant, len(reference), found, len(ious), float(np.mean(ious)) if ious else None, min_score)


@contextmanager
def _timed(what: str):
    """Say what runs and how long it took; TensorFlow's C++ info lines (the MLIR pass notes of
    the graph step, the converter's) are dropped from each step's output."""
    from livedroid.training.compat import native_logs_dropped

    print(f"{what} …", flush=True)
    began = time.perf_counter()
    with native_logs_dropped():
        yield
    print(f"{what}: {time.perf_counter() - began:.0f} s", flush=True)


def _images(patterns, limit: int) -> list[np.ndarray]:
    paths = sorted(Path(p) for pattern in patterns for p in glob.glob(pattern))
    return [np.asarray(Image.open(io.BytesIO(s.image_bytes)).convert("RGB")) for s in read_records(paths, limit)]
