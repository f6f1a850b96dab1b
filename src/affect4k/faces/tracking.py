"""Who is where: face tracks within shots, identities across the clip, and the subject.

A database row is the subject's face at that frame; a frame where only a bystander is visible
must say "no face", not silently describe someone else. The face stage therefore decides who
the subject is from the whole clip, not frame by frame: each frame's faces are linked into
tracks (:class:`FaceTracks`: the same face in consecutive frames, by box overlap, never across
a cut, which :class:`ShotCuts` finds), each track is described by face-recognition embeddings
(:mod:`affect4k.faces.identity`), tracks whose embeddings agree become one identity
(:func:`cluster_tracks`), and the subject is the identity with the most screen time or the one
nearest a reference photo (:func:`choose_subject`). The subject is then found again wherever
and at whatever size it reappears, and a bystander is never taken for it.

:class:`SubjectTracker` is the per-frame rule for a single image (``affect4k predict`` on a
photo): there is no clip to learn an identity from, so it takes the largest face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from affect4k.faces.detectors import Detection


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


#: Side of the grey thumbnail two frames are compared on to find a cut.
_CUT_THUMBNAIL = (32, 18)
#: Mean absolute difference (0-255 grey levels) between consecutive thumbnails that is a cut;
#: motion within a shot, even a fast pan, stays well below it on a thumbnail this coarse.
CUT_DIFFERENCE = 30.0


class ShotCuts:
    """Say, frame by frame, whether a new shot starts (a hard cut).

    A face track never continues across a cut, so a bystander who appears where the subject
    was in the previous shot is a new track and must prove its identity on its own.
    """

    def __init__(self, threshold: float = CUT_DIFFERENCE) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` (any size; the detection copy) starts a new shot."""
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        thumbnail = cv2.resize(grey, _CUT_THUMBNAIL, interpolation=cv2.INTER_AREA).astype(float)
        previous, self._previous = self._previous, thumbnail
        return previous is not None and float(np.abs(thumbnail - previous).mean()) > self.threshold


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class FaceTracks:
    """Link each frame's faces to the faces of the frames before it.

    A face continues the track whose last box it overlaps most (IoU at least ``min_iou``), if
    that track was seen within ``max_gap`` frames and no cut came since; otherwise it starts a
    new track. Matching is greedy, best overlap first, one face per track.
    """

    def __init__(self, *, min_iou: float = 0.3, max_gap: int = 5) -> None:
        self.min_iou = min_iou
        self.max_gap = max_gap
        self._boxes: dict[int, np.ndarray] = {}
        self._last_seen: dict[int, int] = {}
        self._next = 0
        self._frame = -1

    def update(self, boxes: np.ndarray, *, cut: bool) -> list[int]:
        """Track ids of this frame's faces (``boxes`` (n, 4), any one pixel grid)."""
        self._frame += 1
        if cut:
            self._boxes.clear()
        live = [t for t in self._boxes if self._frame - self._last_seen[t] <= self.max_gap]
        ids = [-1] * len(boxes)
        if live and len(boxes):
            overlap = box_iou(np.asarray(boxes, float), np.stack([self._boxes[t] for t in live]))
            for flat in np.argsort(overlap, axis=None)[::-1]:
                face, track = divmod(int(flat), len(live))
                if overlap[face, track] < self.min_iou:
                    break
                if ids[face] == -1 and live[track] not in ids:
                    ids[face] = live[track]
        for face, box in enumerate(boxes):
            if ids[face] == -1:
                ids[face] = self._new_id()
            self._boxes[ids[face]] = np.asarray(box, float)
            self._last_seen[ids[face]] = self._frame
        return ids

    def split(self, track: int) -> int:
        """End ``track`` here and continue its face under a new id, which is returned: its
        embeddings say another person took over while the boxes went on overlapping (a cut
        the thumbnails missed, a dissolve)."""
        new = self._new_id()
        self._boxes[new] = self._boxes.pop(track)
        self._last_seen[new] = self._last_seen.pop(track)
        return new

    def _new_id(self) -> int:
        self._next += 1
        return self._next - 1


def cluster_tracks(
    embeddings: list[np.ndarray], threshold: float, core: np.ndarray | None = None
) -> np.ndarray:
    """One identity label per track, from each track's embeddings ((k, 128) arrays, k >= 1).

    The ``core`` tracks (default: all), long enough to speak for a person, are clustered by
    centroid linkage of their mean embeddings cut at ``threshold``: two groups merge while their
    means are closer than that. Every other track, nearest first, joins the cluster of the
    nearest track already placed, if within ``threshold``, or is an identity of its own; it
    never merges clusters. A short
    segment from the middle of a dissolve, halfway between two people, would otherwise chain
    them into one identity (as it did under average linkage); complete linkage, which cannot be
    chained, split one person whose expression changes (the demo's faces, 0.36 between the two
    halves' means) into two. Labels are 0, 1, ... in order of first appearance of the track
    list.
    """
    if not embeddings:
        return np.zeros(0, np.int64)
    means = np.stack([e.mean(axis=0) for e in embeddings])
    core = np.ones(len(means), bool) if core is None or not np.any(core) else np.asarray(core)
    groups = np.full(len(means), -1, np.int64)
    core_index = np.flatnonzero(core)
    if len(core_index) == 1:
        groups[core_index] = 0
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        found = fcluster(linkage(means[core_index], "centroid"), t=threshold, criterion="distance")
        groups[core_index] = found - 1
    # Other tracks join, nearest first, the cluster of the nearest track already placed.
    distances = np.linalg.norm(means[:, None] - means[None], axis=2)
    while (groups < 0).any():
        waiting, placed = np.flatnonzero(groups < 0), np.flatnonzero(groups >= 0)
        near = distances[np.ix_(waiting, placed)]
        track, to = np.unravel_index(int(np.argmin(near)), near.shape)
        joins = near[track, to] <= threshold
        groups[waiting[track]] = groups[placed[to]] if joins else groups.max() + 1
    order: dict[int, int] = {}
    for group in groups:
        order.setdefault(int(group), len(order))
    return np.array([order[int(group)] for group in groups], np.int64)


