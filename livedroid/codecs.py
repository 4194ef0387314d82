"""Video encoder settings, shared by the command line and the video sink (no heavy imports:
``livedroid --help`` reads them)."""

from __future__ import annotations

# WebM holds only VP8, VP9 and AV1: VP9 in constant-quality mode, at a real-time speed setting.
VIDEO_CODECS = {"webm": "libvpx-vp9"}
#: x264's speed preset unless told otherwise: see the README's Performance section for the
#: measured CPU cost and file size of each.
DEFAULT_PRESET = "superfast"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


#: Frames up to this many pixels are encoded on one thread: x264's own threads cost more CPU
#: (768x432, superfast: 2.73 against 2.10 ms a frame), CPU the detector would use; larger frames
#: keep them, so that the writer keeps up.
ONE_THREAD_PIXELS = 1280 * 720


def encoder_threads(codec: str, width: int, height: int) -> dict[str, str]:
    """x264 on one thread for frames up to ``ONE_THREAD_PIXELS``; else the encoder's default."""
    return {"threads": "1"} if codec == "libx264" and width * height <= ONE_THREAD_PIXELS else {}


def codec_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """Quality and speed options: ``crf``/``preset`` for x264; the same crf and a real-time
    speed for VP9 (whose crf scale, 0-63, starts where x264's does)."""
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset}
    if codec == "libvpx-vp9":
        return {"crf": str(crf + 8), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    return {}
