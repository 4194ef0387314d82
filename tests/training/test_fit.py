"""The training loop's Ctrl-C handling and its guard against blow-ups (the loop itself runs in the
end-to-end test)."""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

from tests.conftest import needs_module
from tests.training.conftest import make_voc_dataset
from livedroid.training.fit import _stop_on_interrupt
from livedroid.training.loss_guard import TERMS, Diverged, Guard, LossJudge


def test_first_ctrl_c_asks_to_stop_and_the_second_interrupts():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where CI starts us in the background
    with _stop_on_interrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


# The guard -----------------------------------------------------------------------------------


def losses(classification: float, localization: float = 0.5, regularization: float = 0.49) -> dict[str, float]:
    return {TERMS["classification"]: classification, TERMS["localization"]: localization, TERMS["regularization"]: regularization}


# Steps 70-90 of the drone set's run (classification loss; step 79's is 4x its neighbours').
DRONE_CLASSIFICATION = [2.5, 2.2, 3.1, 2.0, 2.7, 2.2, 2.4, 3.3, 2.6, 10.6, 2.7, 2.3, 2.9, 2.1, 2.4, 2.8, 2.2, 2.5, 3.0, 2.6]


def test_the_judge_lets_ordinary_noise_pass():
    judge = LossJudge()
    assert all(judge.blow_up(losses(value, regularization=0.49 - i * 1e-4)) is None for i, value in enumerate(DRONE_CLASSIFICATION * 3))


@pytest.mark.parametrize(
    "step, expected",
    [
        (losses(float("nan")), "the classification loss is nan"),
        (losses(2.5, localization=float("inf")), "the localization loss is inf"),
        (losses(732.0), "the classification loss jumped to 732, 287x its median of the last 50 steps (2.55)"),
        (losses(2.5, regularization=2150.0), "the regularization loss left its range: 2150, 4,388x its lowest of the run (0.49)"),
    ],
)
def test_the_judge_names_what_blew_up(step, expected):
    judge = LossJudge()
    for value in DRONE_CLASSIFICATION * 3:
        judge.blow_up(losses(value))
    if "jumped" in expected:  # a spike is a blow-up only on its third step in a row
        assert [judge.blow_up(step), judge.blow_up(step)] == [None, None] and judge.suspect
    assert judge.blow_up(step).startswith(expected)
    assert judge.blow_up(losses(2.5)) is None and not judge.suspect  # the blown-up steps did not join the history


def test_one_hard_batch_is_suspect_not_a_blow_up_and_costs_the_run_nothing():
    """The drone run's steps 153-155: classification loss 7.1, 27.4 (9.4x its median), then 1.6."""
    needs_module("tensorflow", "TensorFlow (pip install 'livedroid[train]') is not installed")
    from livedroid.training.compat import tf

    weight, scale = tf.Variable(0.0), tf.Variable(1.0)
    guard = Guard(lambda: [weight], scale, 0, every=5)
    steps = DRONE_CLASSIFICATION * 3 + [40.0, 2.4, 40.0, 40.0, 2.6]  # spikes of 1 and 2 steps, then calm
    assert all(guard.after_step(step, losses(value)) is None for step, value in enumerate(steps, 1))
    assert (guard.rollbacks, scale.numpy()) == (0, 1.0)


def test_the_guard_goes_back_to_confirmed_weights_at_a_lower_rate_then_gives_up():
    needs_module("tensorflow", "TensorFlow (pip install 'livedroid[train]') is not installed")
    from livedroid.training.compat import tf

    weight, scale = tf.Variable(0.0), tf.Variable(1.0)
    guard = Guard(lambda: [weight], scale, 0, max_rollbacks=2, every=5)
    for step in range(1, 13):  # copies at steps 5 and 10; the one of step 5 is confirmed at step 10
        weight.assign(float(step))
        assert guard.after_step(step, losses(2.5)) is None
    weight.assign(1e6)
    event = guard.after_step(13, losses(float("nan")))
    assert event == "step 13: the classification loss is nan; back to the weights of step 5, learning rate now 0.5x the schedule (1 of 2 returns)"
    assert (weight.numpy(), scale.numpy()) == (5.0, 0.5)
    assert guard.after_step(14, losses(2.5, regularization=1.5)).startswith("step 14: the regularization loss left its range")
    assert scale.numpy() == 0.25
    weight.assign(-1.0)
    with pytest.raises(Diverged, match="^step 15: the classification loss is nan, 3 times now, the last at 0.25x the learning rate$"):
        guard.after_step(15, losses(float("nan")))
    assert weight.numpy() == 5.0  # the good weights are back for the caller to save


