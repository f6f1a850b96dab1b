"""Import the external evaluation corpora (Aff-Wild2, AffectNet) into the database layout.

The study tested its models on Aff-Wild and AffectNet. Converting each corpus once into
the same layout as our own database (``annotations.parquet`` plus ``faces/{video}.npy`` and
``faces/{video}.parquet``, see docs/design.md) lets one loader and one ``predict`` serve all
three, so a table row for an external set is computed exactly like one for our own test split.

The ``split`` column divides a corpus once, at import, into train and a held-out test part
(Aff-Wild2's official Train_Set / Validation_Set where both are present, AffectNet's official
``validation.csv`` where it is present, otherwise :func:`affect4k.labels.split.assign_split`:
whole sources for Aff-Wild2, single images for AffectNet). A ``group`` column names what must not
straddle a split and what the tables' bootstrap resamples: a source video, or an image. A
pretraining trains on the train part, and then every run is scored on the held-out part only; a
corpus nothing trains on is scored whole. AffectNet is a set of unrelated still images: it becomes
ONE pseudo-video ``affectnet`` whose frame ``i`` is line ``i + 2`` of ``labels.csv``, so 400k images
are one memory map rather than 400k files, and its annotation rows carry ``static == True`` (a
boolean column both importers write), which tells the loader to feed each image as its own sequence
instead of as a clip.

:func:`write_faces`, :func:`annotation_rows` and :func:`write_annotations` write the layout;
:func:`affect4k.demo.corpora.write_toy_corpus` uses them for the tests' and benchmarks' toy
database.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from affect4k.core.columns import DIMENSIONS, STATIC_COLUMN
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path, write_atomic
from affect4k.core.images import read_image
from affect4k.evaluation.affwild import read_affwild2_va
from affect4k.labels.split import assign_split

log = logging.getLogger(__name__)

#: The pseudo-video holding all of AffectNet.
AFFECTNET_VIDEO = "affectnet"
#: AffectNet's valence/arousal value for "no valid label" (classes None/Uncertain/No-Face).
AFFECTNET_INVALID = -2.0
AFFECTNET_COLUMNS = ("subDirectory_filePath", "expression", "valence", "arousal")
#: Images decoded per batch of the thread pool: bounds memory on a 400k-image corpus.
_DECODE_CHUNK = 512
# Video ids become file names under faces/, so they must not contain path separators.
_VIDEO_RE = re.compile(r"[A-Za-z0-9_.-]+")
#: Aff-Wild2 names the two subjects of one source video ``<source>_left`` and ``<source>_right``.
_AFFWILD2_PART_RE = re.compile(r"_(left|right)$")
#: AffectNet's official validation list, beside ``labels.csv`` (the released ``validation.csv``).
AFFECTNET_VALIDATION = "validation.csv"


def affwild2_source(video: str) -> str:
    """The source video an Aff-Wild2 video was cut from: ``10-60-1280x720_right`` ->
    ``10-60-1280x720``. Both subjects of a source are one group, so they never straddle."""
    return _AFFWILD2_PART_RE.sub("", video)


def _decode(path: Path | None, crop_size: int, where: str) -> np.ndarray | None:
    """RGB uint8 ``(crop_size, crop_size, 3)`` of ``path``; None when ``path`` is None."""
    if path is None:
        return None
    try:
        image = read_image(path)
    except Affect4kError as error:
        raise Affect4kError(f"{where}: {error}") from None
    if image.shape[:2] != (crop_size, crop_size):
        image = cv2.resize(image, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
    return image


def _write_crops(
    images: Sequence[Path | None], wheres: Sequence[str], npy_path: Path, crop_size: int
) -> np.ndarray:
    """Decode ``images`` into an ``(n, crop, crop, 3)`` npy written through a memory map.

    Returns the face mask (False where the image is None: a zero crop is stored). Decoding
    runs on a thread pool (OpenCV releases the GIL) in bounded chunks, and the array is filled
    in place, so memory stays flat however large the corpus.
    """
    face = np.array([image is not None for image in images], dtype=bool)
    with atomic_path(npy_path) as tmp:
        crops = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(images), crop_size, crop_size, 3)
        )
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            rows = iter(range(len(images)))
            while chunk := list(itertools.islice(rows, _DECODE_CHUNK)):
                decoded = pool.map(lambda i: _decode(images[i], crop_size, wheres[i]), chunk)
                for i, crop in zip(chunk, decoded, strict=True):
                    if crop is not None:
                        crops[i] = crop
        crops.flush()
        del crops
    return face


def write_faces(faces_dir: Path, video: str, face: np.ndarray) -> None:
    table = pd.DataFrame({"frame": np.arange(len(face)), "face": face})
    write_atomic(faces_dir / f"{video}.parquet", lambda tmp: table.to_parquet(tmp, index=False))


def _corpus_split(table: pd.DataFrame, test_fraction: float, seed: int) -> np.ndarray:
    """Train/test per row of an imported corpus (see :func:`affect4k.labels.split.assign_split`).

    The corpus's ``group`` column is split whole when it has several groups and is not static
    (faces in test are people, or sources, never trained on); a single clip is cut into the
    study's chunks of 80 frames, and a static corpus into single images, which show unrelated
    people anyway.
    """
    static = bool(table[STATIC_COLUMN].all())
    groups = dict(zip(table["video"], table["group"], strict=False))
    if table["group"].nunique() > 1 and not static:
        return assign_split(table, "group", test_fraction, seed, 1, groups)
    return assign_split(table, "sequence", test_fraction, seed, 1 if static else 80)


def write_annotations(out_dir: Path, table: pd.DataFrame) -> Path:
    """Write ``annotations.parquet`` last, so its presence means every crop file is complete."""
    path = out_dir / "annotations.parquet"
    write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
    return path


def annotation_rows(video: str, labels: np.ndarray, face: np.ndarray, static: bool) -> dict:
    n = len(labels)
    return {
        "video": video,
        "frame": np.arange(n),
        # Neither corpus states a frame rate next to its images, so times are unknown.
        "time_s": np.full(n, np.nan),
        "valence": labels[:, 0],
        "arousal": labels[:, 1],
        "face": face,
        STATIC_COLUMN: static,
    }


def _affwild2_images(folder: Path, n_frames: int, video: str) -> list[Path | None]:
    """Image of each annotated frame (``0000k.jpg`` is frame ``k - 1``), None where absent."""
    images: list[Path | None] = [None] * n_frames
    extra = 0
    for path in folder.glob("*.jpg"):
        if not path.stem.isdigit() or int(path.stem) < 1:
            raise Affect4kError(f"Aff-Wild2 video {video}: unexpected image name {path}")
        frame = int(path.stem) - 1
        if frame < n_frames:
            images[frame] = path
        else:
            extra += 1
    if extra:
        log.warning("Aff-Wild2 video %s: %d image(s) beyond its %d labels", video, extra, n_frames)
    return images


def import_affwild2(
    root: Path,
    out_dir: Path,
    *,
    crop_size: int = 112,
    test_fraction: float = 1 / 3,
    seed: int = 0,
) -> Path:
    """Convert Aff-Wild2's VA set under ``root`` into the layout under ``out_dir``.

    Reads ``root/annotations/VA_Estimation_Challenge/*/{video}.txt`` (-5 -> NaN, see
    :func:`affect4k.evaluation.affwild.read_affwild2_va`) and
    ``root/cropped_aligned/{video}/*.jpg``; a
    frame without an image is a frame without a face (zero crop, ``face`` False), as in our own
    database. The annotation subfolder (e.g. ``Train_Set``) is kept in a ``subset`` column; with
    both Train_Set and Validation_Set present, Validation_Set is the ``test`` split. ``group``
    is each video's source (:func:`affwild2_source`): the fallback split keeps a source's
    ``_left`` and ``_right`` videos together, and the tables' intervals resample sources.
    Returns the path of the written ``annotations.parquet``.
    """
    root, out_dir = Path(root), Path(out_dir)
    label_files = sorted((root / "annotations" / "VA_Estimation_Challenge").glob("*/*.txt"))
    if not label_files:
        raise Affect4kError(
            f"{root}: no annotations/VA_Estimation_Challenge/*/*.txt files (not Aff-Wild2?)"
        )
    seen: dict[str, Path] = {}
    tables = []
    for label_file in label_files:
        video = label_file.stem
        if not _VIDEO_RE.fullmatch(video):
            raise Affect4kError(f"{label_file}: video name {video!r} is not a plain file name")
        if video in seen:
            raise Affect4kError(
                f"Aff-Wild2 video {video} is labelled in {seen[video]} and {label_file}"
            )
        seen[video] = label_file
        folder = root / "cropped_aligned" / video
        if not folder.is_dir():
            raise Affect4kError(f"{label_file}: no image folder {folder}")
        labels = read_affwild2_va(label_file)[list(DIMENSIONS)].to_numpy(np.float32)
        images = _affwild2_images(folder, len(labels), video)
        face = _write_crops(
            images, [str(label_file)] * len(images), out_dir / "faces" / f"{video}.npy", crop_size
        )
        write_faces(out_dir / "faces", video, face)
        rows = annotation_rows(video, labels, face, static=False)
        subset = label_file.parent.name
        tables.append(pd.DataFrame({**rows, "subset": subset, "group": affwild2_source(video)}))
        log.info("Aff-Wild2 %s: %d frames, %d with a face", video, len(face), int(face.sum()))
    table = pd.concat(tables, ignore_index=True)
    if {"Train_Set", "Validation_Set"} <= set(table["subset"]):
        # The official division: Validation_Set is the held-out part.
        table["split"] = np.where(table["subset"] == "Validation_Set", "test", "train")
    else:
        table["split"] = _corpus_split(table, test_fraction, seed)
    return write_annotations(out_dir, table)


