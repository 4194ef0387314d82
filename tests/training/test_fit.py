"""The training loop's Ctrl-C handling (the loop itself runs in the end-to-end test)."""

from __future__ import annotations

import os
import signal

import pytest

from livedroid.training.fit import _stop_on_interrupt


def test_first_ctrl_c_asks_to_stop_and_the_second_interrupts():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where CI starts us in the background
    with _stop_on_interrupt() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
