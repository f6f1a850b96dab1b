"""The face stage: every face of every frame, who each one is, and the subject's aligned crops.

Each frame is decoded once. Faces are detected on a small copy (detectors gain nothing from
4K and cost ~36x more on it); every face is mapped back to full resolution, its aligned crop
is sampled from the full-resolution frame (what recording in 4K buys) and kept as a candidate
in a scratch file, and it joins a face track (:mod:`affect4k.tracking`). A track's face is
described by a face-recognition embedding (:mod:`affect4k.identity`) when the track starts and
every ``embed_every`` frames after, in batches: identity changes only at a track's start, and
the descriptor is the stage's most expensive step. Once the clip is decoded, tracks are
clustered into identities, the subject is chosen for the whole clip (most screen time, or
nearest a reference photo), and the subject's candidate crops are copied into the ``.npy``;
frames where only other people are visible get no face. Decoding runs in ffmpeg's own process
and the detection copy is made in a reader thread, so the detector, the pipe and ffmpeg keep
the CPU cores busy together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from affect4k import CLIP_FPS
from affect4k.align import align_face
from affect4k.detectors import MIN_FACE_SIZE, Detection, Detector
from affect4k.errors import Affect4kError
from affect4k.files import atomic_path, scratch_dir
from affect4k.identity import EMBEDDING_SIZE, FaceEmbedder, face_chip, reference_embedding
from affect4k.media import count_frames, iter_frames, prefetch, probe_video
from affect4k.progress import progress as progress_bar
from affect4k.tracking import (
    FaceTracks,
    ShotCuts,
    Subject,
    SubjectTracker,
    choose_subject,
    cluster_tracks,
)

#: Parquet columns after ``frame``, ``time_s`` and ``face``, in the order of a row's geometry.
GEOMETRY_COLUMNS = ["score", "x1", "y1", "x2", "y2"] + [
    f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y")
]
#: Parquet columns after the geometry: faces detected in the frame, the kept face's identity
#: (-1 without a face) and its embedding's distance to the subject's reference.
IDENTITY_COLUMNS = ["faces", "identity", "subject_distance"]
#: Columns of the per-video identity table (``thumbnail``: PNG bytes of an aligned crop;
#: ``embedding``: the identity's mean face-recognition embedding, 128 float32, which tells the
#: same person apart across videos and corpora).
IDENTITY_TABLE_COLUMNS = (
    "identity",
    "frames",
    "seconds",
    "share",
    "tracks",
    "subject",
    "distance",
    "thumbnail_frame",
    "thumbnail",
    "embedding",
)
#: Chips embedded together (dlib runs a batch as one pass; chips are 67 KB each).
EMBED_BATCH = 16


@dataclass(frozen=True)
class FaceSummary:
    """What :func:`extract_faces` wrote for one video."""

    video_id: str
    frames: int
    face_frames: int
    identities: int = 0
    subject: int = -1


@dataclass(frozen=True)
class IdentitySettings:
    """How faces become identities and which one is the subject (config key ``faces``)."""

    #: Tracks closer than this on average (dlib embedding distance) are one person.
    cluster_threshold: float
    #: The identity nearest the reference photo is the subject only within this distance.
    subject_threshold: float
    #: A track's face is embedded at its start and every this many frames after.
    embed_every: int

    def check(self) -> None:
        """Refuse values the descriptor cannot use, naming the config key."""
        for key in ("cluster_threshold", "subject_threshold"):
            value = getattr(self, key)
            if not 0.0 < value <= 2.0:  # dlib's embedding distances lie in [0, 2]
                raise Affect4kError(f"faces.{key} must be within (0, 2], got {value}")
        if self.embed_every < 1:
            raise Affect4kError(f"faces.embed_every must be at least 1, got {self.embed_every}")


def extract_faces(
    clip: Path,
    parquet_path: Path,
    npy_path: Path,
    *,
    detector: Detector,
    video_id: str,
    detect_width: int,
    min_face: int | None = None,
    crop_size: int = 112,
    progress: bool = True,
    identities_path: Path | None = None,
    subject_photo: Path | None = None,
    identity: IdentitySettings,
    embedder: FaceEmbedder | None = None,
) -> FaceSummary:
    """Detect every face of ``clip``, tell who each is, and crop the subject in every frame.

    Writes ``parquet_path`` (one row per frame: ``frame``, ``time_s``, ``face``, then
    :data:`GEOMETRY_COLUMNS` in full-resolution pixels, NaN where ``face`` is False, then
    :data:`IDENTITY_COLUMNS`), ``npy_path`` (uint8 RGB ``(frames, crop_size, crop_size, 3)``,
    row i = frame i, zeros where there is no face) and, if given, ``identities_path`` (one row
    per identity, :data:`IDENTITY_TABLE_COLUMNS`, most screen time first), all atomically.
    The subject is the identity with the most screen time, or the one nearest the face in
    ``subject_photo`` (within ``identity.subject_threshold``). Faces are detected on a copy
    ``detect_width`` pixels wide, or wider where ``min_face`` (the narrowest face to find, in
    clip pixels) needs it (:func:`detection_width`).
    """
    check_crop_settings(crop_size, detect_width)
    identity.check()
    try:
        embedder = embedder or FaceEmbedder()
        photo = None
        if subject_photo is not None:
            photo = reference_embedding(Path(subject_photo), detector, embedder)
        with (
            atomic_path(parquet_path) as parquet_temp,
            atomic_path(npy_path) as npy_temp,
            scratch_dir(npy_path) as scratch,
        ):
            total = count_frames(clip)
            if total == 0:
                raise Affect4kError(f"{clip} has no video frames")
            with (
                open(scratch / "candidates.u8", "wb") as store,
                _progress_bar(video_id, total, progress) as bar,
            ):
                width = detection_width(probe_video(clip).width, detect_width, min_face)
                frames = _frames_and_detection_copies(clip, width)
                found = _scan(frames, detector, embedder, store, crop_size, identity, total, bar)
            if found.decoded != total:
                raise Affect4kError(
                    f"decoded {found.decoded} frames of {clip}, but it counts {total}"
                )
            if not len(found.frame):
                # A whole clip without a face is a wrong video or detector.
                raise Affect4kError(f"no face found in any of {total} frames of {clip}")
            people = _identities(found, identity.cluster_threshold)
            subject = choose_subject(
                people.centroids, people.frames, photo, identity.subject_threshold
            )
            if subject is None and photo is not None:
                nearest = np.linalg.norm(people.centroids - photo, axis=1).min()
                raise Affect4kError(
                    f"nobody in {clip} is within faces.subject_threshold"
                    f" {identity.subject_threshold} of the face in {subject_photo}"
                    f" (nearest identity: {nearest:.2f})"
                )
            distance = _distances(found, people, subject)
            kept = _subject_per_frame(people, subject, found.frame, distance, total)
            candidates = _candidate_crops(scratch / "candidates.u8", len(found.frame), crop_size)
            _write_kept_crops(npy_temp, candidates, kept, crop_size)
            pq.write_table(_table(found, people, kept, distance), parquet_temp)
            if identities_path is not None:
                table = _identity_table(found, people, subject, candidates, total)
                with atomic_path(identities_path) as identities_temp:
                    pq.write_table(table, identities_temp)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    return FaceSummary(
        video_id=video_id,
        frames=total,
        face_frames=int((kept >= 0).sum()),
        identities=len(people.frames),
        subject=-1 if subject is None else subject.identity,
    )


def check_crop_settings(crop_size: int, detect_width: int) -> None:
    """Refuse a crop size ArcFace's template cannot be scaled to, or a useless detection copy."""
    if crop_size <= 0 or crop_size % 112:
        raise Affect4kError(f"crop_size must be a multiple of 112 (ArcFace), got {crop_size}")
    if detect_width < 32:
        raise Affect4kError(f"detect_width must be at least 32 pixels, got {detect_width}")


