"""The database as a dataset others can use: a versioned release folder of labels, no pixels.

A database cut from YouTube videos cannot ship the videos or the faces: like VoxCeleb and AVSpeech,
the release ships a manifest (which video, which part of it, which frame at which time, where the
subject's face is) with the labels, from which ``affect4k rehydrate`` rebuilds clips and crops and
checks them (:mod:`affect4k.dataset.rehydrate`). Beside it: every annotator's trace, the agreement
tables, machine-readable metadata (``croissant.json``: Croissant 1.0 with its Responsible-AI fields,
which NeurIPS' datasets track requires), a datasheet answering Gebru et al.'s questions from the
config and the build, the labels' licence, a changelog naming what takedowns removed, and checksums.
docs/release.md says what ships and why.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS, __version__
from affect4k.config.video_list import VideoEntry, youtube_id
from affect4k.core.columns import BOX_COLUMNS, DIMENSIONS, LANDMARK_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_dir, read_table
from affect4k.dataset.metadata import (
    FILES,
    ReleaseInfo,
    build_facts,
    changelog,
    croissant,
    datasheet,
    license_text,
)
from affect4k.dataset.takedown import Takedown
from affect4k.labels.annotate import RAW_PREFIX

#: Columns of ``manifest.parquet``: one row per clip frame. No pixels, no face embedding, no
#: identity: where the subject's face is, a perceptual hash of its crop (to check a rebuilt
#: crop against, not to recognise anyone: 64 bits of a 32x32 grey thumbnail's frequencies), and
#: the fused labels.
MANIFEST_COLUMNS = (
    "video",
    "youtube_id",
    "url",
    "start_s",
    "end_s",
    "frame",
    "time_s",
    "source_time_s",
    "face",
    "verification",
    "score",
    *BOX_COLUMNS,
    *LANDMARK_COLUMNS,
    "crop_phash",
    *DIMENSIONS,
    "split",
    "group",
)


#: Columns of ``videos.csv``: one row per video, what rehydrating it needs.
VIDEO_COLUMNS = ("video", "youtube_id", "url", "start_s", "end_s", "frames", "group", "split")


#: Columns of ``traces.parquet``: one row per (video, frame, annotator, dimension), the
#: annotator's value on the frame grid before (``raw``) and after (``aligned``) lag compensation.
TRACE_COLUMNS = ("video", "frame", "annotator", "dimension", "aligned", "raw")


#: Bits of :func:`crop_hash`.
HASH_BITS = 64


def folder_name(info: ReleaseInfo) -> str:
    """The release's folder under results/release/: its name and version."""
    return f"{info.name}-{info.version}"


def crop_hash(crop: np.ndarray) -> str:
    """Perceptual hash (pHash) of one RGB crop as 16 hex digits; "" for an all-zero crop (no
    face). Bit ``i`` says whether the ``i``-th of the 8x8 lowest frequencies of the 32x32 grey
    thumbnail's DCT lies above their median: re-encoding, resampling and small shifts flip
    few bits, another face about half of them."""
    import cv2

    if not crop.any():
        return ""
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float32)
    low = cv2.dct(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA))[:8, :8]
    bits = (low > np.median(low)).ravel()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):016x}"


def hash_distance(a: str, b: str) -> int:
    """Bits in which two :func:`crop_hash` values differ; :data:`HASH_BITS` if only one is a
    face's."""
    if not a or not b:
        return 0 if a == b else HASH_BITS
    return (int(a, 16) ^ int(b, 16)).bit_count()