#: What a face-recognition sample, and then every face of a track, says about the subject.
VERIFIED, BRIDGED, UNVERIFIED, REJECTED = "verified", "bridged", "unverified", "rejected"


def face_verdicts(
    frames: np.ndarray,
    segments: np.ndarray,
    sample_of: np.ndarray,
    sample_verdicts: np.ndarray,
    *,
    window: int,
    bridge: bool,
) -> np.ndarray:
    """The verdict on every face from the verdicts on its track segment's samples.

    ``frames`` and ``segments`` give each face's frame and track segment (a track cut where
    its embeddings changed person), in frame order; ``sample_of`` (one per sample) the face a
    sample embedded, and ``sample_verdicts`` its verdict: :data:`VERIFIED` (the subject),
    :data:`REJECTED` (someone else) or :data:`UNVERIFIED` (a face the descriptor cannot judge).
    A segment's first face is always a sample. A face is :data:`VERIFIED` when it is a verified
    sample, or lies between two verified samples of its segment, or after the segment's last
    sample, verified, within ``window`` frames. A stretch of unverified samples bounded by
    verified ones in the same segment is :data:`BRIDGED` (kept) if ``bridge``, else
    :data:`UNVERIFIED`. A face between a verified and a rejected sample is unverified: the
    person changed somewhere between them; between two non-verified samples it is rejected if
    either was.
    """
    verdicts = np.full(len(frames), UNVERIFIED, dtype=object)
    sample_segment = segments[sample_of]
    for segment in np.unique(segments):
        faces = np.flatnonzero(segments == segment)
        samples = np.flatnonzero(sample_segment == segment)
        samples = samples[np.argsort(frames[sample_of[samples]], kind="stable")]
        verdicts[faces] = _segment_verdicts(
            frames[faces],
            frames[sample_of[samples]],
            np.asarray(sample_verdicts[samples], dtype=object),
            window=window,
            bridge=bridge,
        )
    return verdicts


def _segment_verdicts(
    at: np.ndarray, sampled: np.ndarray, said: np.ndarray, *, window: int, bridge: bool
) -> list[str]:
    """:func:`face_verdicts` of one segment: faces at frames ``at``, samples at frames
    ``sampled`` (ascending, the first at or before the first face) with verdicts ``said``."""
    # Per sample: unverified, with verified samples on both sides and no rejected one between.
    bridgeable = np.zeros(len(said), bool)
    last_verified = None
    for i, verdict in enumerate(said):
        if verdict == VERIFIED:
            if last_verified is not None:
                bridgeable[last_verified + 1 : i] = True
            last_verified = i
        elif verdict == REJECTED:
            last_verified = None
    kept_unverified = BRIDGED if bridge else UNVERIFIED
    keeps = (said == VERIFIED) | bridgeable  # samples a kept face may lie next to

    def verdict(face_frame: int, before: int) -> str:
        on_sample = sampled[before] == face_frame
        if on_sample or before == len(said) - 1:
            if not on_sample and face_frame - sampled[before] > window:
                return UNVERIFIED
            return kept_unverified if bridgeable[before] else str(said[before])
        left, right = said[before], said[before + 1]
        if left == VERIFIED and right == VERIFIED:
            return VERIFIED
        if keeps[before] and keeps[before + 1]:
            return kept_unverified  # the subject turning away and back within the track
        if VERIFIED in (left, right):
            return UNVERIFIED  # the person changed somewhere between the two samples
        return REJECTED if REJECTED in (left, right) else UNVERIFIED

    before = np.searchsorted(sampled, at, side="right") - 1
    return [verdict(int(f), int(b)) for f, b in zip(at, before, strict=True)]


@dataclass(frozen=True)
class Subject:
    """The identity chosen as the subject and what it was compared with."""

    identity: int
    #: The embedding the subject is measured against: the reference photo's, or the mean of
    #: the subject identity's own embeddings.
    reference: np.ndarray
    #: Distance of every identity's mean embedding to ``reference``.
    distances: np.ndarray


def choose_subject(
    centroids: np.ndarray,
    screen_frames: np.ndarray,
    photo: np.ndarray | None,
    threshold: float,
) -> Subject | None:
    """The subject among identities with mean embeddings ``centroids`` (n, 128).

    Without a ``photo`` embedding it is the identity on screen in the most frames; with one,
    the identity nearest to it, if within ``threshold``; otherwise None (nobody is the subject).
    """
    if not len(centroids):
        return None
    if photo is None:
        identity = int(np.argmax(screen_frames))
        reference = centroids[identity]
    else:
        reference = np.asarray(photo, np.float32)
    distances = np.linalg.norm(centroids - reference, axis=1)
    if photo is not None:
        identity = int(np.argmin(distances))
        if distances[identity] > threshold:
            return None
    return Subject(identity, reference, distances)
