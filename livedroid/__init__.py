"""livedroid: real-time object detection in video with detectors you trained yourself.

Data flows source → frames → detector → detections → sinks:
``livedroid.sources`` yield :class:`Frame`, ``livedroid.detectors`` turn frames into
:class:`Detections`, ``livedroid.sinks`` write them; ``livedroid.pipeline`` runs the stages
concurrently.
"""

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame

__all__ = ["Detections", "Frame", "UserError"]
__version__ = "0.1.0"