def crop_hashes(crops: Path) -> list[str]:
    """:func:`crop_hash` of every crop of a ``results/faces/{video}.npy``, read memory-mapped."""
    try:
        array = np.load(crops, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise Affect4kError(f"release: cannot read the crops {crops} ({error})") from None
    return [crop_hash(np.asarray(crop)) for crop in array]


def manifest_table(
    videos: Sequence[VideoEntry],
    database: pd.DataFrame,
    faces: Mapping[str, pd.DataFrame],
    hashes: Mapping[str, Sequence[str]],
    split: pd.DataFrame,
) -> pd.DataFrame:
    """One row per clip frame of every video (:data:`MANIFEST_COLUMNS`): the face stage's box
    and landmarks beside the database's labels, the frame's time in its source."""
    groups = split.set_index("video")["group"]
    parts = []
    for entry in videos:
        video = entry.video_id
        table = faces[video].reset_index(drop=True)
        if len(hashes[video]) != len(table):
            raise Affect4kError(
                f"release: video {video} has {len(table)} face rows but {len(hashes[video])} crops"
            )
        labels = database[database["video"] == video].set_index("frame")
        if len(labels) != len(table) or not np.array_equal(labels.index, table["frame"]):
            raise Affect4kError(
                f"release: video {video}: the database's frames differ from its face table's "
                "(rebuild the database)"
            )
        part = table[
            ["frame", "time_s", "face", "verification", "score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
        ]
        part = part.assign(
            video=video,
            youtube_id=youtube_id(entry.url),
            url=entry.url,
            start_s=entry.start,
            end_s=entry.end,
            source_time_s=(entry.start or 0.0) + table["frame"] / CLIP_FPS,
            crop_phash=list(hashes[video]),
            **{dim: labels[dim].to_numpy() for dim in DIMENSIONS},
            split=labels["split"].to_numpy(),
            group=groups.get(video, video),
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[list(MANIFEST_COLUMNS)]


def videos_table(videos: Sequence[VideoEntry], manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per video (:data:`VIDEO_COLUMNS`): where it comes from and which part of it."""
    frames = manifest.groupby("video", sort=False)
    rows = []
    for entry in videos:
        part = frames.get_group(entry.video_id)
        sides = part["split"].unique()
        rows.append(
            {
                "video": entry.video_id,
                "youtube_id": youtube_id(entry.url),
                "url": entry.url,
                "start_s": entry.start,
                "end_s": entry.end,
                "frames": len(part),
                "group": part["group"].iat[0],
                "split": sides[0] if len(sides) == 1 else "mixed",
            }
        )
    return pd.DataFrame(rows, columns=list(VIDEO_COLUMNS))


def traces_table(video_tables: Mapping[str, Path], annotators: Sequence[str]) -> pd.DataFrame:
    """Every annotator's trace on every video's frame grid, raw and lag-compensated, from the
    annotate stage's per-video tables (long: :data:`TRACE_COLUMNS`)."""
    parts = []
    columns = [
        f"{prefix}{dim}_{name}"
        for prefix in ("", RAW_PREFIX)
        for dim in DIMENSIONS
        for name in annotators
    ]
    for video, path in video_tables.items():
        table = read_table(path, ["frame", *columns], f"release of {video}")
        for annotator in annotators:
            for dim in DIMENSIONS:
                parts.append(
                    pd.DataFrame(
                        {
                            "video": video,
                            "frame": table["frame"].to_numpy(),
                            "annotator": annotator,
                            "dimension": dim,
                            "aligned": table[f"{dim}_{annotator}"].to_numpy(np.float64),
                            "raw": table[f"{RAW_PREFIX}{dim}_{annotator}"].to_numpy(np.float64),
                        }
                    )
                )
    return pd.concat(parts, ignore_index=True)[list(TRACE_COLUMNS)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_release(
    out_dir: Path,
    *,
    info: ReleaseInfo,
    base_version: str,
    videos: Sequence[VideoEntry],
    labels: Path,
    split: Path,
    agreement: Path,
    annotators_table: Path,
    video_tables: Mapping[str, Path],
    faces: Mapping[str, Path],
    crops: Mapping[str, Path],
    annotators: Sequence[str],
    settings: Mapping[str, Any],
    takedowns: Sequence[Takedown],
) -> Path:
    """Write the release folder ``out_dir/{name}-{version}/`` (whole or not at all); returns it.

    ``settings`` are the config's sections the build used (``download``, ``clips``,
    ``faces``, ``annotation``, ``database``): ``build.json`` keeps them for ``affect4k
    rehydrate`` and the datasheet answers from them.
    """
    if not info.contact:
        raise Affect4kError(
            "release.contact: a release needs a contact for questions and takedown requests "
            "(an e-mail address or a web page)"
        )
    frames = read_table(labels, ["video", "frame", *DIMENSIONS, "split"], "release")
    split_table = pd.read_csv(split)
    face_tables = {
        video: read_table(
            path, ["frame", "time_s", "face", "verification", "score", *BOX_COLUMNS], "release"
        )
        for video, path in faces.items()
    }
    hashes = {video: crop_hashes(path) for video, path in crops.items()}
    manifest = manifest_table(videos, frames, face_tables, hashes, split_table)
    agreement_table = pd.read_csv(agreement)
    facts = build_facts(manifest, annotators, agreement_table, takedowns)
    tables = {
        "manifest.parquet": manifest,
        "videos.csv": videos_table(videos, manifest),
        "traces.parquet": traces_table(video_tables, annotators),
        "annotators.csv": pd.read_csv(annotators_table),
        "agreement.csv": agreement_table,
    }
    target = Path(out_dir) / folder_name(info)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(target) as folder:
        tables["manifest.parquet"].to_parquet(folder / "manifest.parquet", index=False)
        manifest.to_csv(folder / "manifest.csv", index=False)
        tables["videos.csv"].to_csv(folder / "videos.csv", index=False)
        tables["traces.parquet"].to_parquet(folder / "traces.parquet", index=False)
        shutil.copyfile(annotators_table, folder / "annotators.csv")
        shutil.copyfile(agreement, folder / "agreement.csv")
        build = {"affect4k": __version__, "release": asdict(info), "settings": dict(settings)}
        (folder / "build.json").write_text(json.dumps(build, indent=2) + "\n")
        (folder / "DATASHEET.md").write_text(datasheet(info, facts, settings))
        (folder / "LICENSE").write_text(license_text(info))
        (folder / "CHANGELOG.md").write_text(changelog(info, base_version, takedowns))
        files = {name: _sha256(folder / name) for name in FILES}
        document = croissant(info, facts, settings, files, tables)
        (folder / "croissant.json").write_text(json.dumps(document, indent=2) + "\n")
        files["croissant.json"] = _sha256(folder / "croissant.json")
        (folder / "SHA256SUMS").write_text(
            "".join(f"{digest}  {name}\n" for name, digest in files.items())
        )
    return target
