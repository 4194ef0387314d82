"""Constant-velocity Kalman filters for many boxes at once (the motion model of SORT and ByteTrack).

State per box: centre x, centre y, width, height and their velocities in pixels per frame. Noise
scales with the box size, as in ByteTrack, so small and large objects are treated alike. All
tracks are advanced together in a few vectorized numpy operations: no Python loop per track.
"""

from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20  # of the box size, per frame
VELOCITY_NOISE = 1 / 160


def xyxy_to_cxcywh(xyxy: np.ndarray) -> np.ndarray:
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    size = xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([xyxy[:, :2] + size / 2, size], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _scale(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) noise scale per component: x and width by the width, y and height by the height."""
    width, height = np.maximum(boxes[:, 2], 1.0), np.maximum(boxes[:, 3], 1.0)
    return np.stack([width, height, width, height], axis=1)


class BoxKalman:
    """The states (``mean`` (T, 8), ``covariance`` (T, 8, 8)) of T tracked boxes."""

    def __init__(self) -> None:
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))

    def __len__(self) -> int:
        return len(self.mean)

    @property
    def xyxy(self) -> np.ndarray:
        """Where the filters put each box now, as (x1, y1, x2, y2)."""
        return cxcywh_to_xyxy(self.mean[:, :4])

    def add(self, xyxy: np.ndarray) -> None:
        """Start a filter per box, at rest, with a wide velocity uncertainty."""
        boxes = xyxy_to_cxcywh(xyxy)
        scale = _scale(boxes)
        std = np.concatenate([2 * POSITION_NOISE * scale, 10 * VELOCITY_NOISE * scale], axis=1)
        covariance = np.zeros((len(boxes), 8, 8))
        covariance[:, range(8), range(8)] = std**2
        self.mean = np.concatenate([self.mean, np.concatenate([boxes, np.zeros_like(boxes)], axis=1)])
        self.covariance = np.concatenate([self.covariance, covariance])

    def keep(self, mask: np.ndarray) -> None:
        """Keep the filters where ``mask`` is true, or those at the rows ``mask`` lists, in its order."""
        self.mean, self.covariance = self.mean[mask], self.covariance[mask]

    def stop(self, mask: np.ndarray) -> None:
        """The objects where ``mask`` is true are known to stand still: no velocity."""
        self.mean[mask, 4:] = 0.0

    def predict(self, frames: int) -> None:
        """Advance every filter by ``frames`` frames (more than 1 when frames were skipped)."""
        if not len(self) or frames <= 0:
            return
        motion = np.eye(8)
        motion[range(4), range(4, 8)] = frames
        scale = _scale(self.mean[:, :4])
        noise = np.concatenate([(POSITION_NOISE * scale) ** 2, (VELOCITY_NOISE * scale) ** 2], axis=1) * frames
        self.mean = self.mean @ motion.T
        self.covariance = motion @ self.covariance @ motion.T
        self.covariance[:, range(8), range(8)] += noise

    def correct(self, rows: np.ndarray, xyxy: np.ndarray) -> None:
        """Fold the measured boxes ``xyxy`` into the filters at ``rows``."""
        if not len(rows):
            return
        measured = xyxy_to_cxcywh(xyxy)
        mean, covariance = self.mean[rows], self.covariance[rows]
        noise = (POSITION_NOISE * _scale(mean[:, :4])) ** 2
        innovation_cov = covariance[:, :4, :4].copy()
        innovation_cov[:, range(4), range(4)] += noise
        gain = covariance[:, :, :4] @ np.linalg.inv(innovation_cov)  # (K, 8, 4)
        self.mean[rows] = mean + (gain @ (measured - mean[:, :4])[:, :, None])[:, :, 0]
        self.covariance[rows] = covariance - gain @ covariance[:, :4, :]