@pytest.mark.slow
def test_a_run_made_to_blow_up_stops_in_one_line_on_its_good_weights(tmp_path, capsys):
    """A learning rate of 1,000 blows the weights up at step 2 (the regularization term 6,112
    against 0.063); the guard goes back to the start weights three times at ever lower rates, then
    stops and saves those weights."""
    needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
    from livedroid.training.cli import main
    from livedroid.training.compat import tf

    dataset, run = tmp_path / "dataset", tmp_path / "run"
    assert main(["prepare", str(make_voc_dataset(tmp_path / "data")), "--out", str(dataset)]) == 0
    fit = ["fit", "--data", str(dataset), "--out", str(run), "--steps", "30", "--model", "ssd_mobilenet_v2_320",
           "--batch-size", "2", "--pretrained", "none", "--learning-rate", "1000"]
    assert main(fit) == 2

    output = capsys.readouterr()
    assert "guard: a loss term that explodes sends the weights back to an in-memory copy" in output.out
    (error,) = [line[line.index("livedroid: error"):] for line in output.err.splitlines() if "livedroid: error" in line]
    assert error.startswith("livedroid: error: training stopped: step ") and ", 4 times now, the last at 0.125x the learning rate." in error
    assert output.out.count("guard: step ") == 3  # each return said so above the bar
    assert error.endswith(f"The weights of step 0, before it, are saved as {run}/ckpt-0: export them with "
                          f"'livedroid train export --run {run} --out models/NAME', or start again with a lower --learning-rate")
    events = (run / "train" / "guard.log").read_text().splitlines()
    assert len(events) == 4 and all("back to the weights of step 0" in line for line in events[:3])
    steps = [line.split(",")[0] for line in (run / "train" / "losses.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2"] * 4  # each return goes back to step 0 and trains on from there

    assert tf.train.latest_checkpoint(str(run)) == str(run / "ckpt-0")
    saved = tf.train.load_checkpoint(str(run / "ckpt-0"))
    assert saved.get_tensor("learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 0.125  # a resumed run keeps it
    kernels = [saved.get_tensor(name) for name in saved.get_variable_to_shape_map() if name.startswith("model/") and "kernel" in name]
    assert kernels and all(np.isfinite(k).all() and np.abs(k).max() < 10 for k in kernels)


def test_tensorflow_log_lines_stay_out_of_the_output(capfd):
    """The TFLite converter logs through absl's C++ library whatever TF_CPP_MIN_LOG_LEVEL says
    ("W0000 00:00:1796667048.398622 16632 tf_tfl_flatbuffer_helpers.cc:364] Ignored
    output_format.", "I0000 ... mlir_graph_optimization_pass.cc:437] ..."); our own lines pass."""
    needs_module("tensorflow", "TensorFlow (pip install 'livedroid[train]') is not installed")
    from livedroid.training.compat import tf

    module = tf.Module()
    module.double = tf.function(lambda x: x * 2, input_signature=[tf.TensorSpec([1], tf.float32)])
    print("\rconverting", end="", file=sys.stderr, flush=True)
    assert tf.lite.TFLiteConverter.from_concrete_functions([module.double.get_concrete_function()], module).convert()
    print(" done", file=sys.stderr)
    assert capfd.readouterr().err == "\rconverting done\n"


def test_each_export_step_drops_tensorflow_log_lines(capfd):
    """The TFLite graph step printed "WARNING: All log messages before absl::InitializeLog() ..."
    and "I0000 ... mlir_graph_optimization_pass.cc:437] ..." on BCCD, the int8 step a bare
    "fully_quantize: 0, ..." on star-wars: every timed step drops them."""
    needs_module("tensorflow", "TensorFlow (pip install 'livedroid[train]') is not installed")
    from livedroid.training.export import _timed

    with _timed("TFLite graph"):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796684385.270135   14504 mlir_graph_optimization_pass.cc:437] MLIR V1 optimization pass is not enabled\n")
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: FLOAT32\n")
        os.write(2, b"a real problem\n")
    captured = capfd.readouterr()
    assert captured.err == "a real problem\n"
    assert captured.out.startswith("TFLite graph …\nTFLite graph: 0 s")
