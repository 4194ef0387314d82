"""``livedroid serve``: many cameras in one process, shared inference, a live web page, metrics
and MQTT events. It drives the engine (one Pipeline per camera); the engine never imports it."""

from livedroid.service.cameras import Camera, CameraService
from livedroid.service.config import CameraConfig, ServiceConfig, load_config
from livedroid.service.inference import SharedInference

__all__ = ["Camera", "CameraConfig", "CameraService", "ServiceConfig", "SharedInference", "load_config"]