def _read_affectnet_labels(path: Path) -> pd.DataFrame:
    """``labels.csv`` with valence/arousal as float (-2 -> NaN), refusing other bad values."""
    if not path.is_file():
        raise Affect4kError(f"AffectNet label file {path} does not exist")
    try:
        # Blank lines are kept as rows so that row i is always line i + 2 in error messages.
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise Affect4kError(f"{path}: not a readable CSV table ({exc})") from None
    missing = [name for name in AFFECTNET_COLUMNS if name not in table.columns]
    if missing:
        raise Affect4kError(
            f"{path}, line 1: header lacks column(s) {', '.join(missing)} "
            f"(expected at least {', '.join(AFFECTNET_COLUMNS)})"
        )
    if table.empty:
        raise Affect4kError(f"{path}: no image lines after the header")
    for dim in DIMENSIONS:
        values = pd.to_numeric(table[dim].str.strip(), errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values) | ((np.abs(values) > 1) & (values != AFFECTNET_INVALID))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise Affect4kError(
                f"{path}, line {row + 2}: {dim} {table[dim].iat[row]!r} is neither in [-1, 1] "
                f"nor the invalid marker {AFFECTNET_INVALID:g}"
            )
        table[dim] = np.where(values == AFFECTNET_INVALID, np.nan, values).astype(np.float32)
    return table


