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


class BoxAnnotator:
    """Draws boxes in place on an RGB uint8 image; line and text scale with the image size.

    Tagged "label score", or "label #track score" once tracked."""

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        height, width = scene.shape[:2]
        thickness = max(1, round(min(width, height) / 240))
        font_scale = max(0.4, min(width, height) / 900)
        tracks = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        for (x1, y1, x2, y2), score, class_id, label, track in zip(
            detections.xyxy.astype(int), detections.scores, detections.class_ids, detections.labels, tracks
        ):
            colour = class_colour(class_id)
            cv2.rectangle(scene, (x1, y1), (x2, y2), colour, thickness)
            text = f"{label} {score:.2f}" if track is None else f"{label} #{track} {score:.2f}"
            (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            top = y1 - text_h - baseline - 2 if y1 - text_h - baseline - 2 >= 0 else y1
            cv2.rectangle(scene, (x1, top), (x1 + text_w + 4, top + text_h + baseline + 2), colour, cv2.FILLED)
            ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
            cv2.putText(scene, text, (x1 + 2, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)
        return scene


def draw_text(scene: np.ndarray, text: str) -> np.ndarray:
    """A status line (e.g. live fps) in the top-left corner."""
    cv2.putText(scene, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(scene, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 1, cv2.LINE_AA)
    return scene
