"""The web side of ``livedroid serve``, on aiohttp (asyncio; one event loop on its own thread):
a page with every camera's live view and figures, JSON stats, Prometheus metrics, JPEG and MJPEG.

Nothing served names a camera's source: responses carry camera names and figures only.
Bound beyond localhost, every request needs the token (``Authorization: Bearer T`` or ``?token=T``);
bound to localhost, only requests addressed to a local name are answered (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import math
from collections.abc import Callable
from datetime import datetime

from aiohttp import ClientConnectionError, web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from livedroid.errors import UserError
from livedroid.service import strict_json
from livedroid.service.cameras import CameraService, model_name
from livedroid.web import WebServer, is_local, local_names_only

#: How often an MJPEG stream looks for a newer picture (and whether its viewer is still there).
MJPEG_POLL_S = 0.05
BOUNDARY = "livedroidframe"
#: What a write to a viewer that went away raises (aiohttp's own, and the OS's).
GONE = (ConnectionError, ClientConnectionError)


class ServiceMetrics:
    """The cameras' figures in Prometheus' form, gathered when scraped."""

    def __init__(self, service: CameraService) -> None:
        self.service = service

    def collect(self):
        stats = self.service.stats()["cameras"]
        gauges = {
            "fps": ("frames per second the camera delivers", lambda s: s["fps"]),
            "detect_fps": ("frames inferred per second", lambda s: s["detect_fps"]),
            "latency_p50_seconds": ("median frame age from capture to annotated", lambda s: _seconds(s["latency_ms"]["p50"])),
            "latency_p95_seconds": ("95th percentile frame age from capture to annotated", lambda s: _seconds(s["latency_ms"]["p95"])),
            "up": ("1 while the camera delivers frames", lambda s: float(s["state"] == "live")),
            "model_runs_per_frame": ("model runs per inferred frame (below 1 with motion)", lambda s: s["model_runs_per_frame"]),
            "recording": ("1 while the camera's recording writes, 0 while it cannot (recording_error)",
                          lambda s: None if s["recording"] == "off" else float(s["recording"] == "recording")),
            "recordings_bytes": ("bytes of the camera's segments its recordings folder keeps", lambda s: s["recordings_bytes"]),
            "segments_kept": ("segments its recordings folder keeps", lambda s: s["segments_kept"]),
            "oldest_kept_timestamp_seconds": ("when the oldest segment kept began (seconds since 1970)",
                                              lambda s: s["oldest_kept"] and datetime.fromisoformat(s["oldest_kept"]).timestamp()),
        }
        counters = {
            "frames_read": ("frames read from the camera", "frames_read"),
            "frames_processed": ("frames inferred and annotated", "frames_processed"),
            "frames_dropped": ("frames dropped because inference was busy", "dropped"),
            "frames_skipped_by_cap": ("frames skipped to keep to detect_fps", "skipped_by_cap"),
            "reconnects": ("reconnections after the camera dropped", "reconnects"),
            "events": ("zone and line events", "events"),
            "segments_recorded": ("recording segments closed and indexed", "segments_recorded"),
            "recording_failures": ("recording writes that failed (full or read-only disk)", "recording_failures"),
            "segments_deleted": ("segments deleted by retention (size cap, free-space floor, age)", "segments_deleted"),
        }
        for name, (help_text, value) in gauges.items():
            family = GaugeMetricFamily(f"livedroid_camera_{name}", help_text, labels=["camera"])
            for camera, figures in stats.items():
                if value(figures) is not None:
                    family.add_metric([camera], value(figures))
            yield family
        for name, (help_text, key) in counters.items():
            family = CounterMetricFamily(f"livedroid_camera_{name}", help_text, labels=["camera"])
            for camera, figures in stats.items():
                family.add_metric([camera], figures[key])
            yield family
        deletions = CounterMetricFamily("livedroid_camera_segments_deleted_by_reason",
                                        "segments deleted by retention, by why: size, free_space, age", labels=["camera", "reason"])
        for camera, figures in stats.items():
            for reason, count in figures["deletions"].items():
                deletions.add_metric([camera, reason], count)
        yield deletions
        inference = GaugeMetricFamily("livedroid_inference_ms", "mean inference call time per model", labels=["model"])
        for model, shared in self.service.inference.items():
            inference.add_metric([model_name(model)], shared.timer.mean_ms)
        yield inference


class HttpServer:
    """Serves the page and the API on ``host:port`` (:class:`livedroid.web.WebServer`)."""

    def __init__(self, service: CameraService, host: str, port: int, *, token: str | None = None,
                 extra_stats: Callable[[], dict] | None = None) -> None:
        if not is_local(host) and not token:
            raise UserError(f"--http {host}:{port} serves beyond this machine: give --token (or 'token:' in the config)")
        self.service = service
        self.token = token
        self.extra_stats = extra_stats or dict
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(ServiceMetrics(service))
        self._closing = False
        self.mjpeg_viewers = 0
        self.server = WebServer(self.app(local=is_local(host)), host, port, option="--http")

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        """Bind now, so a port in use is one line before any camera starts."""
        self.server.start()

    def stop(self) -> None:
        """End the MJPEG streams, close the listener; safe to call twice."""
        self._closing = True
        self.server.stop()

    def app(self, *, local: bool = True) -> web.Application:
        """The page and the API; ``local``: bound to this machine, so answering local names only."""
        guards = [local_names_only] if local else []
        app = web.Application(middlewares=[*guards, self._check_token])
        app.router.add_get("/", self._page)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/recordings", self._recordings)
        app.router.add_get("/api/recordings/{camera}/{name}", self._segment)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/api/cameras/{name}/latest.jpg", self._latest)
        app.router.add_get("/api/cameras/{name}/mjpeg", self._mjpeg)
        return app

    # -- handlers --------------------------------------------------------------------------
    @web.middleware
    async def _check_token(self, request: web.Request, handler):
        if self.token:
            given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            # Header bytes that are not UTF-8 arrive as surrogates: compared as the bytes they were.
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token.encode()):
                return _json({"error": "a token is needed: Authorization: Bearer TOKEN or ?token=TOKEN"},
                                         status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    def _camera(self, request: web.Request):
        camera = self.service.cameras.get(request.match_info["name"])
        if camera is None:
            raise web.HTTPNotFound(text=f"no camera named {request.match_info['name']!r}")
        return camera

    async def _stats(self, _request: web.Request) -> web.Response:
        return _json({**self.service.stats(), "http": {"mjpeg_viewers": self.mjpeg_viewers}, **self.extra_stats()})

    async def _events(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100")) if request.query.get("limit", "100").isdigit() else 100
        def linked() -> list[dict]:  # each event with the segment that holds it, once closed
            return [{**event, "clip": self.service.clip(event["camera"], at)}
                    for at, event in self.service.events.recent_at(limit, request.query.get("camera"))]

        return _json({"events": await asyncio.get_running_loop().run_in_executor(None, linked)})

    async def _segment(self, request: web.Request) -> web.StreamResponse:
        """One indexed segment's MP4 (what an event's ``clip`` links to); nothing else by name."""
        camera, name = request.match_info["camera"], request.match_info["name"]
        path = await asyncio.get_running_loop().run_in_executor(None, self.service.segment_file, camera, name)
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="no such recording")
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def _recordings(self, request: web.Request) -> web.Response:
        """``?camera=NAME&start=T&end=T``: T in seconds since 1970 or ISO 8601 (local time if no zone)."""
        camera = request.query.get("camera") or None
        if camera is not None and camera not in self.service.cameras:
            raise web.HTTPNotFound(text=f"no camera named {camera!r}")
        try:
            start, end = (_moment(request.query.get(key)) for key in ("start", "end"))
        except ValueError as error:
            return _json({"error": str(error)}, status=400)
        segments = await asyncio.get_running_loop().run_in_executor(None, self.service.recordings, camera, start, end)
        return _json({"recordings": segments})

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, self._registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _latest(self, request: web.Request) -> web.Response:
        camera = self._camera(request)
        if camera.view.jpeg is None:
            raise web.HTTPServiceUnavailable(text=f"camera {camera.name} has no picture yet")
        return web.Response(body=camera.view.jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        """The live view until the viewer goes; a gone viewer is noticed while waiting for a
        picture too (an offline camera sends none), not only when a write fails."""
        camera = self._camera(request)
        response = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", "Cache-Control": "no-store"})
        self.mjpeg_viewers += 1
        try:
            await response.prepare(request)
            sent = -1
            while not self._closing and request.transport is not None and not request.transport.is_closing():
                view = camera.view
                if view.sequence != sent and view.jpeg is not None:
                    sent, jpeg = view.sequence, view.jpeg
                    await response.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg + b"\r\n")
                await asyncio.sleep(MJPEG_POLL_S)
        except GONE:
            pass  # the viewer went away mid-write
        finally:
            self.mjpeg_viewers -= 1
        return response

    async def _page(self, _request: web.Request) -> web.Response:
        cards = "\n".join(CARD.format(name=html.escape(name)) for name in self.service.cameras)
        options = "".join(f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
                          for name, camera in self.service.cameras.items() if camera.recorder is not None)
        page = PAGE.replace("{cards}", cards).replace("{camera_options}", options)
        return web.Response(text=page, content_type="text/html")


def _json(data: dict, *, status: int = 200, headers: dict | None = None) -> web.Response:
    """Every JSON the server sends: strict (NaN and infinities as null, which browsers parse)."""
    return web.json_response(data, status=status, headers=headers, dumps=strict_json.dumps)


def _moment(text: str | None) -> float | None:
    """Seconds since 1970 from a number or an ISO 8601 time; ValueError names what was given."""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = datetime.fromisoformat(text).timestamp()
        except ValueError:
            seconds = math.nan
    if not math.isfinite(seconds):  # nan and inf too: they would match nothing, silently
        raise ValueError(f"{text!r}: expected seconds since 1970 or an ISO 8601 time such as 2026-12-05T13:05:00")
    return seconds


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


CARD = """<section class="camera" id="camera-{name}">
  <h2>{name} <span class="state" data-field="state">…</span></h2>
  <img alt="{name} live" data-camera="{name}">
  <dl data-stats="{name}"></dl>
</section>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livedroid cameras</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #eee; }
 main { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
 .camera { background: #222; padding: .5rem; border-radius: 6px; }
 .camera img { width: 100%; background: #000; min-height: 120px; }
 h2 { margin: .2rem 0; font-size: 1.1rem; } .state { font-size: .8rem; color: #9c9; }
 dl { display: grid; grid-template-columns: auto auto; gap: 0 1rem; font-size: .85rem; margin: .3rem 0; }
 dt { color: #aaa; } dd { margin: 0; }
 #events { font-size: .8rem; white-space: pre-wrap; }
 #range { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; font-size: .9rem; }
 #player { width: min(100%, 960px); background: #000; display: block; margin: .5rem 0; }
 #segments { font-size: .8rem; columns: 3 18rem; } #segments li.playing { color: #9cf; font-weight: bold; }
 a { color: #9cf; }
</style></head>
<body>
<h1>livedroid cameras</h1>
<main>
{cards}
</main>
<h2>Recent events</h2><pre id="events">none yet</pre>
<h2>Recordings</h2>
<form id="range">
  <label>camera <select id="range-camera">{camera_options}</select></label>
  <label>from <input type="datetime-local" id="range-start" step="1"></label>
  <label>to <input type="datetime-local" id="range-end" step="1"></label>
  <button type="submit">play</button> <span id="range-status">empty times: every segment kept</span>
</form>
<video id="player" controls muted playsinline></video>
<ol id="segments"></ol>
<script>
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
for (const img of document.querySelectorAll("img[data-camera]")) {
  img.src = withToken("/api/cameras/" + encodeURIComponent(img.dataset.camera) + "/mjpeg");
}
const shown = {fps: "camera fps", detect_fps: "detections/s", dropped: "dropped", reconnects: "reconnects",
               latency_ms: "latency p50 / p95 ms", events: "events", objects: "objects now"};
function show(value) {
  if (value && typeof value === "object") {
    if ("p50" in value) return (value.p50 ?? "–") + " / " + (value.p95 ?? "–");
    return Object.entries(value).map(([k, v]) => k + " " + v).join(", ") || "none";
  }
  return value ?? "–";
}
async function refresh() {
  try {
    const stats = await (await fetch(withToken("/api/stats"))).json();
    for (const [name, figures] of Object.entries(stats.cameras)) {
      const list = document.querySelector(`dl[data-stats="${CSS.escape(name)}"]`);
      list.innerHTML = "";
      for (const [key, label] of Object.entries(shown)) {
        const dt = document.createElement("dt"); dt.textContent = label;
        const dd = document.createElement("dd"); dd.textContent = show(figures[key]);
        list.append(dt, dd);
      }
      document.querySelector(`#camera-${CSS.escape(name)} .state`).textContent = figures.state;
    }
    const events = (await (await fetch(withToken("/api/events?limit=20"))).json()).events;
    if (events.length) document.getElementById("events").replaceChildren(...events.map(e => {
      const line = document.createElement("div");  // text only: names and labels are never markup
      line.textContent = JSON.stringify(e) + " ";
      if (e.clip) {
        const link = document.createElement("a");
        link.href = withToken(e.clip);
        link.textContent = "clip";
        link.addEventListener("click", (click) => { click.preventDefault(); play([{url: e.clip}], 0); });
        line.append(link);
      }
      return line;
    }));
  } catch (error) { /* the service is restarting or gone: try again next second */ }
}
refresh(); setInterval(refresh, 1000);

// Recordings: the camera's closed segments in a time range, played one after the other.
const player = document.getElementById("player"), list = document.getElementById("segments");
const rangeStatus = document.getElementById("range-status");
let queue = [], playing = -1;
function play(segments, index) {
  queue = segments; playing = index;
  for (const [i, item] of Array.from(list.children).entries()) item.classList.toggle("playing", i === index);
  player.src = withToken(segments[index].url);
  player.dataset.playing = String(index);
  rangeStatus.textContent = `segment ${index + 1} of ${segments.length}` + (segments[index].start ? `, from ${segments[index].start}` : "");
  player.play().catch(() => {});  // a browser may want a click first: the controls are there
}
player.addEventListener("ended", () => { if (playing + 1 < queue.length) play(queue, playing + 1); });
document.getElementById("range").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const query = new URLSearchParams({camera: document.getElementById("range-camera").value});
  for (const key of ["start", "end"]) {
    const value = document.getElementById("range-" + key).value;
    if (value) query.set(key, value);  // local time, as the API reads a time without a zone
  }
  const reply = await (await fetch(withToken("/api/recordings?" + query))).json();
  if (reply.error) { rangeStatus.textContent = reply.error; return; }
  const segments = reply.recordings;
  list.replaceChildren(...segments.map((segment, index) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = withToken(segment.url);
    link.textContent = `${segment.start} (${segment.seconds} s)` + (segment.events ? ", events" : segment.objects ? ", objects" : segment.motion ? ", motion" : "");
    link.addEventListener("click", (click) => { click.preventDefault(); play(segments, index); });
    item.append(link);
    return item;
  }));
  if (segments.length) play(segments, 0);
  else { player.removeAttribute("src"); rangeStatus.textContent = "no segment in that range"; }
});
</script>
</body></html>
"""
