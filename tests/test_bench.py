"""``livedroid bench`` runs on a tiny clip and reports every field; no timing is asserted."""

import json
from pathlib import Path

from tests.conftest import run_cli, write_clip

STAGES = {"decode", "inference", "annotate_encode", "naive", "pipeline"}


def test_bench_prints_the_table_and_writes_every_field(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, fps=24)
    result = run_cli("bench", str(clip), "-m", str(default_model), "--repeat", "2", "--live-seconds", "0.5",
                     "--json", "bench.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipeline / naive" in result.stdout and "frame age p50" in result.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data["stages"]) == STAGES
    for stage in data["stages"].values():
        assert stage["fps"] > 0 and stage["cpu_ms_per_frame"] > 0 and len(stage["runs"]) == 2
    assert data["frames"] == 12 and data["frame_size"] == [160, 96]
    for key in ("limit_fps", "pipeline_vs_naive", "pipeline_vs_limit", "cores", "runtime", "batch"):
        assert data[key]
    live = data["live"]
    assert live["frames_processed"] + live["frames_dropped"] == live["frames_captured"] == 12
    assert 0 < live["age_p50_ms"] <= live["age_p95_ms"] <= live["age_max_ms"]


def test_bench_of_a_missing_clip_is_one_clear_line(tmp_path: Path, default_model: Path) -> None:
    result = run_cli("bench", "nope.mp4", "-m", str(default_model), cwd=tmp_path)
    assert result.returncode == 2 and "video not found: nope.mp4" in result.stderr
    assert "Traceback" not in result.stderr
