"""Rebuild a release's clips and crops from its manifest, and check them (``affect4k
rehydrate``, :mod:`affect4k.commands.rehydrate_release`).

A release ships no pixels (:mod:`affect4k.dataset.release`). Whoever uses it downloads each video
again and runs the same download, clip and face stages, with the settings the release was built with
(``build.json``), then checks what came out against the manifest: the frame count, every frame's
time, where the subject's face is (box overlap) and what its crop looks like (the perceptual hash of
each crop). Videos disappear and change on YouTube; the report says per video what is gone or
changed, so a user knows which part of the database they really have.

The face stage picks the subject as the build did without a photo (the person on screen the
longest): a video the build gave a subject photo may pick someone else, and the box check
says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affect4k.core.columns import BOX_COLUMNS
from affect4k.core.errors import Affect4kError

log = logging.getLogger(__name__)

#: Thresholds a rebuilt video must meet to be ``ok``: its timestamps within a millisecond of
#: the release's; face found or not as in the release on this share of frames; at least this
#: box overlap (intersection over union) at the median frame with a face in both; crops within
#: ``hash_tolerance`` bits of the release's hash on this share of those frames.
MAX_TIME_ERROR_S = 0.001
MIN_FACE_AGREEMENT = 0.95
MIN_BOX_IOU = 0.8
MIN_CROPS_WITHIN = 0.95
#: Bits (of 64) a rebuilt crop's hash may differ by: re-encoding moves a few.
HASH_TOLERANCE = 8


@dataclass(frozen=True)
class VideoCheck:
    """One row of ``rehydrate.csv``: how a rebuilt video compares with the release."""

    video: str
    status: str  # ok, changed or gone
    frames_expected: int
    frames: int
    time_error_s: float
    face_agreement: float
    box_iou: float
    crops_within: float
    max_hash_distance: int
    note: str


def check_release(release: Path) -> None:
    """Refuse a release folder that is incomplete or whose files do not match SHA256SUMS."""
    sums = release / "SHA256SUMS"
    if not sums.is_file():
        raise Affect4kError(f"{release}: no SHA256SUMS here; is it a release folder?")
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = release / name
        if not path.is_file():
            raise Affect4kError(f"{release}: {name} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise Affect4kError(f"{path}: does not match its checksum in SHA256SUMS")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes (rows x1, y1, x2, y2)."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def compare(
    video: str,
    released: pd.DataFrame,
    rebuilt: pd.DataFrame,
    hashes: list[str],
    hash_tolerance: int = HASH_TOLERANCE,
) -> VideoCheck:
    """Check a rebuilt face table and its crops' hashes against the release's manifest rows."""
    from affect4k.dataset.release import hash_distance

    expected = len(released)
    if len(rebuilt) != expected:
        return VideoCheck(
            video, "changed", expected, len(rebuilt), np.nan, np.nan, np.nan, np.nan, -1,
            f"{len(rebuilt)} frames instead of {expected}: the video changed",
        )  # fmt: skip
    released = released.reset_index(drop=True)
    time_error = float(np.abs(rebuilt["time_s"].to_numpy() - released["time_s"]).max())
    found, was = rebuilt["face"].to_numpy(bool), released["face"].to_numpy(bool)
    both = found & was
    boxes = list(BOX_COLUMNS)
    iou = _iou(rebuilt.loc[both, boxes].to_numpy(float), released.loc[both, boxes].to_numpy(float))
    distances = np.array(
        [hash_distance(hashes[i], released["crop_phash"].iat[i]) for i in np.flatnonzero(both)]
    )
    check = VideoCheck(
        video=video,
        status="ok",
        frames_expected=expected,
        frames=len(rebuilt),
        time_error_s=time_error,
        face_agreement=float((found == was).mean()) if expected else 1.0,
        box_iou=float(np.median(iou)) if len(iou) else np.nan,
        crops_within=float((distances <= hash_tolerance).mean()) if len(distances) else np.nan,
        max_hash_distance=int(distances.max()) if len(distances) else 0,
        note="",
    )
    problems = []
    if check.time_error_s > MAX_TIME_ERROR_S:
        problems.append(f"frame times off by up to {check.time_error_s:.3f} s")
    if check.face_agreement < MIN_FACE_AGREEMENT:
        problems.append(f"face found as released on {check.face_agreement:.0%} of frames")
    if not check.box_iou >= MIN_BOX_IOU and len(iou):
        problems.append(f"median box overlap {check.box_iou:.2f}")
    if not check.crops_within >= MIN_CROPS_WITHIN and len(distances):
        problems.append(f"{check.crops_within:.0%} of crops within {hash_tolerance} bits")
    if problems:
        return VideoCheck(**{**asdict(check), "status": "changed", "note": "; ".join(problems)})
    return check


def _settings(release: Path) -> dict[str, Any]:
    """The config sections the release was built with; refused, naming the file, where they
    do not fit this version's stages (a release built by another affect4k version)."""
    from affect4k.faces.identity import IdentitySettings
    from affect4k.video.clip import ClipEncoding

    path = release / "build.json"
    try:
        settings = json.loads(path.read_text())["settings"]
    except (OSError, ValueError, KeyError) as error:
        raise Affect4kError(f"{path}: not a release's build record ({error})") from None
    try:
        IdentitySettings.from_section(settings["faces"])
        ClipEncoding(**settings["clips"])
    except (KeyError, TypeError) as error:
        raise Affect4kError(
            f"{path}: its settings do not fit this affect4k ({error}); rehydrate with the "
            "version that built it (its 'affect4k' entry)"
        ) from None
    return settings


