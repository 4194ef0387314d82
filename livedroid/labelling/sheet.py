"""A contact sheet of picked frames: thumbnails with their boxes and a caption each (OpenCV only,
so the runtime install draws it too)."""

from __future__ import annotations

import textwrap

import cv2
import numpy as np

from livedroid.annotate import class_colour

COLUMNS = 4
CAPTION_LINES = 3
LINE_HEIGHT = 14


def contact_sheet(
    previews: list[np.ndarray],
    boxes: list[list[tuple[str, float, float, float, float]]],
    sizes: list[tuple[int, int]],
    captions: list[str],
    columns: int = COLUMNS,
) -> np.ndarray:
    """One RGB image: ``previews`` (same width) in a grid, each with its ``boxes`` (label and
    corners in pixels of the full ``sizes``) and its caption wrapped under it."""
    if not previews:
        return np.full((LINE_HEIGHT * 2, 320, 3), 255, np.uint8)
    width = previews[0].shape[1]
    cell_height = max(p.shape[0] for p in previews) + CAPTION_LINES * LINE_HEIGHT + 8
    rows = -(-len(previews) // columns)
    sheet = np.full((rows * cell_height, min(columns, len(previews)) * width, 3), 255, np.uint8)
    names = sorted({label for frame in boxes for label, *_ in frame})
    for number, (preview, frame_boxes, (full_w, _), caption) in enumerate(zip(previews, boxes, sizes, captions)):
        top, left = (number // columns) * cell_height, (number % columns) * width
        cell = preview.copy()
        scale = cell.shape[1] / full_w
        for label, x1, y1, x2, y2 in frame_boxes:
            colour = class_colour(names.index(label) + 1)
            corner1, corner2 = (int(x1 * scale), int(y1 * scale)), (int(x2 * scale), int(y2 * scale))
            cv2.rectangle(cell, corner1, corner2, colour, 2)
            cv2.putText(cell, label, (corner1[0] + 2, corner1[1] + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
        sheet[top:top + cell.shape[0], left:left + width] = cell
        for line_number, line in enumerate(textwrap.wrap(caption, width // 6)[:CAPTION_LINES]):
            y = top + cell.shape[0] + LINE_HEIGHT * (line_number + 1)
            cv2.putText(sheet, line, (left + 3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet
