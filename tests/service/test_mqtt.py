"""Events to a real MQTT broker (Debian's mosquitto, started here on a free 127.0.0.1 port),
checked by a real paho subscriber; a broker that is away at first gets the kept events later."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.conftest import shared_path, skip_unless_ci
from tests.service.serving import Served, free_port

CONFIG = """\
mqtt: 127.0.0.1:{port}
cameras:
  - name: door
    source: {clip}
    loop: true
    detect_fps: 10
    classes: [person]
    zones: {{hall: {{points: [[0, 0], [1, 0], [1, 1], [0, 1]], classes: [person]}}}}
"""


class Mosquitto:
    """Debian's broker on 127.0.0.1:port, anonymous, nothing kept on disk."""

    def __init__(self, port: int, folder: Path) -> None:
        if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
            skip_unless_ci("needs Debian's mosquitto (apt-get install mosquitto; .ci/run installs it)")
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.port = port
        self.process = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {port}: {self.process.stderr.read()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Subscriber:
    """A real paho client collecting every message under livedroid/."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="livedroid-test-subscriber")
        self.client.on_connect = lambda client, *_: client.subscribe("livedroid/#", qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def events(self, camera: str) -> list[dict]:
        return [json.loads(p) for t, p, _ in list(self.messages) if t == f"livedroid/{camera}/events"]

    def availability(self) -> list[str]:
        return [p.decode() for t, p, _ in list(self.messages) if t == "livedroid/available"]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def serve_door(tmp_path: Path, port: int, *extra: str) -> Served:
    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    (tmp_path / "cameras.yaml").write_text(CONFIG.format(port=port, clip=clip))
    return Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", *extra, cwd=tmp_path)


def events_seen(served: Served) -> list[dict]:
    return served.json("/api/events")["events"]


def test_events_kept_while_the_broker_is_away_then_delivered(tmp_path: Path) -> None:
    port = free_port()
    served = serve_door(tmp_path, port)
    broker = subscriber = None
    try:
        served.wait_for(lambda: "unreachable" in served.stderr, 30, "the unreachable-broker warning")
        served.wait_for(lambda: events_seen(served), 90, "a zone event")
        first = events_seen(served)[-1]
        assert (first["camera"], first["event"], first["zone"], first["label"]) == ("door", "enter", "hall", "person")

        broker = Mosquitto(port, tmp_path)
        subscriber = Subscriber(port)
        # The event made while the broker was away arrives, and availability reads online (retained).
        served.wait_for(lambda: any(e["unix_time"] == first["unix_time"] for e in subscriber.events("door")), 30,
                        "the kept event at the subscriber")
        served.wait_for(lambda: "online" in subscriber.availability(), 10, "availability online")
        mqtt_stats = served.json("/api/stats")["mqtt"]
        assert mqtt_stats["connected"] and mqtt_stats["dropped"] == 0

        assert served.stop(signal.SIGTERM) == 130
        served.wait_for(lambda: subscriber.availability()[-1:] == ["offline"], 10, "availability offline at the end")
        assert "Traceback" not in served.stderr
    finally:
        served.kill()
        for part in (subscriber, broker):
            if part is not None:
                part.close() if isinstance(part, Subscriber) else part.stop()


def test_beyond_the_queue_bound_events_are_counted_dropped(tmp_path: Path) -> None:
    served = serve_door(tmp_path, free_port(), "--mqtt-queue", "1")
    try:
        served.wait_for(lambda: len(events_seen(served)) >= 3, 120, "three zone events")
        stats = served.json("/api/stats")
        assert stats["mqtt"]["dropped"] >= 2 and not stats["mqtt"]["connected"]
        assert stats["cameras"]["door"]["state"] == "live"  # the camera never waits for the broker
        assert served.stop() == 130
    finally:
        served.kill()