def detection_copy(frame: np.ndarray, detect_width: int) -> np.ndarray:
    """``frame`` shrunk to ``detect_width`` pixels wide (the frame itself if not wider)."""
    height, width = frame.shape[:2]
    if width <= detect_width:
        return frame
    size = (detect_width, max(1, round(height * detect_width / width)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def subject_crop(
    frame: np.ndarray,
    small: np.ndarray,
    detector: Detector,
    tracker: SubjectTracker,
    crop_size: int,
) -> tuple[Detection | None, np.ndarray | None]:
    """The subject in ``frame`` (full-resolution pixels) and its aligned crop, or ``(None, None)``.

    Faces are detected on ``small`` (:func:`detection_copy` of ``frame``) and the crop is
    sampled from ``frame``, as the face stage does, so a photo given to ``affect4k predict``
    gets exactly the database's crops. A fresh ``tracker`` takes the largest face (a photo has
    no clip to learn the subject's identity from).
    """
    subject = tracker.update(detector.detect(small))
    if subject is None:
        return None, None
    height, width = frame.shape[:2]
    subject = subject.scaled(width / small.shape[1], height / small.shape[0])
    return subject, align_face(frame, subject.landmarks, crop_size)


def detection_width(clip_width: int, detect_width: int, min_face: int | None) -> int:
    """Width of the copy faces are detected on: ``detect_width``, widened until a face
    ``min_face`` clip pixels wide is the detector's :data:`MIN_FACE_SIZE` in it (None: no
    such need), and never wider than the clip. A 4K clip's copy 640 wide finds faces from 240
    px; finding 48 px takes a copy 3200 wide (docs/performance.md measures what it costs)."""
    if min_face is not None:
        detect_width = max(detect_width, math.ceil(MIN_FACE_SIZE * clip_width / min_face))
    return min(detect_width, clip_width)


def _frames_and_detection_copies(
    clip: Path, detect_width: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame with its :func:`detection_copy`."""
    for frame in iter_frames(clip):
        yield frame, detection_copy(frame, detect_width)


def _progress_bar(video_id: str, total: int, enabled: bool) -> tqdm:
    """Frames done, percent and ETA of one video on stderr (the job's log); silent if disabled."""
    if not enabled:
        return tqdm(total=total, disable=True)
    return progress_bar(total, f"faces {video_id}", "frame")


@dataclass(frozen=True)
class _Found:
    """Every face of the clip (a candidate), in frame order, and the embeddings computed."""

    decoded: int
    #: Per candidate: its frame, its geometry (:data:`GEOMETRY_COLUMNS`, full resolution) and
    #: its face track.
    frame: np.ndarray
    geometry: np.ndarray
    track: np.ndarray
    #: Per embedding: the candidate it describes, and the 128 numbers.
    embedded: np.ndarray
    embeddings: np.ndarray


def _scan(
    frames: Iterator[tuple[np.ndarray, np.ndarray]],
    detector: Detector,
    embedder: FaceEmbedder,
    store: BinaryIO,
    crop_size: int,
    identity: IdentitySettings,
    total: int,
    bar: tqdm,
) -> _Found:
    """Detect, track, crop (into ``store``, candidate by candidate) and embed every face.

    Crops go straight to the file: a memory map of it would keep every written page resident,
    so memory would grow with the clip's length.
    """
    cuts, tracks = ShotCuts(), FaceTracks()
    frame_of, geometry, track_of, embedded, embeddings = [], [], [], [], []
    last_embedded: dict[int, int] = {}
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        embedded.extend(index for index, _ in pending)
        embeddings.extend(embedder.embed([chip for _, chip in pending]))
        pending.clear()

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
            track_of.append(track)
            store.write(align_face(frame, face.landmarks, crop_size).data)
            if decoded - last_embedded.get(track, -identity.embed_every) >= identity.embed_every:
                last_embedded[track] = decoded
                pending.append((index, face_chip(frame, face.landmarks)))
        if len(pending) >= EMBED_BATCH:
            flush()
        decoded += 1
        bar.update()
    flush()
    return _Found(
        decoded=decoded,
        frame=np.array(frame_of, np.int64),
        geometry=np.array(geometry, np.float64).reshape(-1, len(GEOMETRY_COLUMNS)),
        track=np.array(track_of, np.int64),
        embedded=np.array(embedded, np.int64),
        embeddings=np.array(embeddings, np.float32).reshape(-1, 128),
    )


@dataclass(frozen=True)
class _People:
    """Identities of the clip, numbered by screen time (0: on screen in the most frames)."""

    #: Per candidate: its identity, and the embedding that speaks for it (its track's sample
    #: nearest in time).
    identity: np.ndarray
    sample: np.ndarray
    #: Per identity: frames on screen, tracks, mean embedding.
    frames: np.ndarray
    tracks: np.ndarray
    centroids: np.ndarray


def _identities(found: _Found, threshold: float) -> _People:
    """Cluster the tracks into identities and tell each candidate its identity and sample."""
    track_ids, track_index = np.unique(found.track, return_inverse=True)
    sample_track = track_index[found.embedded]
    per_track = [found.embeddings[sample_track == t] for t in range(len(track_ids))]
    labels = cluster_tracks(per_track, threshold)
    candidate_identity = labels[track_index] if len(labels) else np.zeros(0, np.int64)
    count = int(labels.max()) + 1 if len(labels) else 0
    frames = np.array(
        [len(np.unique(found.frame[candidate_identity == i])) for i in range(count)], np.int64
    )
    # Most screen time first; ties by first appearance.
    order = np.argsort(-frames, kind="stable")
    rank = np.empty(count, np.int64)
    rank[order] = np.arange(count)
    candidate_identity = rank[candidate_identity] if count else candidate_identity
    sample_identity = candidate_identity[found.embedded]
    centroids = np.zeros((count, found.embeddings.shape[1]), np.float32)
    for i in range(count):
        centroids[i] = found.embeddings[sample_identity == i].mean(axis=0)
    # Each candidate is spoken for by its track's embedding nearest in time (candidates are in
    # frame order, so are the samples of one track).
    sample = np.empty(len(found.frame), np.int64)
    for t in range(len(track_ids)):
        members = np.flatnonzero(track_index == t)
        samples = np.flatnonzero(sample_track == t)
        times = found.frame[found.embedded[samples]]
        after = np.clip(np.searchsorted(times, found.frame[members]), 1, len(times) - 1)
        before = after - 1 if len(times) > 1 else np.zeros_like(after)
        after = after if len(times) > 1 else before
        nearer_after = np.abs(times[after] - found.frame[members]) < np.abs(
            times[before] - found.frame[members]
        )
        sample[members] = samples[np.where(nearer_after, after, before)]
    return _People(
        identity=candidate_identity,
        sample=sample,
        frames=frames[order],
        tracks=np.array(
            [len(np.unique(found.track[candidate_identity == i])) for i in range(count)]
        ),
        centroids=centroids,
    )


def _distances(found: _Found, people: _People, subject: Subject | None) -> np.ndarray:
    """Per candidate: its embedding's distance to the subject's reference (NaN without one)."""
    if subject is None:
        return np.full(len(found.frame), np.nan)
    return np.linalg.norm(found.embeddings[people.sample] - subject.reference, axis=1)


def _subject_per_frame(
    people: _People, subject: Subject | None, frame_of: np.ndarray, distance: np.ndarray, total: int
) -> np.ndarray:
    """Per frame: the candidate that is the subject (-1: none). Where the subject's identity has
    two faces in one frame, the one nearer the reference."""
    kept = np.full(total, -1, np.int64)
    if subject is None:
        return kept
    best = np.full(total, np.inf)
    for index in np.flatnonzero(people.identity == subject.identity):
        frame = frame_of[index]
        if distance[index] < best[frame]:
            best[frame], kept[frame] = distance[index], index
    return kept


def _candidate_crops(path: Path, count: int, crop_size: int) -> np.ndarray:
    """The candidates' crops written by :func:`_scan`, memory-mapped read-only."""
    if count == 0:
        return np.zeros((0, crop_size, crop_size, 3), np.uint8)
    return np.memmap(path, np.uint8, "r", shape=(count, crop_size, crop_size, 3))


def _write_kept_crops(path: Path, candidates: np.ndarray, kept: np.ndarray, crop_size: int) -> None:
    """Stream the kept crops into a new ``.npy``, row i = frame i (zeros without a face)."""
    no_face = np.zeros((crop_size, crop_size, 3), np.uint8)
    with open(path, "wb") as crops:
        np.lib.format.write_array_header_1_0(
            crops,
            {"descr": "|u1", "fortran_order": False, "shape": (len(kept), *no_face.shape)},
        )
        for index in kept:
            crops.write((no_face if index < 0 else np.ascontiguousarray(candidates[index])).data)


def _table(found: _Found, people: _People, kept: np.ndarray, distance: np.ndarray) -> pa.Table:
    total = len(kept)
    frame = np.arange(total, dtype=np.int64)
    face = kept >= 0
    geometry = np.full((total, len(GEOMETRY_COLUMNS)), np.nan)
    geometry[face] = found.geometry[kept[face]]
    identity = np.full(total, -1, np.int64)
    identity[face] = people.identity[kept[face]]
    subject_distance = np.full(total, np.nan)
    subject_distance[face] = distance[kept[face]]
    columns = {"frame": frame, "time_s": frame / CLIP_FPS, "face": face}
    columns.update({name: geometry[:, i] for i, name in enumerate(GEOMETRY_COLUMNS)})
    columns["faces"] = np.bincount(found.frame, minlength=total).astype(np.int64)
    columns["identity"] = identity
    columns["subject_distance"] = subject_distance
    return pa.table(columns)


def _identity_table(
    found: _Found, people: _People, subject: Subject | None, candidates: np.ndarray, total: int
) -> pa.Table:
    """One row per identity (:data:`IDENTITY_TABLE_COLUMNS`), its largest face as thumbnail."""
    count = len(people.frames)
    area = np.prod(found.geometry[:, 3:5] - found.geometry[:, 1:3], axis=1)
    thumbnail_of = [
        int(np.flatnonzero(people.identity == i)[np.argmax(area[people.identity == i])])
        for i in range(count)
    ]
    thumbnails = [
        cv2.imencode(".png", cv2.cvtColor(np.asarray(candidates[c]), cv2.COLOR_RGB2BGR))[1]
        for c in thumbnail_of
    ]
    return pa.table(
        {
            "identity": np.arange(count, dtype=np.int64),
            "frames": people.frames,
            "seconds": people.frames / CLIP_FPS,
            "share": people.frames / total,
            "tracks": people.tracks.astype(np.int64),
            "subject": np.arange(count) == (-1 if subject is None else subject.identity),
            "distance": (
                np.full(count, np.nan) if subject is None else subject.distances.astype(float)
            ),
            "thumbnail_frame": found.frame[thumbnail_of].astype(np.int64),
            "thumbnail": pa.array([t.tobytes() for t in thumbnails], pa.binary()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(people.centroids.ravel(), pa.float32()), EMBEDDING_SIZE
            ),
        }
    )
