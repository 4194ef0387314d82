"""Pipeline configs: templates and user configs filled with the dataset and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from livedroid.errors import UserError
from tests.conftest import needs_module
from tests.training.conftest import make_voc_dataset
from livedroid.training.dataset.prepare import prepare_dataset
from livedroid.training.pipeline import TrainSettings, build_pipeline, load_pipeline, save_pipeline, template_names

needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return prepare_dataset(make_voc_dataset(root / "data"), root / "prepared")


@pytest.mark.parametrize("template", template_names())
def test_every_template_is_filled(prepared, template):
    config = build_pipeline(prepared, TrainSettings(batch_size=4, steps=300, learning_rate=0.01), template=template, checkpoint=Path("/ckpt/ckpt-0"))
    assert config.model.ssd.num_classes == 2
    assert (config.train_config.batch_size, config.train_config.num_steps) == (4, 300)
    cosine = config.train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate
    assert (cosine.learning_rate_base, cosine.total_steps, cosine.warmup_steps) == (pytest.approx(0.01), 300, 30)
    assert config.train_config.gradient_clipping_by_norm == TrainSettings.gradient_clip_norm == 100  # the drone set's spikes
    assert config.train_config.fine_tune_checkpoint == "/ckpt/ckpt-0"
    assert config.train_config.fine_tune_checkpoint_type == "detection"
    assert config.train_config.data_augmentation_options  # the template's own are kept
    assert config.train_input_reader.tf_record_input_reader.input_path[0].endswith("train-?????-of-00001.record")
    assert config.eval_input_reader[0].tf_record_input_reader.input_path[0].endswith("val-?????-of-00001.record")


def test_user_config_keeps_its_model_and_optimizer(prepared, tmp_path):
    base = build_pipeline(prepared, TrainSettings(learning_rate=0.123, gradient_clip_norm=3), template="ssd_mobilenet_v2_320")
    base.model.ssd.num_classes = 90
    user = save_pipeline(base, tmp_path / "mine")
    config = build_pipeline(prepared, TrainSettings(learning_rate=0.5, steps=7), config_path=user)
    assert config.model.ssd.num_classes == 2
    assert config.train_config.num_steps == 7
    cosine = config.train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate
    assert cosine.learning_rate_base == pytest.approx(0.123)
    assert config.train_config.gradient_clipping_by_norm == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"template": "yolo"}, "model template 'yolo' not found"),
        ({"config_path": Path("/nowhere/pipeline.config")}, "pipeline config not found"),
    ],
)
def test_bad_model_choice_is_a_user_error(prepared, kwargs, message):
    with pytest.raises(UserError, match=message):
        build_pipeline(prepared, TrainSettings(), **kwargs)


def test_syntax_error_in_a_user_config_names_the_file(prepared, tmp_path):
    broken = tmp_path / "pipeline.config"
    broken.write_text("model { ssd { num_classes: two } }")
    with pytest.raises(UserError, match=r"pipeline.config: not a valid pipeline config \(1:"):
        build_pipeline(prepared, TrainSettings(), config_path=broken)


def test_saved_pipeline_loads_back(prepared, tmp_path):
    save_pipeline(build_pipeline(prepared, TrainSettings(steps=5)), tmp_path)
    assert load_pipeline(tmp_path).train_config.num_steps == 5
    with pytest.raises(UserError, match="run 'livedroid train fit' first"):
        load_pipeline(tmp_path / "empty")


@pytest.mark.parametrize("template", template_names())
def test_tflite_export_is_offered_for_mobilenet_ssds_only(prepared, template):
    from livedroid.training.export import _tflite_ready

    assert _tflite_ready(build_pipeline(prepared, TrainSettings(), template=template)) == ("mobilenet" in template)
