"""Analytics on tracked detections: zones, lines and their events, best snapshot per track."""

from livedroid.analytics.counting import ZoneAnalytics
from livedroid.analytics.shapes import Shape, check_unique, load_shapes, parse_shape, shapes_from_document
from livedroid.analytics.snapshots import Snapshots

__all__ = ["Shape", "Snapshots", "ZoneAnalytics", "check_unique", "load_shapes", "parse_shape", "shapes_from_document"]
