"""Where results go: annotated video, JSON Lines, a preview window, annotated images."""

from livedroid.sinks.base import PartialFile, Sink
from livedroid.sinks.images import ImageFileSink, ImageFolderSink
from livedroid.sinks.jsonl import JsonLinesFile, JsonLinesSink
from livedroid.sinks.video import VideoSink
from livedroid.sinks.window import WindowSink

__all__ = ["ImageFileSink", "ImageFolderSink", "JsonLinesFile", "JsonLinesSink", "PartialFile", "Sink", "VideoSink", "WindowSink"]
