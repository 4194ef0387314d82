"""``livedroid serve``: the cameras from the command line or a file, the web page, MQTT, and the
first Ctrl-C or SIGTERM stopping it all with every record closed."""

from __future__ import annotations

import argparse
import sys

from livedroid.errors import UserError
from livedroid.service.cameras import CameraService
from livedroid.service.config import ServiceConfig, camera_config, check_names, load_config
from livedroid.service.events import EventHub
from livedroid.signals import StopOnSignals
from livedroid.wording import plural

DEFAULT_HTTP = "127.0.0.1:8080"
MQTT_PORT = 1883


def service_config(args: argparse.Namespace) -> ServiceConfig:
    """The cameras and options asked for; the command line wins over the file. The parser leaves
    per-camera options out of ``args`` unless typed (:data:`livedroid.commands.serve.SERVE_PER_CAMERA`)."""
    from livedroid.commands.serve import SERVE_PER_CAMERA

    given = {dest: getattr(args, dest) for dest in SERVE_PER_CAMERA if hasattr(args, dest)}
    if args.config and args.source:
        raise UserError("give cameras either as SOURCE… or in --config FILE, not both")
    if args.config:
        if given:
            raise UserError(f"{', '.join(SERVE_PER_CAMERA[dest] for dest in given)}: with --config FILE, per-camera "
                            "settings go in the file (its cameras, or 'defaults:' for all)")
        config = load_config(args.config)
    elif args.source:
        names = given.pop("name", None)
        if names and len(names) != len(args.source):
            raise UserError(f"{len(names)} --name for {len(args.source)} sources: give one name per source, or none")
        names = names or [f"camera{n}" for n in range(1, len(args.source) + 1)]
        cameras = [camera_config({**given, "name": name, "source": source}, f"camera {name}")
                   for name, source in zip(names, args.source)]
        config = ServiceConfig(cameras=check_names(cameras))
    else:
        raise UserError("no cameras: give SOURCE… (files need --loop to play as cameras) or --config cameras.yaml")
    config.http = args.http or config.http or DEFAULT_HTTP
    config.token = args.token or config.token
    config.mqtt = args.mqtt or config.mqtt
    return config


def serve(args: argparse.Namespace) -> int:
    from livedroid.service.http import HttpServer
    from livedroid.web import parse_address

    config = service_config(args)
    host, port = parse_address(config.http, 8080, "--http")
    mqtt_address = parse_address(config.mqtt, MQTT_PORT, "--mqtt") if config.mqtt else None
    events = EventHub()
    service = CameraService(config, events, backend=args.backend, device=args.device, workers=args.workers, threads=args.threads, batch=args.batch,
                            timeouts={"connect_timeout": args.connect_timeout, "read_timeout": args.read_timeout,
                                      "reconnect_timeout": args.reconnect_timeout})
    publisher = None
    http = None
    try:
        if mqtt_address:
            from livedroid.service.mqtt import MqttPublisher

            publisher = MqttPublisher(*mqtt_address, queue_limit=args.mqtt_queue, cameras=config.cameras)
            events.subscribers.append(publisher.publish)
            service.subscribe_frames(publisher.frame)
        http = HttpServer(service, host, port, token=config.token,
                          extra_stats=publisher.stats if publisher else None)
        http.start()
        if publisher:
            publisher.start()
        print(f"livedroid: serving {plural(len(service.cameras), 'camera')} ({', '.join(service.cameras)}) on {http.url}",
              file=sys.stderr, flush=True)
        signals = StopOnSignals(cancel=service.cancel, finishing="stopping the cameras, closing their records")
        with signals:  # the first signal is only counted; CameraService.wait polls the count
            service.start()
            service.wait(lambda: signals.received > 0)
    finally:
        if http is not None:
            http.stop()
        if publisher is not None:
            publisher.close()
        service.close()
    for name, figures in service.stats()["cameras"].items():
        print(f"livedroid: camera {name}: {figures['frames_read']} frames read, {figures['frames_processed']} inferred, "
              f"{figures['dropped']} dropped, {figures['reconnects']} reconnects, {figures['events']} events",
              file=sys.stderr)
    return 130  # a service ends only when asked to
