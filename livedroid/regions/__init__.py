"""Which parts of a frame to infer: tiles for small objects in large frames (``--tiles``)."""

from livedroid.regions.tiles import TiledDetector, tile_grid

__all__ = ["TiledDetector", "tile_grid"]
