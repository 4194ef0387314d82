"""Which parts of a frame to infer: tiles for small objects in large frames (``--tiles``), and
only where something moved (``--motion``)."""

from livedroid.regions.motion import MotionGatedDetector
from livedroid.regions.tiles import TiledDetector, tile_grid

__all__ = ["MotionGatedDetector", "TiledDetector", "tile_grid"]
