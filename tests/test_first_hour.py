"""The rough edges a newcomer met in the first hour (issue #32), each as the user sees it."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from livedroid.batch.runner import BatchSummary
from livedroid.cli import main
from livedroid.engine import EngineSettings
from livedroid.errors import UserError
from livedroid.wording import did_you_mean, plural
from tests.conftest import REPO, run_cli, write_clip


def test_version_is_the_package_version():
    result = run_cli("--version")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert result.returncode == 0 and result.stdout.strip() == f"livedroid {version}", result


@pytest.mark.parametrize("count, noun, many, said", [
    (1, "problem", None, "1 problem"), (3, "problem", None, "3 problems"), (0, "frame", None, "0 frames"),
    (1, "box", "boxes", "1 box"), (2, "box", "boxes", "2 boxes"),
    (1, "interpreter thread", None, "1 interpreter thread"),
    (2, "local worker process", "local worker processes", "2 local worker processes"),
])
def test_plural(count, noun, many, said):
    assert plural(count, noun, many) == said


def test_one_file_is_one_file():
    assert BatchSummary(files=1, done=1).line().startswith("1 file: 1 done")


@pytest.mark.parametrize("unknown, suggestion", [
    (["persn"], "did you mean person?"), (["Person"], "did you mean person?"),
    (["persn", "crr"], "did you mean person, car?"), (["zzz"], ""),
])
def test_did_you_mean(unknown, suggestion):
    assert did_you_mean(unknown, ["person", "bicycle", "car"]) == suggestion


def test_a_misspelt_class_gets_its_close_match(tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    assert main(["run", str(clip), "--classes", "persn", "-o", str(tmp_path / "out.mp4")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "livedroid: error: --classes: persn not in the model's labels; did you mean person?")
    with pytest.raises(UserError, match=r"zzz not in the model's labels \(person, bicycle\)"):
        EngineSettings(classes=frozenset({"zzz"})).checked_classes({1: "person", 2: "bicycle"})


def test_a_rerun_with_nothing_to_do_is_one_line_and_no_empty_bars(tmp_path):
    (tmp_path / "in").mkdir()
    write_clip(tmp_path / "in" / "clip.mp4", frames=5)
    first = run_cli("batch", "in", "--out", "out", "--no-video", cwd=tmp_path)
    assert first.returncode == 0 and "frames:" in first.stderr, first.stderr  # the bars, while there is work
    again = run_cli("batch", "in", "--out", "out", "--no-video", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "livedroid: 1 of 1 file already complete, skipped" in again.stderr
    assert "frames:" not in again.stderr and "files:" not in again.stderr, again.stderr
    assert "1 file: 0 done, 1 skipped" in again.stderr


@pytest.mark.parametrize("output", [
    "intel_one-by-one-person-detection-detections.mp4",  # run's default output
    "mined/intel/images/frame.jpg",  # the data loop's example
    "eval/star-wars-on-star-wars/metrics.json",  # livedroid eval's default --out
    "annotated/clip-detections.mp4",  # batch's example --out
    "recordings/door/2026-12-05/door.mp4", "snaps/track-0003-person.jpg", "events.jsonl",  # tracking, serve
    "runs/droids/training/ckpt-1.index",  # training's work folder
    "site/index.html",  # mkdocs build
])
def test_the_documented_outputs_stay_out_of_git_status(output):
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", output], cwd=REPO)
    assert ignored.returncode == 0, f"{output} would show up in git status"


def test_shipped_files_are_not_ignored():
    for kept in ("models/star-wars/model_int8.tflite", "docs/images/quick-start-frame.jpg", "benchmarks/results/x.json"):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", kept], cwd=REPO).returncode == 1, kept


def test_the_stats_name_each_cameras_model_by_its_inference_key(tmp_path):
    from tests.service.serving import Served

    write_clip(tmp_path / "demo.mp4", frames=20)
    served = Served("demo.mp4", "--loop", "--name", "demo", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        stats = served.json("/api/stats")
        assert stats["cameras"]["demo"]["model"] == "coco-ssd-mobilenet-v2"
        assert stats["cameras"]["demo"]["model"] in stats["inference"]
    finally:
        served.stop()


def test_the_load_watch_sees_another_process_take_a_core():
    import sys
    import time

    from livedroid.machine_load import LoadWatch

    if not Path("/proc/stat").exists():
        pytest.skip("other processes' CPU time is read from Linux's /proc/stat")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        watch = LoadWatch()
        time.sleep(1.5)
        load = watch.stop()  # before the child is reaped: its CPU time is not ours
    finally:
        busy.kill()
        busy.wait()
    assert load.other_cores is not None and load.other_cores >= 0.5, load
    assert load.as_json()["quiet"] is (load.other_cores <= 0.1 * load.cores)


@pytest.mark.parametrize("quiet, other_cores, headline", [(True, 0.05, True), (False, 1.31, False), (None, None, True)])
def test_bench_headlines_ratios_only_from_a_quiet_machine(quiet, other_cores, headline):
    from livedroid.bench import _headline

    load = {"quiet": quiet, "other_cores": other_cores, "cores": 2, "load_average": [6.2, 7.4], "seconds": 30.0}
    said = _headline("pipeline / opencv = 0.83", load).splitlines()
    assert said[0].startswith("pipeline / opencv = 0.83") is headline
    if quiet is False:
        assert said == ["UNDER LOAD: other processes used 1.31 of 2 cores (load average 6.2 → 7.4), over 10% of the "
                        "machine: no headline ratio; rerun on a quiet machine to compare",
                        "under load, not comparable: pipeline / opencv = 0.83"]
    else:
        assert said[1].startswith("machine: quiet" if quiet else "machine: load unknown")


@pytest.mark.parametrize("shape", ["line mid=60,10,700,10", "zone desk=60,10,300,10,300,200,60,200"])
def test_a_count_label_hides_no_box_label(shape):
    """A person at the top-left, where the line (or zone) starts: its count goes elsewhere. The
    shape's own thin strokes may cross the person's label; a count's filled label may not."""
    from fractions import Fraction

    import numpy as np

    from livedroid.analytics import ZoneAnalytics, parse_shape
    from livedroid.annotate import BoxAnnotator
    from livedroid.detections import Detections
    from livedroid.frames import Frame

    kind, text = shape.split(" ")
    analytics = ZoneAnalytics([parse_shape(kind, text)])
    person = Detections(np.array([[0, 5, 100, 300]], np.float32), np.array([0.87], np.float32), np.array([1], np.int32),
                        ["person"], np.array([3]))
    image = np.zeros((432, 768, 3), np.uint8)
    analytics.update(person, Frame(image, 0, pts=0, time_base=Fraction(1, 10)))
    annotator = BoxAnnotator()
    scene = annotator.annotate(image.copy(), person)
    x1, y1, x2, y2 = annotator.label_rects(scene.shape, person)[0]
    before = scene.copy()
    analytics.draw(scene)
    changed = (scene[y1:y2, x1:x2] != before[y1:y2, x1:x2]).any(axis=2).mean()
    assert (scene != before).sum() > 500, "no count label was drawn"
    assert changed < 0.15, f"the count's label covers {changed:.0%} of the person's label"
