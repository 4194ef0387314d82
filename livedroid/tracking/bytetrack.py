"""ByteTrack-style multi-object tracking: persistent ids for the detections of successive frames.

Per frame: every track's Kalman filter predicts where its box is now; confirmed tracks are matched
to the confident detections by IoU, then to the unconfident ones with a stricter IoU (an occluded,
blurred or dimly lit object keeps its id), and new tracks are matched to what is left. Unlike
ByteTrack, which offers unconfident detections only to tracks seen in the previous frame, lost
tracks may take them too: a person whose score hovers around the threshold, missing a frame here
and there, stays one track instead of being split into several.
A confident detection that matches nothing starts a new track. A track that misses frames is
kept ``lost_frames`` source frames, then dropped. Frame gaps (skipped or dropped frames) are
predicted over, so ids survive them.

A track gets its public id (1, 2, 3, … in order of appearance) only once it was seen in
``min_hits`` frames and the median of its recent scores reaches the threshold (Frigate's filter):
a detection that flickers for a frame or two never becomes a track.

Matching is greedy by highest IoU (as norfair and Frigate do) rather than an optimal assignment,
which needs scipy; with IoU costs the two rarely differ.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from livedroid.detections import Detections, same_class_iou_matrix
from livedroid.frames import Frame
from livedroid.settings import DEFAULT_THRESHOLD, DEFAULT_TRACK_BUFFER
from livedroid.stages import Stage
from livedroid.tracking.kalman import BoxKalman

#: The scores a track's median is taken over (Frigate uses the last 10 too).
SCORE_HISTORY = 10


def greedy_match(iou: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) paired by highest IoU first, each pair at least ``minimum``, each used once."""
    candidates_rows, candidates_columns = np.nonzero(iou >= minimum)
    order = np.argsort(-iou[candidates_rows, candidates_columns], kind="stable")
    rows, columns, used_rows, used_columns = [], [], set(), set()
    for row, column in zip(candidates_rows[order].tolist(), candidates_columns[order].tolist()):
        if row not in used_rows and column not in used_columns:
            used_rows.add(row)
            used_columns.add(column)
            rows.append(row)
            columns.append(column)
    return np.array(rows, int), np.array(columns, int)


#: The least score the tracker is shown (ByteTrack's low threshold): unconfident detections keep
#: an occluded object's track alive.
LOW_SCORE = 0.1


class ByteTracker(Stage):
    """Gives each detection of a tracked object its ``tracker_id``; returns only tracked detections.

    ``threshold``: confident detections (they start tracks; a track's median must reach it).
    ``low_threshold``: the least score that may still continue a track. ``min_hits`` (at least 2):
    frames a track must be seen in before it gets an id.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        low_threshold: float = LOW_SCORE,
        *,
        lost_frames: int = DEFAULT_TRACK_BUFFER,
        min_hits: int = 2,
        match_iou: float = 0.2,
        low_match_iou: float = 0.5,
        new_match_iou: float = 0.3,
    ) -> None:
        self.threshold = threshold
        self.low_threshold = min(low_threshold, threshold)
        self.lost_frames = lost_frames
        self.min_hits = max(2, min_hits)
        self.match_iou, self.low_match_iou, self.new_match_iou = match_iou, low_match_iou, new_match_iou
        self._kalman = BoxKalman()
        self._class_ids = np.zeros(0, np.int32)
        self._hits = np.zeros(0, int)
        self._last_seen = np.zeros(0, int)
        self._matched = np.zeros(0, bool)  # in the latest frame
        self._public_ids = np.zeros(0, int)  # 0 until the track passes the filter
        self._scores: list[deque[float]] = []
        self._frame: int | None = None
        self.tracks_started = 0

    def update(self, detections: Detections, frame: Frame) -> Detections:
        gap = 1 if self._frame is None else frame.index - self._frame
        self._frame = frame.index
        self._kalman.predict(gap)
        self._keep(frame.index - self._last_seen <= self.lost_frames)
        detections = detections.filter(detections.scores >= self.low_threshold)
        rows = self._associate(detections)
        matched = rows >= 0
        self._refresh(rows[matched], detections.filter(matched), frame.index)
        track_ids = np.zeros(len(detections), int)
        track_ids[matched] = self._public_ids[rows[matched]]
        self._keep(self._matched | (self._hits >= self.min_hits))  # new tracks must be seen again at once
        self._start(detections.filter(~matched & (detections.scores >= self.threshold)), frame.index)
        tracked = track_ids > 0
        output = detections.filter(tracked)
        output.tracker_id = track_ids[tracked]
        return output

    def _associate(self, detections: Detections) -> np.ndarray:
        """The track row of each detection, or -1: ByteTrack's three rounds of matching."""
        rows = np.full(len(detections), -1)
        free = np.ones(len(self._kalman), bool)
        if not len(detections) or not len(self._kalman):
            self._matched = ~free
            return rows
        iou = same_class_iou_matrix(self._kalman.xyxy, self._class_ids, detections.xyxy, detections.class_ids)
        confident = detections.scores >= self.threshold
        confirmed = self._hits >= self.min_hits
        for tracks, candidates, minimum in (
            (confirmed, confident, self.match_iou),
            (confirmed, ~confident, self.low_match_iou),
            (~confirmed, confident, self.new_match_iou),
        ):
            track_rows = np.flatnonzero(tracks & free)
            columns = np.flatnonzero(candidates & (rows < 0))
            if len(track_rows) and len(columns):
                pair_rows, pair_columns = greedy_match(iou[np.ix_(track_rows, columns)], minimum)
                rows[columns[pair_columns]] = track_rows[pair_rows]
                free[track_rows[pair_rows]] = False
        self._matched = ~free
        return rows

    def _refresh(self, rows: np.ndarray, detections: Detections, index: int) -> None:
        """Fold matched detections into their tracks; give ids to tracks that now pass the filter."""
        self._kalman.correct(rows, detections.xyxy)
        self._hits[rows] += 1
        self._last_seen[rows] = index
        for row, score in zip(rows, detections.scores):
            self._scores[row].append(float(score))
            if (
                not self._public_ids[row]
                and self._hits[row] >= self.min_hits
                and np.median(self._scores[row]) >= self.threshold
            ):
                self.tracks_started += 1
                self._public_ids[row] = self.tracks_started

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self._kalman.keep(keep)
        self._class_ids, self._hits, self._last_seen = self._class_ids[keep], self._hits[keep], self._last_seen[keep]
        self._matched, self._public_ids = self._matched[keep], self._public_ids[keep]
        self._scores = [scores for scores, kept in zip(self._scores, keep) if kept]

    def _start(self, detections: Detections, index: int) -> None:
        count = len(detections)
        if not count:
            return
        self._kalman.add(detections.xyxy)
        self._class_ids = np.concatenate([self._class_ids, detections.class_ids])
        self._hits = np.concatenate([self._hits, np.ones(count, int)])
        self._last_seen = np.concatenate([self._last_seen, np.full(count, index)])
        self._matched = np.concatenate([self._matched, np.ones(count, bool)])
        self._public_ids = np.concatenate([self._public_ids, np.zeros(count, int)])
        self._scores += [deque([float(s)], maxlen=SCORE_HISTORY) for s in detections.scores]

    def summary(self) -> list[str]:
        return [f"tracking: {self.tracks_started} track{'s' * (self.tracks_started != 1)}"]
