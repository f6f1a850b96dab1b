"""Scanning a clip for faces: each frame decoded once, faces detected on a small copy, tracked
within shots, and each track embedded every ``faces.embed_every`` frames and cut where the
person changes (:func:`scan_faces`).

What the scan finds (:class:`FoundFaces`) is every face of every frame with its track segment
and samples; who is the subject, and which faces are verified as the subject, is decided from
it afterwards (:mod:`affect4k.faces.extract`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from tqdm import tqdm

from affect4k.core.columns import GEOMETRY_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.media import iter_frames, prefetch
from affect4k.core.progress import progress as progress_bar
from affect4k.faces.align import align_face
from affect4k.faces.detectors import Detector
from affect4k.faces.identity import (
    EMBEDDING_SIZE,
    FaceEmbedder,
    IdentitySettings,
    face_chip,
)
from affect4k.faces.tracking import (
    FaceTracks,
    ShotCuts,
)

log = logging.getLogger(__name__)


def detection_copy(frame: np.ndarray, detect_width: int) -> np.ndarray:
    """``frame`` shrunk to ``detect_width`` pixels wide (the frame itself if not wider)."""
    height, width = frame.shape[:2]
    if width <= detect_width:
        return frame
    size = (detect_width, max(1, round(height * detect_width / width)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def frames_and_detection_copies(
    clip: Path, detect_width: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame with its :func:`detection_copy`."""
    for frame in iter_frames(clip):
        yield frame, detection_copy(frame, detect_width)


def face_progress(video_id: str, total: int, enabled: bool) -> tqdm:
    """Frames done, percent and ETA of one video on stderr (the job's log); silent if disabled."""
    if not enabled:
        return tqdm(total=total, disable=True)
    return progress_bar(total, f"faces {video_id}", "frame")


@dataclass(frozen=True)
class FoundFaces:
    """Every face of the clip (a candidate), in frame order, and the embeddings computed."""

    decoded: int
    #: Per candidate: its frame, its geometry (:data:`GEOMETRY_COLUMNS`, full resolution) and
    #: its track segment (a face track, cut where its embeddings changed person).
    frame: np.ndarray
    geometry: np.ndarray
    segment: np.ndarray
    #: Per embedding (a sample): the candidate it describes, and the 128 numbers.
    embedded: np.ndarray
    embeddings: np.ndarray


@dataclass
class Segment:
    """What the scan keeps of a live track segment between two of its samples."""

    #: Sum and count of the segment's verifiable embeddings: its mean is who the segment is.
    total: np.ndarray = field(default_factory=lambda: np.zeros(EMBEDDING_SIZE))
    count: int = 0
    #: Frame of the last sample, and of the segment's last face.
    sampled: int = -1
    seen: int = -1
    #: Faces since the last sample (candidate, dlib chip): where a change of person is looked
    #: for when the next sample disagrees.
    since: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def add(self, embedding: np.ndarray, verifiable: bool) -> None:
        if verifiable:
            self.total = self.total + embedding
            self.count += 1

    def drifted(self, embedding: np.ndarray, threshold: float) -> bool:
        """Whether ``embedding`` lies farther than ``threshold`` from the segment's mean."""
        return bool(self.count) and _distance(embedding, self.total / self.count) > threshold


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b))


def scan_faces(
    frames: Iterator[tuple[np.ndarray, np.ndarray]],
    detector: Detector,
    embedder: FaceEmbedder,
    store: BinaryIO,
    crop_size: int,
    identity: IdentitySettings,
    total: int,
    bar: tqdm,
) -> FoundFaces:
    """Detect, track, crop (into ``store``, candidate by candidate) and embed every face.

    A track's face is embedded at its start and every ``embed_every`` frames. Where a sample
    lies farther than ``split_threshold`` from the mean of its segment so far, another person
    has taken over the track (a cut the thumbnails missed, a dissolve): the faces since the last
    sample are bisected with a few more embeddings, and the track is cut at the first one
    nearer the new sample than the old mean, so one person's identity never runs on into
    another's. Crops go straight to the file: a memory map of it would keep every written page
    resident, so memory would grow with the clip's length.
    """
    cuts, tracks = ShotCuts(), FaceTracks()
    frame_of, geometry, segment_of, embedded, embeddings = [], [], [], [], []
    live: dict[int, Segment] = {}

    def sample(index: int, chip: np.ndarray) -> np.ndarray:
        embedded.append(index)
        embeddings.append(embedder.embed([chip])[0])
        return embeddings[-1]

    def verifiable(index: int) -> bool:
        return bool(identity.verifiable(geometry[index])[0])

    decoded = 0
    for frame, small in prefetch(frames):
        if decoded == total:
            raise Affect4kError(f"decoded more frames than the {total} counted")
        height, width = frame.shape[:2]
        sx, sy = width / small.shape[1], height / small.shape[0]
        faces = [d.scaled(sx, sy) for d in detector.detect(small)]
        boxes = np.array([d.bbox for d in faces]).reshape(-1, 4)
        for face, track in zip(faces, tracks.update(boxes, cut=cuts.is_cut(small)), strict=True):
            index = len(frame_of)
            frame_of.append(decoded)
            geometry.append(np.concatenate([[face.score], face.bbox, face.landmarks.ravel()]))
            segment_of.append(track)
            store.write(align_face(frame, face.landmarks, crop_size).data)
            chip = face_chip(frame, face.landmarks)
            state = live.setdefault(track, Segment())
            state.seen = decoded
            if state.sampled >= 0 and decoded - state.sampled < identity.embed_every:
                state.since.append((index, chip))
                continue
            embedding = sample(index, chip)
            if state.drifted(embedding, identity.split_threshold):
                mean = state.total / state.count
                first = _first_of_new_person(state.since, mean, embedding, sample)
                new = tracks.split(track)
                for moved, _ in state.since[first:]:
                    segment_of[moved] = new
                segment_of[index] = new
                del live[track]
                state = live[new] = Segment(seen=decoded)
            state.add(embedding, verifiable(index))
            state.sampled, state.since = decoded, []
        for track in [t for t, state in live.items() if decoded - state.seen > tracks.max_gap]:
            del live[track]  # the track has ended; drop its chips
        decoded += 1
        bar.update()
    return FoundFaces(
        decoded=decoded,
        frame=np.array(frame_of, np.int64),
        geometry=np.array(geometry, np.float64).reshape(-1, len(GEOMETRY_COLUMNS)),
        segment=np.array(segment_of, np.int64),
        embedded=np.array(embedded, np.int64),
        embeddings=np.array(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE),
    )


def _first_of_new_person(
    since: list[tuple[int, np.ndarray]],
    old: np.ndarray,
    new: np.ndarray,
    sample: Callable[[int, np.ndarray], np.ndarray],
) -> int:
    """Position in ``since`` of the first face nearer the ``new`` sample than the ``old``
    segment's mean (``len(since)``: only the new sample's face), found by bisection: a person
    changes once between two samples, so log2(embed_every) embeddings place the change to the
    frame. Each embedding is kept as a sample of its face."""
    old_side, new_side = -1, len(since)
    while new_side - old_side > 1:
        middle = (old_side + new_side) // 2
        embedding = sample(*since[middle])
        if _distance(embedding, new) < _distance(embedding, old):
            new_side = middle
        else:
            old_side = middle
    return new_side
