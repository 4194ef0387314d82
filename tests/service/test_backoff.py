"""The waits between a camera's restarts and a recording's retries (README: 1 s doubling to 30 s,
whatever the cause, back to 1 s only after 60 s healthy; recordings 2 s doubling to 2 minutes)."""

from __future__ import annotations

import pytest

from livedroid.service.backoff import Backoff
from livedroid.service.cameras import HEALTHY_S, RESTART_FIRST_S, RESTART_MAX_S
from livedroid.service.recordings import RETRY_FIRST_S, RETRY_MAX_S


@pytest.mark.parametrize(
    "runs, waits",
    [
        # every try fails at once (a connect that fails, a source that opens and ends): doubling, capped
        ([0, 0, 0, 0, 0, 0, 0], [1, 2, 4, 8, 16, 30, 30]),
        # a try that ran a while but less than healthy still counts as a failure
        ([0, 0, 59, 0], [1, 2, 4, 8]),
        # a healthy run (60 s or more) starts again from 1 s, then doubling again
        ([0, 0, 0, 60, 0, 0], [1, 2, 4, 1, 2, 4]),
        ([0] * 8 + [3600, 0], [1, 2, 4, 8, 16, 30, 30, 30, 1, 2]),
    ],
)
def test_camera_restarts_wait_longer_until_a_healthy_run(runs: list[float], waits: list[float]) -> None:
    backoff = Backoff(RESTART_FIRST_S, RESTART_MAX_S, healthy=HEALTHY_S)
    assert [backoff.next(ran=ran) for ran in runs] == waits


def test_recording_retries_double_to_two_minutes_and_reset_after_a_written_segment() -> None:
    backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
    assert [backoff.next() for _ in range(8)] == [2, 4, 8, 16, 32, 64, 120, 120]
    backoff.reset()  # what a recorder does once a segment was written again
    assert backoff.next() == 2
