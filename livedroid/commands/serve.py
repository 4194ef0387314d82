"""``livedroid serve``: its options (the service itself: livedroid/service/)."""

from __future__ import annotations

import argparse

from livedroid.commands.options import (
    add_model_options, add_motion_option, add_selection_options, add_stream_options, verbose_flag,
)
from livedroid.settings import COUNT, RATE, option

SERVE_EXAMPLES = """\
examples:
  livedroid serve rtsp://cam1/stream rtsp://cam2/stream --name door --name yard
                                   two cameras; open http://127.0.0.1:8080/ to watch them
  livedroid serve demo.mp4 --loop  a file played as a camera, over and over
  livedroid serve --config cameras.yaml --mqtt 127.0.0.1:1883
                                   per-camera settings (see README), events to MQTT
  livedroid serve --config cameras.yaml --http 0.0.0.0:8080 --token s3cret
                                   reachable from other machines: a token is required
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    serve = commands.add_parser(
        "serve",
        parents=[verbose_flag()],
        help="run many cameras in one process with a live web page, metrics and MQTT events",
        description=(
            "Watch several cameras at once. All cameras share one set of detector workers, served in "
            "turn so that none starves, each at most at its detect fps. A camera that drops is "
            "reconnected; one that fails never stops the others. The web page shows each camera live "
            "with its figures; /api/stats, /metrics (Prometheus), /api/events and "
            "/api/cameras/NAME/latest.jpg or /mjpeg serve programs. Ctrl-C stops it."
        ),
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("source", metavar="SOURCE", nargs="*",
                       help="camera: rtsp:// http:// URL, camera index or /dev/videoN, or a video file with --loop")
    serve.add_argument("--name", action="append", default=argparse.SUPPRESS, metavar="NAME", help="a name per SOURCE, in order (default camera1, camera2, …)")
    serve.add_argument("--config", metavar="FILE", help="cameras and their settings from a YAML file (see README)")
    serve.add_argument("--loop", action="store_true", default=argparse.SUPPRESS, help="play video files as cameras, from the start again at their end")
    model = add_model_options(
        serve, labels=False, batch_default=4, per_camera=True,
        batch_help="most frames (of several cameras) per inference call when the model allows it (default 4)",
    )
    add_selection_options(model, max_detections=False, per_camera=True)
    model.add_argument("--detect-fps", type=option(RATE), default=argparse.SUPPRESS, metavar="F", help="most frames inferred per second and camera (default 5)")
    add_motion_option(model, "infer only where something moved, on the frames --detect-fps passes on: still "
                             "frames cost nothing, still objects are checked every 20 frames (as run --motion)", per_camera=True)
    web = serve.add_argument_group("web and MQTT")
    web.add_argument("--http", metavar="HOST:PORT", help="where the page and API listen (default 127.0.0.1:8080; port 0: any free one)")
    web.add_argument("--token", help="required of every request (Authorization: Bearer T or ?token=T); needed beyond localhost")
    web.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish events to livedroid/NAME/events, availability to livedroid/available")
    web.add_argument("--mqtt-queue", type=option(COUNT), default=1000, metavar="N", help="events kept while the broker is away; more are dropped (default 1000)")
    add_stream_options(serve, after_reconnect="the camera starts again (it never stops the others)")
    serve.set_defaults(handler=command)
    return serve


#: serve's per-camera options (destination: option): with --config they belong in the file. They
#: default to argparse.SUPPRESS, absent unless typed, so that one typed at its default is seen too.
SERVE_PER_CAMERA = {"name": "--name", "model": "--model", "threshold": "--threshold", "classes": "--classes",
                    "detect_fps": "--detect-fps", "motion": "--motion", "loop": "--loop"}


def command(args: argparse.Namespace) -> int:
    from livedroid.service.command import serve

    return serve(args)
