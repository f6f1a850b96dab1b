"""Follow the one subject of a clip across frames, never switching to a background face.

A database row is the subject's face at that frame; a frame where only a bystander is visible
must say "no face", not silently describe someone else. The tracker therefore remembers where
the subject was and how big the face is, and takes a detection only if it is that big and near
that place; after the subject has been gone for a while (a cut, a turn away), a face of the
subject's size anywhere in the frame is taken, the nearest first.
"""

from __future__ import annotations

import numpy as np

from affect4k.detectors import Detection


def _centre(detection: Detection) -> np.ndarray:
    return (detection.bbox[:2] + detection.bbox[2:]) / 2


def _face_size(detection: Detection) -> float:
    width, height = detection.bbox[2:] - detection.bbox[:2]
    return float(np.sqrt(max(width, 0.0) * max(height, 0.0)))


class SubjectTracker:
    """Pick the subject among each frame's detections, in frame order.

    The subject is first the largest face of the first frame with any face. Afterwards a
    detection is the subject if its size is at least ``min_size_ratio`` of the subject's (a
    smoothed average) and its centre lies within ``near`` subject face sizes per frame since
    the subject was last seen; once the subject has been missing for ``max_gap`` frames, the
    distance no longer matters (the size still does).
    """

    def __init__(self, *, near: float = 1.0, min_size_ratio: float = 0.5, max_gap: int = 25):
        self.near = near
        self.min_size_ratio = min_size_ratio
        self.max_gap = max_gap
        self._centre: np.ndarray | None = None
        self._size = 0.0
        self._missing = 0

    def update(self, detections: list[Detection]) -> Detection | None:
        """The subject in this frame's ``detections``, or ``None`` if it is not among them."""
        subject = self._choose(detections)
        if subject is None:
            self._missing += 1
            return None
        size = _face_size(subject)
        self._size = size if self._centre is None else 0.8 * self._size + 0.2 * size
        self._centre = _centre(subject)
        self._missing = 0
        return subject

    def _choose(self, detections: list[Detection]) -> Detection | None:
        if not detections:
            return None
        if self._centre is None:
            return max(detections, key=_face_size)
        big_enough = [d for d in detections if _face_size(d) >= self.min_size_ratio * self._size]
        if not big_enough:
            return None
        distances = [np.linalg.norm(_centre(d) - self._centre) / self._size for d in big_enough]
        nearest = int(np.argmin(distances))
        # The subject moves on while undetected: the search radius grows with each missed frame.
        reach = self.near * (1 + self._missing)
        if distances[nearest] <= reach or self._missing >= self.max_gap:
            return big_enough[nearest]
        return None
