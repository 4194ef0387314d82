"""Tracking: persistent ids for the detections of successive frames (``Detections.tracker_id``)."""

from livedroid.tracking.bytetrack import ByteTracker

__all__ = ["ByteTracker"]
