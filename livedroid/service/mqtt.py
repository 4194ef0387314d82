"""Events to MQTT with paho-mqtt, the way Home Assistant integrations expect: each event on
``livedroid/NAME/events``, and ``online``/``offline`` on ``livedroid/available`` (retained, with a
last will, so a crash or a pulled plug reads ``offline`` too); with the cameras given, Home
Assistant's discovery configs and state topics as well (see discovery.py).

Events go at QoS 1: while the broker is away, paho keeps them (up to ``queue_limit``) and sends
them when it is back; beyond that they are counted as dropped. States are not queued: each
connection starts by publishing every config and every state as it is then. The cameras never
wait for the broker.
"""

from __future__ import annotations

import logging
import os
import threading

import paho.mqtt.client as mqtt

from livedroid.errors import UserError
from livedroid.service import strict_json
from livedroid.service.config import CameraConfig
from livedroid.service.discovery import AVAILABILITY, CameraStates, configs

log = logging.getLogger("livedroid")


def event_topic(camera: str) -> str:
    return f"livedroid/{camera}/events"


class MqttPublisher:
    """Publishes events and availability; reconnects on its own thread (paho's loop)."""

    def __init__(self, host: str, port: int = 1883, *, queue_limit: int = 1000,
                 cameras: list[CameraConfig] = ()) -> None:
        self.host, self.port = host, port
        self.cameras = list(cameras)
        self.states = {camera.name: CameraStates(camera) for camera in self.cameras}
        self.queue_limit = queue_limit
        self.published = 0
        self.dropped = 0
        self.connected = threading.Event()
        self._closing = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="livedroid-mqtt-availability", daemon=True)
        self._warned = False
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"livedroid-{os.getpid()}")
        self._client.will_set(AVAILABILITY, "offline", qos=1, retain=True)
        self._client.max_queued_messages_set(queue_limit)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    def start(self) -> None:
        try:
            self._client.connect_async(self.host, self.port, keepalive=30)
        except (ValueError, OSError) as error:
            raise UserError(f"--mqtt {self.host}:{self.port}: {error}") from None
        self._client.loop_start()
        self._ticker.start()

    def _tick(self) -> None:
        """Each camera's availability, checked every second (a camera that stopped sends no frame to say so)."""
        while not self._closing.wait(1.0):
            for state in self.states.values():
                self._states(state.tick())

    def publish(self, camera: str, event: dict) -> None:
        """Queue one event (never blocks the camera); counted as dropped when the queue is full."""
        info = self._client.publish(event_topic(camera), strict_json.dumps(event), qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("mqtt: %d events waiting for %s:%d; dropping new ones (counted in /api/stats)",
                            self.queue_limit, self.host, self.port)
        if camera in self.states:
            self._states(self.states[camera].event(event))

    def frame(self, camera: str, objects: dict[str, int], jpeg: bytes | None) -> None:
        """After each of a camera's frames: its states that changed, and the snapshot with them."""
        self._states(self.states[camera].frame(objects, jpeg))

    def _states(self, messages: dict[str, str | bytes]) -> None:
        """Retained, and only while connected (a new connection publishes them all anew)."""
        if self.connected.is_set():
            for topic, payload in messages.items():
                self._client.publish(topic, payload, qos=1, retain=True)

    def stats(self) -> dict:
        return {"mqtt": {"connected": self.connected.is_set(), "published": self.published, "dropped": self.dropped}}

    def close(self) -> None:
        """Say ``offline`` (retained) when connected, then disconnect."""
        self._closing.set()
        if self.connected.is_set():
            self._client.publish(AVAILABILITY, "offline", qos=1, retain=True).wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (its network thread) -----------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._unreachable(str(reason_code))
            return
        self.connected.set()
        self._warned = False
        for camera in self.cameras:
            for topic, config in configs(camera).items():
                client.publish(topic, strict_json.dumps(config), qos=1, retain=True)
            for topic, value in self.states[camera.name].current().items():
                client.publish(topic, value, qos=1, retain=True)
        client.publish(AVAILABILITY, "online", qos=1, retain=True)
        log.info("mqtt: connected to %s:%d; events on %s", self.host, self.port, event_topic("NAME"))

    def _on_connect_fail(self, _client, _userdata) -> None:
        self._unreachable("cannot connect")

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self.connected.is_set():
            self.connected.clear()
            self._unreachable(f"disconnected: {reason_code}")

    def _on_publish(self, _client, _userdata, _mid, _reason_code, _properties) -> None:
        self.published += 1

    def _unreachable(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("mqtt: broker %s:%d unreachable (%s); events are kept (up to %d) and sent when it is back",
                        self.host, self.port, reason, self.queue_limit)