def rebuild_video(
    video: pd.Series, settings: dict[str, Any], out: Path
) -> tuple[pd.DataFrame, list[str]]:
    """Download, clip and crop one video of ``videos.csv`` under ``out`` with the release's
    settings; its face table and the hashes of its crops."""
    from affect4k.dataset.release import crop_hashes
    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import IdentitySettings
    from affect4k.video.clip import ClipEncoding, make_clip
    from affect4k.video.download import download_video

    name = video["video"]
    faces = settings["faces"]
    for folder in ("downloads", "clips", "faces"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    source = download_video(
        name,
        video["url"],
        out / "downloads" / f"{name}.mkv",
        max_height=settings["download"]["max_height"],
    )
    clip = out / "clips" / f"{name}.avi"
    make_clip(
        source,
        clip,
        video_id=name,
        start=None if pd.isna(video["start_s"]) else float(video["start_s"]),
        end=None if pd.isna(video["end_s"]) else float(video["end_s"]),
        encoding=ClipEncoding(**settings["clips"]),
    )
    table, crops = out / "faces" / f"{name}.parquet", out / "faces" / f"{name}.npy"
    extract_faces(
        clip,
        table,
        crops,
        detector=make_detector(faces["detector"], faces["model"], min_score=faces["min_score"]),
        video_id=name,
        detect_width=faces["detect_width"],
        min_face=faces["min_face"],
        identities_path=out / "faces" / f"{name}.identities.parquet",
        identity=IdentitySettings.from_section(faces),
    )
    return pd.read_parquet(table), crop_hashes(crops)


def rehydrate(release: Path, out: Path, *, hash_tolerance: int = HASH_TOLERANCE) -> pd.DataFrame:
    """Rebuild every video of ``release`` under ``out`` and write ``out/rehydrate.csv``: one
    :class:`VideoCheck` per video. A video that cannot be rebuilt (gone, private, a failed
    stage) is ``gone`` with the error as its note; the others are still rebuilt."""
    release, out = Path(release), Path(out)
    check_release(release)
    settings = _settings(release)
    manifest = pd.read_parquet(release / "manifest.parquet")
    videos = pd.read_csv(release / "videos.csv", dtype={"video": str, "url": str})
    rows = []
    for _, video in videos.iterrows():
        name = video["video"]
        released = manifest[manifest["video"] == name]
        try:
            table, hashes = rebuild_video(video, settings, out)
        except Affect4kError as error:
            log.info("rehydrate %s: gone (%s)", name, error)
            rows.append(VideoCheck(name, "gone", len(released), 0, *[np.nan] * 4, -1, str(error)))
            continue
        rows.append(compare(name, released, table, hashes, hash_tolerance))
        log.info("rehydrate %s: %s %s", name, rows[-1].status, rows[-1].note)
    report = pd.DataFrame([asdict(row) for row in rows])
    out.mkdir(parents=True, exist_ok=True)
    report.to_csv(out / "rehydrate.csv", index=False)
    return report
