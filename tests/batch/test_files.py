"""Which inputs a batch finds, and the names of their outputs."""

from pathlib import Path

import pytest

from livedroid.batch.files import find_jobs
from livedroid.errors import UserError


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    for name in ("a.mp4", "day1/cam.mkv", "day2/cam.MOV", "notes.txt", "out/old-detections.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize(
    "inputs, names",
    [
        (["."], ["a", "day1/cam", "day2/cam"]),  # folders: recursive, sub-folders kept, outputs folder left out
        (["day1"], ["cam"]),
        (["*/cam.*"], None),  # two cams, same name: refused (below)
        (["day1/*.mkv", "a.mp4"], ["cam", "a"]),
        (["notes.txt"], ["notes"]),  # a file named explicitly is tried whatever its extension
    ],
)
def test_inputs_and_output_names(archive: Path, monkeypatch, inputs: list[str], names: list[str] | None) -> None:
    monkeypatch.chdir(archive)
    if names is None:
        with pytest.raises(UserError, match="would both write cam.jsonl"):
            find_jobs(inputs, Path("out"))
        return
    jobs = find_jobs(inputs, Path("out"))
    assert [job.name for job in jobs] == names
    for job in jobs:
        assert job.jsonl == archive / "out" / f"{job.name}.jsonl"
        assert job.video == archive / "out" / f"{job.name}-detections.mp4"
    assert find_jobs(inputs, Path("out"), video=False)[0].video is None


@pytest.mark.parametrize(
    "inputs, message",
    [(["missing.mp4"], "input not found: missing.mp4"), (["*.webm"], "no files match"), (["notes"], "input not found")],
)
def test_bad_inputs_are_named(archive: Path, monkeypatch, inputs: list[str], message: str) -> None:
    monkeypatch.chdir(archive)
    with pytest.raises(UserError, match=message):
        find_jobs(inputs, Path("out"))
