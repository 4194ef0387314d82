"""``python -m tests.interrupt_during MODULE ARGS``: ``livedroid ARGS`` as ``python -m livedroid``
runs it, with a SIGINT (Ctrl-C) sent to itself just as MODULE is first imported: an interrupt at an
exact moment of start-up, whatever the machine's speed."""

import importlib.abc
import os
import runpy
import signal
import sys


class InterruptAt(importlib.abc.MetaPathFinder):
    """Sends SIGINT to this process when ``name`` is about to be imported (once)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == self.name:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, InterruptAt(sys.argv[1]))
    sys.argv = ["livedroid", *sys.argv[2:]]
    runpy.run_module("livedroid", run_name="__main__", alter_sys=True)
