#!/usr/bin/python3
"""A real RTSP server for the tests: GStreamer's gst-rtsp-server on 127.0.0.1.

Run by Debian's system Python (the GObject bindings exist only there), as a subprocess of the
tests. Prints the bound port on its first line, then serves until SIGTERM.

    /usr/bin/python3 tests/rtsp_server.py [--port N] [--clip FILE.mp4] [--size WxH --fps N] [--user U --password P]

Without --clip it serves a live test pattern encoded with x264 (320x240 at 30 fps, or --size and
--fps), a camera that never ends; with --clip it plays an H.264 MP4 once per client.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LIVE = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
    "! x264enc tune=zerolatency sliced-threads=false key-int-max={fps} ! rtph264pay name=pay0 pt=96"
)
CLIP = "filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--clip")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the live test pattern")
    parser.add_argument("--fps", type=int, default=30, help="frame rate of the live test pattern")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    width, height = args.size.split("x")
    factory.set_launch(CLIP.format(args.clip) if args.clip else LIVE.format(width=width, height=height, fps=args.fps))
    factory.set_shared(not args.clip)  # a live camera is shared; a clip restarts per client
    if args.user:  # Basic auth; anonymous clients get 401, so FFmpeg then sends its credentials
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(Gst.Structure.new_empty("viewer"))
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/stream", factory)
    if not server.attach(None):
        sys.exit(f"cannot bind 127.0.0.1:{args.port}")
    print(server.get_bound_port(), flush=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
