"""The recordings index's size pass on real files and a real SQLite index, table-driven."""

from pathlib import Path

import pytest

from livedroid.service.recording_index import RecordingIndex, Segment


def _record(folder: Path, index: RecordingIndex, camera: str, start: float, size: int) -> str:
    path = f"{camera}/{camera}-{start:.0f}.mp4"
    (folder / path).parent.mkdir(parents=True, exist_ok=True)
    (folder / path).write_bytes(b"\0" * size)
    index.add(Segment(camera, start, start + 10, path, size, 0, 0))
    return path


@pytest.mark.parametrize("segments, cap, deleted", [
    # one camera, 4 closed segments of 100: room for the one in flight leaves 2 under a cap of 300
    ([("a", 0), ("a", 10), ("a", 20), ("a", 30)], 300, ["a-0", "a-10"]),
    # two cameras recording: room for two in flight
    ([("a", 0), ("b", 0), ("a", 10), ("b", 10)], 300, ["a-0", "b-0", "a-10"]),
    # b stopped long ago: room is kept for a's segment in flight only (with b's too, a-510 would go)
    ([("b", 0), ("a", 500), ("a", 510), ("a", 520)], 300, ["b-0", "a-500"]),
    ([("a", 0), ("a", 10)], 1000, []),
], ids=["one camera", "two cameras", "a camera that stopped", "under the cap"])
def test_the_size_pass_keeps_room_for_the_segments_in_flight(tmp_path: Path, segments, cap, deleted) -> None:
    index = RecordingIndex(tmp_path)
    paths = [_record(tmp_path, index, camera, start, 100) for camera, start in segments]
    removed = index.prune(cap)
    assert [Path(segment.path).stem for segment, _ in removed] == deleted
    assert all(reason == "size" for _, reason in removed)
    left = [path for path in paths if (tmp_path / path).exists()]
    assert len(left) == len(paths) - len(deleted) and {row.path for row in index.find()} == set(left)
