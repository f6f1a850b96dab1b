"""The face stage: every face of every frame, who each one is, and the subject's aligned crops.

The scan (:mod:`affect4k.faces.scan`) decodes each frame once and detects faces on a small
copy (detectors gain nothing from 4K and cost ~36x more on it); every face is mapped back to
full resolution, its aligned crop is sampled from the full-resolution frame (what recording in
4K buys) and kept as a candidate in a scratch file, and it joins a face track
(:mod:`affect4k.faces.tracking`). A track's face is described by a face-recognition embedding
(:mod:`affect4k.faces.identity`) when the track starts and every ``embed_every`` frames after,
and the track is cut where the person changes. Once the clip is decoded, track segments are
clustered into identities, the subject is chosen for the whole clip (most screen time, or
nearest a reference photo), and the subject's candidate crops are copied into the ``.npy``;
frames where only other people are visible get no face. Decoding runs in ffmpeg's own process
and the detection copy is made in a reader thread, so the detector, the pipe and ffmpeg keep
the CPU cores busy together.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial.distance import cdist

from affect4k import CLIP_FPS
from affect4k.core.columns import GEOMETRY_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path, scratch_dir
from affect4k.core.media import count_frames, probe_video
from affect4k.faces.align import align_face
from affect4k.faces.detectors import MIN_FACE_SIZE, Detection, Detector
from affect4k.faces.identity import (
    EMBEDDING_SIZE,
    FaceEmbedder,
    IdentitySettings,
    reference_embedding,
)
from affect4k.faces.scan import (
    FoundFaces,
    face_progress,
    frames_and_detection_copies,
    scan_faces,
)
from affect4k.faces.tracking import (
    BRIDGED,
    REJECTED,
    UNVERIFIED,
    VERIFIED,
    Subject,
    SubjectTracker,
    choose_subject,
    cluster_tracks,
    face_verdicts,
)

log = logging.getLogger(__name__)


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
                face_progress(video_id, total, progress) as bar,
            ):
                width = detection_width(probe_video(clip).width, detect_width, min_face)
                frames = frames_and_detection_copies(clip, width)
                found = scan_faces(
                    frames, detector, embedder, store, crop_size, identity, total, bar
                )
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


def subject_crop(
    frame: np.ndarray,
    small: np.ndarray,
    detector: Detector,
    tracker: SubjectTracker,
    crop_size: int,
) -> tuple[Detection | None, np.ndarray | None]:
    """The subject in ``frame`` (full-resolution pixels) and its aligned crop, or ``(None, None)``.

    Faces are detected on ``small`` (:func:`affect4k.faces.scan.detection_copy` of ``frame``)
    and the crop is sampled from ``frame``, as the face stage does, so a photo given to
    ``affect4k predict`` gets exactly the database's crops. A fresh ``tracker`` takes the largest
    face (a photo has no clip to learn the subject's identity from).
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


def _identities(found: FoundFaces, identity: IdentitySettings, photo: np.ndarray | None) -> _People:
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
    found: FoundFaces, segment_index: np.ndarray, sample_segment: np.ndarray, segments: int
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
    """The candidates' crops written by :func:`scan_faces`, memory-mapped read-only."""
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


def _table(found: FoundFaces, people: _People, kept: np.ndarray) -> pa.Table:
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


def _identity_table(
    found: FoundFaces, people: _People, candidates: np.ndarray, total: int
) -> pa.Table:
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
