"""The face stage: every face of every frame, who each one is, and the subject's aligned crops.

Each frame is decoded once. Faces are detected on a small copy (detectors gain nothing from
4K and cost ~36x more on it); every face is mapped back to full resolution, its aligned crop
is sampled from the full-resolution frame (what recording in 4K buys) and kept as a candidate
in a scratch file, and it joins a face track (:mod:`affect4k.faces.tracking`). A track's face is
described by a face-recognition embedding (:mod:`affect4k.faces.identity`) when the track starts and
every ``embed_every`` frames after, in batches: identity changes only at a track's start, and
the descriptor is the stage's most expensive step. Once the clip is decoded, tracks are
clustered into identities, the subject is chosen for the whole clip (most screen time, or
nearest a reference photo), and the subject's candidate crops are copied into the ``.npy``;
frames where only other people are visible get no face. Decoding runs in ffmpeg's own process
and the detection copy is made in a reader thread, so the detector, the pipe and ffmpeg keep
the CPU cores busy together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial.distance import cdist
from tqdm import tqdm

from affect4k import CLIP_FPS
from affect4k.core.columns import BOX_COLUMNS, LANDMARK_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path, scratch_dir
from affect4k.core.media import count_frames, iter_frames, prefetch, probe_video
from affect4k.core.progress import progress as progress_bar
from affect4k.faces.align import align_face
from affect4k.faces.detectors import MIN_FACE_SIZE, Detection, Detector
from affect4k.faces.identity import (
    EMBEDDING_SIZE,
    FaceEmbedder,
    estimated_yaw,
    face_chip,
    reference_embedding,
)
from affect4k.faces.tracking import (
    BRIDGED,
    REJECTED,
    UNVERIFIED,
    VERIFIED,
    FaceTracks,
    ShotCuts,
    Subject,
    SubjectTracker,
    choose_subject,
    cluster_tracks,
    face_verdicts,
)

log = logging.getLogger(__name__)

#: Parquet columns after ``frame``, ``time_s`` and ``face``, in the order of a row's geometry.
GEOMETRY_COLUMNS = ["score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
#: Parquet columns after the geometry: faces detected in the frame, the kept face's identity
#: (-1 without a face), its embedding's distance to the subject's reference, and what face
#: recognition said of the subject there (:data:`VERIFICATION_STATES`).
IDENTITY_COLUMNS = ["faces", "identity", "subject_distance", "verification"]
#: Values of ``verification``: the subject kept from verified samples (``verified``) or as a
#: stretch the descriptor cannot judge between verified faces of one track (``bridged``,
#: ``faces.unverified: bridge``); not kept: a face it cannot judge (``unverified``: a profile,
#: a tiny face, a change of person between two samples), only other people (``rejected``),
#: no face at all (``none``).
VERIFICATION_STATES = (VERIFIED, BRIDGED, UNVERIFIED, REJECTED, "none")
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
    """How faces become identities, which one is the subject, and which of its faces are
    verified as it (config key ``faces``)."""

    #: Track segments closer than this on average (dlib embedding distance) are one person.
    cluster_threshold: float
    #: A face is the subject only within this distance of its reference (the photo, or the
    #: subject's mean embedding).
    subject_threshold: float
    #: A track's face is embedded at its start and every this many frames after.
    embed_every: int
    #: A track is cut where a sample lies farther than this from its segment's mean so far.
    split_threshold: float
    #: Faces turned further than this (degrees, from the landmarks) cannot be verified ...
    max_yaw: float
    #: ... nor faces narrower than this (clip pixels).
    min_verify_width: float
    #: ``drop``: unverifiable faces are never the subject; ``bridge``: a stretch of them
    #: between verified faces of one unsplit track is kept.
    unverified: str
    #: No photo and the runner-up on screen within this share of the top screen time: say so.
    subject_margin: float
    #: A subject kept in fewer than this share of the frames: say so.
    min_coverage: float

    def check(self) -> None:
        """Refuse values the descriptor cannot use, naming the config key."""
        for key in ("cluster_threshold", "subject_threshold", "split_threshold"):
            value = getattr(self, key)
            if not 0.0 < value <= 2.0:  # dlib's embedding distances lie in [0, 2]
                raise Affect4kError(f"faces.{key} must be within (0, 2], got {value}")
        if self.embed_every < 1:
            raise Affect4kError(f"faces.embed_every must be at least 1, got {self.embed_every}")
        if not 0.0 < self.max_yaw <= 90.0:
            raise Affect4kError(f"faces.max_yaw must be within (0, 90] degrees, got {self.max_yaw}")
        if self.unverified not in ("drop", "bridge"):
            raise Affect4kError(f"faces.unverified must be drop or bridge, got {self.unverified!r}")
        for key in ("subject_margin", "min_coverage"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise Affect4kError(f"faces.{key} must be within [0, 1], got {getattr(self, key)}")

    @classmethod
    def from_section(cls, faces: Mapping[str, Any]) -> IdentitySettings:
        """The settings from the config's whole ``faces`` section (defaults filled in)."""
        return cls(**{item.name: faces[item.name] for item in fields(cls)})

    def verifiable(self, geometry: np.ndarray) -> np.ndarray:
        """Per face (rows of :data:`GEOMETRY_COLUMNS`): whether the descriptor can judge it."""
        geometry = np.atleast_2d(geometry)
        landmarks = geometry[:, 5:].reshape(-1, 5, 2)
        width = geometry[:, 3] - geometry[:, 1]
        return (np.abs(estimated_yaw(landmarks)) <= self.max_yaw) & (width >= self.min_verify_width)


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
            people = _identities(found, identity, photo)
            subject = people.subject
            if subject is None and photo is not None:
                nearest = "no face the descriptor can judge"
                if len(people.centroids):
                    distance = np.linalg.norm(people.centroids - photo, axis=1).min()
                    nearest = f"nearest identity: {distance:.2f}"
                raise Affect4kError(
                    f"nobody in {clip} is within faces.subject_threshold"
                    f" {identity.subject_threshold} of the face in {subject_photo} ({nearest})"
                )
            kept = _subject_per_frame(people, found.frame, total)
            if not (kept >= 0).any():
                raise Affect4kError(
                    f"no face in {clip} could be verified as the subject: every face is turned"
                    f" beyond faces.max_yaw {identity.max_yaw} or narrower than"
                    f" faces.min_verify_width {identity.min_verify_width} px"
                )
            _say_what_was_chosen(video_id, people, photo is not None, kept, identity)
            candidates = _candidate_crops(scratch / "candidates.u8", len(found.frame), crop_size)
            _write_kept_crops(npy_temp, candidates, kept, crop_size)
            pq.write_table(_table(found, people, kept), parquet_temp)
            if identities_path is not None:
                table = _identity_table(found, people, candidates, total)
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
    #: its track segment (a face track, cut where its embeddings changed person).
    frame: np.ndarray
    geometry: np.ndarray
    segment: np.ndarray
    #: Per embedding (a sample): the candidate it describes, and the 128 numbers.
    embedded: np.ndarray
    embeddings: np.ndarray


