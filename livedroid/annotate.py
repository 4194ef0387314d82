"""Drawing detections onto frames: a box and a "label score" tag, one readable colour per class."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from livedroid.detections import Detections


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A bright RGB colour per class id; the golden-ratio hue step keeps neighbours apart."""
    hue = (int(class_id) * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(red * 255), int(green * 255), int(blue * 255)


#: A label's place on the picture: x1, y1, x2, y2 pixels.
Rect = tuple[int, int, int, int]


def font_scale(shape: tuple[int, ...]) -> float:
    """Text grows with the picture, so that labels read the same on 240p and 4K."""
    return max(0.4, min(shape[:2]) / 900)


def label_size(text: str, scale: float) -> tuple[int, int]:
    """(width, height) of a filled label holding ``text``."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return width + 4, height + baseline + 2


def draw_label(scene: np.ndarray, text: str, rect: Rect, colour: tuple[int, int, int]) -> None:
    """``text`` on a filled ``colour`` rectangle, in black or white, whichever reads."""
    x1, y1, x2, y2 = rect
    scale = font_scale(scene.shape)
    (_, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(scene, (x1, y1), (x2, y2), colour, cv2.FILLED)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(scene, text, (x1 + 2, y1 + height + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)


def place_label(scene: np.ndarray, text: str, anchors: list[tuple[float, float]], colour: tuple[int, int, int],
                taken: list[Rect]) -> Rect:
    """Draw a label at the first anchor (its bottom-left corner there, else its top-left) where it
    covers none of ``taken`` (the boxes' labels, the labels placed before), else where it covers
    least; kept inside the picture. The rectangle it took is added to ``taken``."""
    width, height = label_size(text, font_scale(scene.shape))
    max_x, max_y = max(0, scene.shape[1] - width), max(0, scene.shape[0] - height)
    spots = []
    for x, y in anchors:
        for top in (y - height, y):  # above the anchor first: a line's own pixels stay visible
            left, top = int(min(max(x, 0), max_x)), int(min(max(top, 0), max_y))
            spots.append((left, top, left + width, top + height))
    rect = min(spots, key=lambda spot: sum(_overlap(spot, other) for other in taken))
    draw_label(scene, text, rect, colour)
    taken.append(rect)
    return rect


def _overlap(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


class BoxAnnotator:
    """Draws boxes in place on an RGB uint8 image; line and text scale with the image size.

    Tagged "label score", or "label #track score" once tracked."""

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        height, width = scene.shape[:2]
        thickness = max(1, round(min(width, height) / 240))
        for (x1, y1, x2, y2), class_id, text, rect in zip(
            detections.xyxy.astype(int), detections.class_ids, self._texts(detections),
            self.label_rects(scene.shape, detections),
        ):
            colour = class_colour(class_id)
            cv2.rectangle(scene, (x1, y1), (x2, y2), colour, thickness)
            draw_label(scene, text, rect, colour)
        return scene

    def label_rects(self, shape: tuple[int, ...], detections: Detections) -> list[Rect]:
        """Where each box's label goes on a picture of ``shape``: above the box, or inside its
        top when the picture's edge leaves no room above."""
        scale = font_scale(shape)
        rects = []
        for (x1, y1, _, _), text in zip(detections.xyxy.astype(int), self._texts(detections)):
            width, height = label_size(text, scale)
            top = y1 - height if y1 - height >= 0 else y1
            rects.append((int(x1), int(top), int(x1) + width, int(top) + height))
        return rects

    @staticmethod
    def _texts(detections: Detections) -> list[str]:
        tracks = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        return [f"{label} {score:.2f}" if track is None else f"{label} #{track} {score:.2f}"
                for score, label, track in zip(detections.scores, detections.labels, tracks)]


def draw_text(scene: np.ndarray, text: str) -> np.ndarray:
    """A status line (e.g. live fps) in the top-left corner."""
    cv2.putText(scene, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(scene, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 1, cv2.LINE_AA)
    return scene
