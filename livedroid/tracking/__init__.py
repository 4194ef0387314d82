"""Tracking: persistent ids for the detections of successive frames (``Detections.tracker_id``)."""

from livedroid.tracking.bytetrack import LOW_SCORE, ByteTracker

__all__ = ["LOW_SCORE", "ByteTracker"]
