"""The face stage: per-frame detection, subject tracking and aligned 112x112 crops of a clip.

Each frame is decoded once. Faces are detected on a small copy (detectors gain nothing from
4K and cost ~36x more on it), the subject's landmarks are mapped back to full resolution and
its crop is sampled from the full-resolution frame, which is what recording in 4K buys.
Decoding runs in ffmpeg's own process and the detection copy is made in a reader thread, so
the detector, the pipe and ffmpeg keep the CPU cores busy together.
"""

from __future__ import annotations

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
from affect4k.detectors import Detection, Detector
from affect4k.errors import Affect4kError
from affect4k.files import atomic_path
from affect4k.media import VideoInfo, count_frames, iter_frames, prefetch, probe_video
from affect4k.progress import progress as progress_bar
from affect4k.tracking import SubjectTracker

#: Parquet columns after ``frame``, ``time_s`` and ``face``, in the order of a row's geometry.
GEOMETRY_COLUMNS = ["score", "x1", "y1", "x2", "y2"] + [
    f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y")
]


@dataclass(frozen=True)
class FaceSummary:
    """What :func:`extract_faces` wrote for one video."""

    video_id: str
    frames: int
    face_frames: int


def extract_faces(
    clip: Path,
    parquet_path: Path,
    npy_path: Path,
    *,
    detector: Detector,
    video_id: str,
    detect_width: int = 640,
    crop_size: int = 112,
    source_height: int | None = None,
    progress: bool = True,
) -> FaceSummary:
    """Detect, track and crop the subject in every frame of ``clip``.

    Writes ``parquet_path`` (one row per frame: ``frame``, ``time_s``, ``face``, then
    :data:`GEOMETRY_COLUMNS` in full-resolution pixels, NaN where ``face`` is False) and
    ``npy_path`` (uint8 RGB ``(frames, crop_size, crop_size, 3)``, row i = frame i, zeros where
    there is no face), both atomically. ``source_height`` first scales every frame to that many
    lines, aspect ratio kept (the resolution ablation; never upscaled); all outputs then refer
    to that size, and a clip in which no face is found any more is a result, not an error.
    Faces are detected on a copy ``detect_width`` pixels wide.
    """
    check_crop_settings(crop_size, detect_width)
    try:
        with atomic_path(parquet_path) as parquet_temp, atomic_path(npy_path) as npy_temp:
            total = count_frames(clip)
            if total == 0:
                raise Affect4kError(f"{clip} has no video frames")
            geometry = np.full((total, len(GEOMETRY_COLUMNS)), np.nan)
            with open(npy_temp, "wb") as crops, _progress_bar(video_id, total, progress) as bar:
                # Only the ablation scales, so only it reads the clip's header for its size.
                size = scaled_size(probe_video(clip), source_height) if source_height else None
                frames = _frames_and_detection_copies(clip, size, detect_width)
                decoded = _write_crops(crops, geometry, frames, detector, crop_size, bar)
            if decoded != total:
                raise Affect4kError(f"decoded {decoded} frames of {clip}, but it counts {total}")
            face = ~np.isnan(geometry[:, 0])
            # A whole clip without a face is a wrong video or detector, except in the ablation:
            # scaled down far enough, a real face becomes too small to find, which is a result.
            if not face.any() and source_height is None:
                raise Affect4kError(f"no face found in any of {total} frames of {clip}")
            pq.write_table(_table(geometry, face), parquet_temp)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    return FaceSummary(video_id=video_id, frames=total, face_frames=int(face.sum()))


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
    sampled from ``frame``. The face stage and ``affect4k predict`` share this step, so a
    photo or a user's video gets exactly the database's crops. A fresh ``tracker`` takes the
    largest face.
    """
    subject = tracker.update(detector.detect(small))
    if subject is None:
        return None, None
    height, width = frame.shape[:2]
    subject = subject.scaled(width / small.shape[1], height / small.shape[0])
    return subject, align_face(frame, subject.landmarks, crop_size)


def scaled_size(info: VideoInfo, height: int | None) -> tuple[int, int] | None:
    """(width, height) of ``info``'s frames scaled to ``height`` lines with the aspect ratio
    kept (width rounded to even, as encoders and scalers want); None to keep them as they are."""
    if height is None or height >= info.height:
        return None
    width = max(2, 2 * round(info.width * height / info.height / 2))
    return width, height


def _frames_and_detection_copies(
    clip: Path, source_size: tuple[int, int] | None, detect_width: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame with its :func:`detection_copy`."""
    for frame in iter_frames(clip, source_size):
        yield frame, detection_copy(frame, detect_width)


def _write_crops(
    crops_file: BinaryIO,
    geometry: np.ndarray,
    frames: Iterator[tuple[np.ndarray, np.ndarray]],
    detector: Detector,
    crop_size: int,
    bar: tqdm,
) -> int:
    """Fill ``geometry`` and stream the crops into a new ``.npy``; return the frames decoded.

    Rows go straight to the file: a memory map of the output would keep every written page
    resident, so memory would grow with the clip's length.
    """
    total = len(geometry)
    np.lib.format.write_array_header_1_0(
        crops_file,
        {"descr": "|u1", "fortran_order": False, "shape": (total, crop_size, crop_size, 3)},
    )
    no_face = np.zeros((crop_size, crop_size, 3), np.uint8)
    tracker = SubjectTracker()
    decoded = 0
    for frame, small in prefetch(frames):
        if decoded == total:
            raise Affect4kError(f"decoded more frames than the {total} counted")
        subject, crop = subject_crop(frame, small, detector, tracker, crop_size)
        if subject is not None:
            geometry[decoded, 0] = subject.score
            geometry[decoded, 1:5] = subject.bbox
            geometry[decoded, 5:] = subject.landmarks.ravel()
        crops_file.write((no_face if crop is None else crop).data)
        decoded += 1
        bar.update()
    return decoded


def _progress_bar(video_id: str, total: int, enabled: bool) -> tqdm:
    """Frames done, percent and ETA of one video on stderr (the job's log); silent if disabled."""
    if not enabled:
        return tqdm(total=total, disable=True)
    return progress_bar(total, f"faces {video_id}", "frame")


def _table(geometry: np.ndarray, face: np.ndarray) -> pa.Table:
    frame = np.arange(len(face), dtype=np.int64)
    columns = {"frame": frame, "time_s": frame / CLIP_FPS, "face": face}
    columns.update({name: geometry[:, i] for i, name in enumerate(GEOMETRY_COLUMNS)})
    return pa.table(columns)