@dataclass
class _Segment:
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
    live: dict[int, _Segment] = {}

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
            state = live.setdefault(track, _Segment())
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
                state = live[new] = _Segment(seen=decoded)
            state.add(embedding, verifiable(index))
            state.sampled, state.since = decoded, []
        for track in [t for t, state in live.items() if decoded - state.seen > tracks.max_gap]:
            del live[track]  # the track has ended; drop its chips
        decoded += 1
        bar.update()
    return _Found(
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


@dataclass(frozen=True)
class _People:
    """Identities of the clip, numbered by screen time (0: on screen in the most frames), and
    each sample's and face's verdict on the subject."""

    #: Per candidate: its identity (-1: its segment had no verifiable face), the sample that
    #: speaks for it (its segment's nearest in time), its distance to the subject's reference
    #: and its verdict (:data:`affect4k.faces.tracking.VERIFIED` ...).
    identity: np.ndarray
    sample: np.ndarray
    distance: np.ndarray
    verdict: np.ndarray
    #: Per identity: frames on screen, track segments, mean verifiable embedding.
    frames: np.ndarray
    tracks: np.ndarray
    centroids: np.ndarray
    subject: Subject | None


def _identities(found: _Found, identity: IdentitySettings, photo: np.ndarray | None) -> _People:
    """Cluster the segments into identities, choose the subject and verify every face.

    Segments are clustered by the mean of their verifiable samples (a profile would pull a
    mean anywhere); a segment with none belongs to nobody. A sample is verified as the subject
    when it is verifiable, within ``subject_threshold`` of the subject's reference and nearer
    the subject's mean than any other identity's; each face then takes its verdict from the
    samples of its segment (:func:`affect4k.faces.tracking.face_verdicts`).
    """
    verifiable = (
        identity.verifiable(found.geometry[found.embedded])
        if len(found.embedded)
        else (np.zeros(0, bool))
    )
    segment_ids, segment_index = np.unique(found.segment, return_inverse=True)
    sample_segment = segment_index[found.embedded]
    judged = [s for s in range(len(segment_ids)) if verifiable[sample_segment == s].any()]
    # Segments of at least two sampling intervals speak for a person; shorter ones (a blend
    # in a dissolve, a face glimpsed) join the person they are nearest, never bridge two.
    first = np.array([found.frame[segment_index == s].min() for s in judged], np.int64)
    last = np.array([found.frame[segment_index == s].max() for s in judged], np.int64)
    labels = cluster_tracks(
        [found.embeddings[(sample_segment == s) & verifiable] for s in judged],
        identity.cluster_threshold,
        core=last - first + 1 >= 2 * identity.embed_every,
    )
    segment_identity = np.full(len(segment_ids), -1, np.int64)
    segment_identity[judged] = labels
    count = int(labels.max()) + 1 if len(labels) else 0
    candidate_identity = segment_identity[segment_index]
    frames = np.array(
        [len(np.unique(found.frame[candidate_identity == i])) for i in range(count)], np.int64
    )
    # Most screen time first; ties by first appearance.
    order = np.argsort(-frames, kind="stable")
    rank = np.full(count + 1, -1, np.int64)
    rank[order] = np.arange(count)
    candidate_identity = rank[candidate_identity]  # -1 stays -1 (rank's last entry)
    sample_identity = candidate_identity[found.embedded]
    centroids = np.zeros((count, EMBEDDING_SIZE), np.float32)
    for i in range(count):
        centroids[i] = found.embeddings[(sample_identity == i) & verifiable].mean(axis=0)
    subject = choose_subject(centroids, frames[order], photo, identity.subject_threshold)
    verdicts = _sample_verdicts(found.embeddings, verifiable, centroids, subject, identity)
    faces = face_verdicts(
        found.frame,
        found.segment,
        found.embedded,
        verdicts,
        window=identity.embed_every,
        bridge=identity.unverified == "bridge",
    )
    sample = _nearest_sample(found, segment_index, sample_segment, len(segment_ids))
    distance = (
        np.full(len(found.frame), np.nan)
        if subject is None
        else np.linalg.norm(found.embeddings[sample] - subject.reference, axis=1)
    )
    return _People(
        identity=candidate_identity,
        sample=sample,
        distance=distance,
        verdict=faces,
        frames=frames[order],
        tracks=np.array(
            [len(np.unique(found.segment[candidate_identity == i])) for i in range(count)],
            np.int64,
        ),
        centroids=centroids,
        subject=subject,
    )


def _sample_verdicts(
    embeddings: np.ndarray,
    verifiable: np.ndarray,
    centroids: np.ndarray,
    subject: Subject | None,
    identity: IdentitySettings,
) -> np.ndarray:
    verdicts = np.where(verifiable, REJECTED, UNVERIFIED).astype(object)
    if subject is None or not len(embeddings):
        return verdicts
    near = np.linalg.norm(embeddings - subject.reference, axis=1) <= identity.subject_threshold
    nearest = np.argmin(cdist(embeddings, centroids), axis=1)
    verdicts[verifiable & near & (nearest == subject.identity)] = VERIFIED
    return verdicts


def _nearest_sample(
    found: _Found, segment_index: np.ndarray, sample_segment: np.ndarray, segments: int
) -> np.ndarray:
    """Per candidate: its segment's sample nearest in time (candidates are in frame order, so
    are the samples of one segment; its first face is always one)."""
    sample = np.empty(len(found.frame), np.int64)
    for s in range(segments):
        members = np.flatnonzero(segment_index == s)
        samples = np.flatnonzero(sample_segment == s)
        samples = samples[np.argsort(found.frame[found.embedded[samples]], kind="stable")]
        times = found.frame[found.embedded[samples]]
        at = found.frame[members]
        after = np.clip(np.searchsorted(times, at), 0, len(times) - 1)
        before = np.clip(after - 1, 0, None)
        nearer_after = np.abs(times[after] - at) < np.abs(times[before] - at)
        sample[members] = samples[np.where(nearer_after, after, before)]
    return sample


def _subject_per_frame(people: _People, frame_of: np.ndarray, total: int) -> np.ndarray:
    """Per frame: the candidate kept as the subject (-1: none), a verified or bridged face;
    where two are in one frame, the one nearer the reference."""
    kept = np.full(total, -1, np.int64)
    best = np.full(total, np.inf)
    for index in np.flatnonzero(np.isin(people.verdict, (VERIFIED, BRIDGED))):
        frame = frame_of[index]
        distance = people.distance[index]
        if kept[frame] < 0 or distance < best[frame]:
            best[frame], kept[frame] = distance, index
    return kept


def _frame_verification(people: _People, frame_of: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Per frame: the kept face's verdict, else ``unverified`` if a face there could not be
    judged, else ``rejected`` if every face there is someone else, else ``none``."""
    total = len(kept)
    state = np.full(total, "none", dtype=object)
    for verdict in (REJECTED, UNVERIFIED):  # unverified wins over rejected
        state[np.unique(frame_of[people.verdict == verdict])] = verdict
    state[kept >= 0] = people.verdict[kept[kept >= 0]]
    return state


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


def _table(found: _Found, people: _People, kept: np.ndarray) -> pa.Table:
    total = len(kept)
    frame = np.arange(total, dtype=np.int64)
    face = kept >= 0
    geometry = np.full((total, len(GEOMETRY_COLUMNS)), np.nan)
    geometry[face] = found.geometry[kept[face]]
    identity = np.full(total, -1, np.int64)
    identity[face] = people.identity[kept[face]]
    subject_distance = np.full(total, np.nan)
    subject_distance[face] = people.distance[kept[face]]
    columns = {"frame": frame, "time_s": frame / CLIP_FPS, "face": face}
    columns.update({name: geometry[:, i] for i, name in enumerate(GEOMETRY_COLUMNS)})
    columns["faces"] = np.bincount(found.frame, minlength=total).astype(np.int64)
    columns["identity"] = identity
    columns["subject_distance"] = subject_distance
    columns["verification"] = pa.array(
        _frame_verification(people, found.frame, kept).tolist(), pa.string()
    )
    return pa.table(columns)


def _say_what_was_chosen(
    video_id: str,
    people: _People,
    by_photo: bool,
    kept: np.ndarray,
    identity: IdentitySettings,
) -> None:
    """Warn, naming the video, where the subject was a near toss-up or is rarely kept."""
    frames = people.frames
    if not by_photo and len(frames) > 1 and frames[1] >= (1 - identity.subject_margin) * frames[0]:
        log.warning(
            "video %s: the subject is the person on screen longest, but the next one is on"
            " screen nearly as long (%d against %d frames, within faces.subject_margin %g):"
            " give a subject photo in videos.tsv to choose",
            video_id,
            frames[0],
            frames[1],
            identity.subject_margin,
        )
    coverage = float((kept >= 0).mean())
    if coverage < identity.min_coverage:
        log.warning(
            "video %s: the subject's face is kept in %.0f %% of the frames (below"
            " faces.min_coverage %g): look at its quality-control sheet",
            video_id,
            100 * coverage,
            identity.min_coverage,
        )


def _identity_table(found: _Found, people: _People, candidates: np.ndarray, total: int) -> pa.Table:
    """One row per identity (:data:`IDENTITY_TABLE_COLUMNS`), its largest face as thumbnail."""
    count, subject = len(people.frames), people.subject
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
