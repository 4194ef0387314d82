"""``livedroid bench`` runs on a tiny clip and reports every field; no timing is asserted."""

import json
from pathlib import Path

from tests.conftest import run_cli, write_clip

WORKLOADS = {"decode", "inference", "annotate_encode", "naive", "opencv", "supervision", "pipeline", "motion"}
PEERS = ("naive", "opencv", "supervision")


def test_bench_prints_the_table_and_writes_every_field(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, fps=24)
    result = run_cli("bench", str(clip), "-m", str(default_model), "--repeat", "2", "--live-seconds", "0.5",
                     "--motion", "--json", "bench.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "frame age p50" in result.stdout
    for peer in PEERS:
        assert f"pipeline / {peer} = " in result.stdout
    for workload in WORKLOADS:  # said on stderr while it runs, then a row of the table
        assert f"round 2/2: {workload}\n" in result.stderr
        assert f"\n{workload} " in result.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data["workloads"]) == WORKLOADS and data["skipped"] == {}
    assert "model runs a frame" in result.stdout and "of the ungated detections kept" in result.stdout
    gate = data["motion"]
    assert 0 < gate["model_runs_per_frame"] and 0 <= gate["detections_kept"] <= 1 and gate["vs_pipeline"] > 0
    assert gate["extra_boxes"] >= 0
    for name in ("annotate_encode", *PEERS, "pipeline", "motion"):
        assert data["workloads"][name]["output_kb"] > 0
    for workload in data["workloads"].values():
        assert workload["fps"] > 0 and workload["cpu_ms_per_frame"] > 0 and len(workload["runs"]) == 2
    assert data["frames"] == 12 and data["frame_size"] == [160, 96]
    assert data["machine_load"]["cores"] == data["cores"] and data["machine_load"]["seconds"] > 0
    for key in ("limit_fps", *(f"pipeline_vs_{peer}" for peer in PEERS), "pipeline_vs_limit", "cores", "runtime", "batch"):
        assert data[key]
    live = data["live"]
    assert live["frames_processed"] + live["frames_dropped"] == live["frames_captured"] == 12
    assert 0 < live["age_p50_ms"] <= live["age_p95_ms"] <= live["age_max_ms"]


def test_bench_of_a_missing_clip_is_one_clear_line(tmp_path: Path, default_model: Path, livedroid_main) -> None:
    result = livedroid_main("bench", "nope.mp4", "-m", str(default_model), cwd=tmp_path)
    assert result.returncode == 2 and "video not found: nope.mp4" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_without_supervision_says_why_its_row_is_skipped(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=6, fps=24)
    # python -m puts the working folder first on sys.path: this module hides the installed one
    (tmp_path / "supervision.py").write_text("raise ImportError('No module named supervision')\n")
    result = run_cli("bench", str(clip), "-m", str(default_model), "--repeat", "1", "--live-seconds", "0",
                     "--json", "bench.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "supervision: skipped, supervision is not installed (pip install 'livedroid[bench]')" in result.stderr
    assert "supervision" in result.stdout and "skipped" in result.stdout
    data = json.loads((tmp_path / "bench.json").read_text())
    assert "supervision" not in data["workloads"] and "not installed" in data["skipped"]["supervision"]
    assert data["pipeline_vs_supervision"] is None and data["pipeline_vs_opencv"] > 0
