"""Events to a real MQTT broker (Debian's mosquitto, started here on a free 127.0.0.1 port),
checked by a real paho subscriber; a broker that is away at first gets the kept events later."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from livedroid import __version__
from tests.conftest import free_port, shared_path, skip_unless_ci, write_clip
from tests.service.serving import Served, strict_json

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
    """A real paho client collecting every message under livedroid/ (and other ``topics``)."""

    def __init__(self, port: int, *topics: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        subscriptions = [(topic, 1) for topic in ("livedroid/#", *topics)]
        self.client.on_connect = lambda client, *_: client.subscribe(subscriptions)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def events(self, camera: str) -> list[dict]:
        return [strict_json(p) for t, p, _ in list(self.messages) if t == f"livedroid/{camera}/events"]

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
        # /api/events?limit=&camera= (README): the newest N, one camera's
        newest = served.json("/api/events?limit=2")["events"]
        assert len(newest) == 2 and newest[0]["unix_time"] >= newest[1]["unix_time"]
        assert served.json("/api/events?camera=door&limit=1")["events"][0]["camera"] == "door"
        assert served.json("/api/events?camera=nobody")["events"] == []
        stats = served.json("/api/stats")
        assert stats["mqtt"]["dropped"] >= 2 and not stats["mqtt"]["connected"]
        assert stats["cameras"]["door"]["state"] == "live"  # the camera never waits for the broker
        assert served.stop() == 130
    finally:
        served.kill()


DISCOVERY_CONFIG = CONFIG + "    lines: {{gate: [[0.5, 0], [0.5, 1]]}}\n"
#: What Home Assistant's MQTT discovery requires of each component's config (beyond the
#: unique_id + device.identifiers pair and origin.name that every entity of a device needs).
REQUIRED = {"binary_sensor": {"state_topic"}, "sensor": {"state_topic"}, "image": {"image_topic"}}
DISCOVERY_TOPIC = re.compile(r"^homeassistant/(binary_sensor|sensor|image)/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/config$")


def discovery_configs(subscriber: Subscriber) -> dict[str, dict]:
    return {t: strict_json(p) for t, p, _ in list(subscriber.messages) if t.startswith("homeassistant/")}


def states(subscriber: Subscriber, topic: str) -> list[bytes]:
    return [p for t, p, _ in list(subscriber.messages) if t == topic]


def test_home_assistant_discovers_each_camera_and_follows_its_states(tmp_path: Path) -> None:
    port = free_port()
    broker = Mosquitto(port, tmp_path)
    subscriber = Subscriber(port, "homeassistant/#")
    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    (tmp_path / "cameras.yaml").write_text(DISCOVERY_CONFIG.format(port=port, clip=clip))
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: len(discovery_configs(subscriber)) == 4, 60, "four discovery configs")
        configs = discovery_configs(subscriber)
        for topic, config in configs.items():
            component, node, _ = DISCOVERY_TOPIC.match(topic).groups()
            assert REQUIRED[component] <= set(config), (topic, config)
            assert node == "livedroid_door" and config["unique_id"].startswith("livedroid_door_")
            assert config["device"]["identifiers"] == ["livedroid_door"] and config["device"]["sw_version"] == __version__
            assert config["origin"]["name"] == "livedroid" and config["availability_mode"] == "all"
            assert config["availability"] == [{"topic": "livedroid/available"}, {"topic": "livedroid/door/available"}]
        assert len({c["unique_id"] for c in configs.values()}) == 4
        by_id = {c["unique_id"]: c for c in configs.values()}
        present = by_id["livedroid_door_person_present"]["state_topic"]
        zone = by_id["livedroid_door_zone_hall"]["state_topic"]
        line = by_id["livedroid_door_line_gate"]["state_topic"]
        snapshot = by_id["livedroid_door_snapshot"]["image_topic"]
        assert by_id["livedroid_door_snapshot"]["content_type"] == "image/jpeg"

        # Through the clip: a person comes (ON, the zone counts them, a snapshot), and goes (OFF).
        served.wait_for(lambda: b"ON" in states(subscriber, present), 90, "person present ON")
        served.wait_for(lambda: any(int(v) >= 1 for v in states(subscriber, zone)), 30, "someone in the zone")
        served.wait_for(lambda: states(subscriber, present)[-1:] == [b"OFF"], 120, "person present OFF again")
        assert states(subscriber, line)[:1] == [b"0"]
        pictures = states(subscriber, snapshot)
        assert pictures and all(p.startswith(b"\xff\xd8") for p in pictures)
        assert len(pictures) < served.stats()["door"]["frames_processed"] / 2  # on change, not every frame
        for topic in (present, zone, line):  # only on change: never the same value twice in a row
            values = states(subscriber, topic)
            assert all(a != b for a, b in zip(values, values[1:])), (topic, values)
        assert served.stop(signal.SIGTERM) == 130

        # Retained: a client that comes later gets every config and state; unique_ids survive a restart.
        later = Subscriber(port, "homeassistant/#")
        served.wait_for(lambda: len(discovery_configs(later)) == 4 and states(later, present), 10, "retained configs")
        assert all(retained for t, _, retained in later.messages)
        assert states(later, "livedroid/available") == [b"offline"]
        later.close()
        again = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path)
        try:
            fresh = Subscriber(port, "homeassistant/#")
            again.wait_for(lambda: states(fresh, "livedroid/available")[-1:] == [b"online"], 60, "online again")
            assert discovery_configs(fresh) == configs
            fresh.close()
        finally:
            again.kill()
        assert "Traceback" not in served.stderr
    finally:
        served.kill()
        subscriber.close()
        broker.stop()


def test_each_camera_reads_unavailable_while_it_delivers_no_frames(rtsp_server, tmp_path: Path) -> None:
    """A camera whose RTSP server goes away: its own availability topic reads offline (its entities
    go unavailable in Home Assistant), the other camera's stays online, and it comes back online."""
    port = free_port()
    broker = Mosquitto(port, tmp_path)
    subscriber = Subscriber(port)
    street = rtsp_server()
    write_clip(tmp_path / "demo.mp4", frames=30, size=(320, 180), fps=15, audio=None)
    served = Served(street.url(), "demo.mp4", "--loop", "--name", "street", "--name", "demo", "--mqtt", f"127.0.0.1:{port}",
                    "--http", "127.0.0.1:0", "--connect-timeout", "1", cwd=tmp_path)

    def said(camera: str) -> list[str]:
        return [p.decode() for p in states(subscriber, f"livedroid/{camera}/available")]

    try:
        served.wait_for(lambda: said("street")[-1:] == ["online"] and said("demo")[-1:] == ["online"], 60, "both online")
        street.stop()
        served.wait_for(lambda: said("street")[-1:] == ["offline"], 40, "street offline")
        assert said("demo")[-1:] == ["online"]
        street.start()
        served.wait_for(lambda: said("street")[-1:] == ["online"], 90, "street online again")
        assert served.stop() == 130
    finally:
        served.kill()
        subscriber.close()
        broker.stop()
    assert said("demo") == ["offline", "online"]  # the first retained state, then its frames