def import_affectnet(
    root: Path,
    out_dir: Path,
    *,
    crop_size: int = 112,
    test_fraction: float = 1 / 3,
    seed: int = 0,
) -> Path:
    """Convert AffectNet (``root/labels.csv`` + ``root/images/...``) into one static pseudo-video.

    With AffectNet's official validation list beside it (``root/validation.csv``, same
    columns; its test set is unreleased) its images follow those of ``labels.csv`` (frame
    ``len(labels) + i`` is line ``i + 2`` of it) and form the held-out ``test`` split, as
    published results use it; without it single images are held out at random.

    Images are resized to ``crop_size`` square (AffectNet's crops are roughly square faces of
    varying size); -2 labels become NaN. Every listed image must exist and decode, since a
    missing AffectNet image is a broken download, not a frame without a face. The source path
    and expression class are kept as ``source`` and ``expression`` columns. Returns the path
    of the written ``annotations.parquet``.
    """
    root, out_dir = Path(root), Path(out_dir)
    lists = [root / "labels.csv"]
    if (root / AFFECTNET_VALIDATION).is_file():
        lists.append(root / AFFECTNET_VALIDATION)
    tables = [_read_affectnet_labels(path) for path in lists]
    images_root = (root / "images").resolve()
    images: list[Path | None] = []
    wheres = []
    for path, table in zip(lists, tables, strict=True):
        for row, relative in enumerate(table["subDirectory_filePath"]):
            where = f"{path}, line {row + 2}"
            image = (images_root / relative).resolve()
            if not image.is_relative_to(images_root) or not image.is_file():
                raise Affect4kError(f"{where}: no image {relative!r} under {images_root}")
            images.append(image)
            wheres.append(where)
    face = _write_crops(images, wheres, out_dir / "faces" / f"{AFFECTNET_VIDEO}.npy", crop_size)
    write_faces(out_dir / "faces", AFFECTNET_VIDEO, face)
    table = pd.concat(tables, ignore_index=True)
    labels = table[list(DIMENSIONS)].to_numpy(np.float32)
    rows = annotation_rows(AFFECTNET_VIDEO, labels, face, static=True)
    annotations = pd.DataFrame(
        {
            **rows,
            "expression": table["expression"],
            "source": table["subDirectory_filePath"],
            # Unrelated people: each image is a group of its own.
            "group": table["subDirectory_filePath"],
            "subset": np.repeat([path.stem for path in lists], [len(t) for t in tables]),
        }
    )
    log.info("AffectNet: %d images", len(annotations))
    if len(tables) > 1:
        # The official division: validation.csv is the held-out part.
        annotations["split"] = np.where(annotations["subset"] == "validation", "test", "train")
    else:
        annotations["split"] = _corpus_split(annotations, test_fraction, seed)
    return write_annotations(out_dir, annotations)
