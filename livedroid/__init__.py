"""livedroid: real-time object detection in video with detectors you trained yourself.

Data flows source → frames → detector → detections → sinks:
``livedroid.sources`` yield :class:`Frame`, ``livedroid.detectors`` turn frames into
:class:`Detections`, ``livedroid.sinks`` write them; ``livedroid.pipeline`` runs the stages
concurrently.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (see _EXPORTS)
if TYPE_CHECKING:
    from livedroid.detections import Detections
    from livedroid.errors import UserError
    from livedroid.frames import Frame

__all__ = ["Detections", "Frame", "UserError"]
__version__ = "0.1.0"

#: Where each name of ``__all__`` lives, imported on first use: ``python -m livedroid`` imports
#: this package before livedroid/__main__.py can catch Ctrl-C, so nothing slow may run here.
_EXPORTS = {"Detections": "livedroid.detections", "Frame": "livedroid.frames", "UserError": "livedroid.errors"}


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'livedroid' has no attribute {name!r}")
