"""The ``database`` stage: every video's labels in one table, its split and its agreement.

The videos are pooled (the frame-index contract's ``(video, frame)`` rows), the inter-annotator
agreement is reported, and the train/validation/test split is assigned by group (source or
person).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.errors import Affect4kError
from affect4k.files import read_table, write_atomic
from affect4k.layout import DIMENSIONS
from affect4k.traces import check_annotators

log = logging.getLogger(__name__)

SPLITS = ("group", "sequence")


def _side_counts(n: int, test_fraction: float, validation_fraction: float) -> tuple[int, int]:
    """(test, validation) key counts: round(n * test_fraction), then round(rest *
    validation_fraction) of the rest; each side that is asked for keeps at least one key."""
    validation = validation_fraction > 0
    n_test = min(max(int(np.floor(n * test_fraction + 0.5)), 1), n - 1 - validation)
    rest = n - n_test
    n_validation = 0
    if validation:
        n_validation = min(max(int(np.floor(rest * validation_fraction + 0.5)), 1), rest - 1)
    return n_test, n_validation


def _key_sides(
    keys: Sequence[str], test_fraction: float, validation_fraction: float, seed: int
) -> dict[str, str]:
    """Each key's side: the smallest seeded hashes go to test, the next ones to validation.

    Hashing each key with the seed makes the split a pure function of (seed, set of keys):
    input order does not matter, and adding a key moves at most one existing key across each
    of the two boundaries, so results stay comparable as the database grows. Validation comes
    after test in the ranking, so carving a validation set (or changing its fraction) never
    moves a test key: the test split of ``validation_fraction=0`` is kept.
    """
    n_test, n_validation = _side_counts(len(keys), test_fraction, validation_fraction)
    ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    sides = {key: "train" for key in ranked}
    sides.update({key: "test" for key in ranked[:n_test]})
    sides.update({key: "validation" for key in ranked[n_test : n_test + n_validation]})
    return sides


def assign_split(
    table: pd.DataFrame,
    split: str,
    test_fraction: float,
    seed: int,
    sequence_length: int,
    groups: Mapping[str, str] | None = None,
    *,
    validation_fraction: float = 0.0,
) -> np.ndarray:
    """Per-row "train"/"validation"/"test" for a table with ``video`` and ``frame`` columns.

    ``split="group"``: whole groups of videos go to one side, about ``test_fraction`` of the
    groups to test and ``validation_fraction`` of the remaining groups to validation (each side
    asked for gets at least one group). ``groups`` maps a video to its group (a source video, a
    person, a channel: whatever must not straddle the split); a video it does not name is a
    group of its own. Test faces are then people the model has never seen; this is the protocol
    to report. Validation is what every choice (grid cell, epoch, best run) is made on, so the
    test split is read once, for the report. ``split="sequence"``: the study's protocol, each
    video cut into consecutive chunks of ``sequence_length`` frames (``frame //
    sequence_length``; the last may be shorter) and the chunks drawn for the sides the same way.
    It is optimistic: the same person, often in the neighbouring second of the same shot, is on
    every side, so it measures interpolation within a video rather than generalisation to new
    people. ``validation_fraction=0`` gives train and test only (the study had no validation).
    """
    if split not in SPLITS:
        raise Affect4kError(f"split: unknown value {split!r}, expected one of {', '.join(SPLITS)}")
    if not 0 < test_fraction < 1:
        raise Affect4kError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if not 0 <= validation_fraction < 1:
        raise Affect4kError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    videos = table["video"].astype(str)
    if split == "group":
        groups = groups or {}
        keys = videos.map(lambda video: groups.get(video, video))
    else:
        if sequence_length < 1:
            raise Affect4kError(f"sequence_length must be >= 1, got {sequence_length}")
        keys = videos + "/" + (table["frame"] // sequence_length).astype(str)
    unique = sorted(set(keys))
    needed = 3 if validation_fraction > 0 else 2
    if len(unique) < needed:
        sides = "train, validation and test" if needed == 3 else "train and test"
        unit = "groups" if split == "group" else "chunks"
        raise Affect4kError(
            f"split={split!r} needs at least {needed} {unit} to have {sides} sides, "
            f"got {len(unique)}"
        )
    sides = _key_sides(unique, test_fraction, validation_fraction, seed)
    return keys.map(sides).to_numpy(dtype=object)


def agreement_table(table: pd.DataFrame, annotators: Sequence[str]) -> pd.DataFrame:
    """Pearson r of each unordered annotator pair per dimension, over frames both define.

    Frames are pooled across videos, as in the study's 4x4 table (0.60-0.88, mean 0.74).
    """
    rows = []
    for dim in DIMENSIONS:
        for a, b in itertools.combinations(annotators, 2):
            x, y = table[f"{dim}_{a}"].to_numpy(), table[f"{dim}_{b}"].to_numpy()
            both = np.isfinite(x) & np.isfinite(y)
            x, y = x[both], y[both]
            defined = len(x) >= 2 and x.std() > 0 and y.std() > 0
            r = float(np.corrcoef(x, y)[0, 1]) if defined else np.nan
            rows.append((dim, a, b, r, int(both.sum())))
    return pd.DataFrame(
        rows, columns=["dimension", "annotator_a", "annotator_b", "pearson_r", "frames"]
    )


def build_database(
    video_parquets: Sequence[Path],
    annotators: Sequence[str],
    out_parquet: Path,
    out_agreement: Path,
    *,
    split: str = "group",
    test_fraction: float = 1 / 3,
    seed: int = 0,
    sequence_length: int = 80,
    groups: Mapping[str, str] | None = None,
    out_split: Path | None = None,
    validation_fraction: float = 0.15,
) -> None:
    """Pool the per-video label tables into the database and write its agreement table.

    The database keeps every frame (NaN labels included, so ``(video, frame)`` stays the row
    key of the frame-index contract) sorted by video then frame, with a ``split`` column (see
    :func:`assign_split`, ``groups`` and ``validation_fraction`` as there). The per-annotator
    columns are kept: they let a user re-average with another rule or recompute agreement
    without rerunning the annotation stage. ``out_split`` gets ``video, group, split, frames``
    per video (``mixed`` where the sequence split puts a video on several sides).
    """
    check_annotators(annotators)
    required = ("video", "frame", "time_s", "face", *DIMENSIONS)
    required += tuple(f"{dim}_{name}" for dim in DIMENSIONS for name in annotators)
    tables = [read_table(path, required, "database input") for path in video_parquets]
    if not tables:
        raise Affect4kError("build_database: no per-video tables given")
    seen: dict[str, Path] = {}
    for path, table in zip(video_parquets, tables, strict=True):
        for video in table["video"].unique():
            if video in seen:
                raise Affect4kError(f"video {video} appears in both {seen[video]} and {path}")
            seen[video] = path
    database = pd.concat(tables, ignore_index=True).sort_values(["video", "frame"])
    database = database.reset_index(drop=True)
    database["split"] = assign_split(
        database,
        split,
        test_fraction,
        seed,
        sequence_length,
        groups,
        validation_fraction=validation_fraction,
    )
    agreement = agreement_table(database, annotators)
    for dim, pairs in agreement.groupby("dimension"):
        log.info("mean pairwise %s agreement: r = %.3f", dim, pairs["pearson_r"].mean())
    write_atomic(out_parquet, lambda tmp: database.to_parquet(tmp, index=False))
    write_atomic(out_agreement, lambda tmp: agreement.to_csv(tmp, index=False))
    if out_split is not None:
        sides = database.groupby("video", sort=True)["split"].agg(
            lambda side: side.iat[0] if side.nunique() == 1 else "mixed"
        )
        table = pd.DataFrame(
            {
                "video": sides.index,
                "group": [(groups or {}).get(video, video) for video in sides.index],
                "split": sides.to_numpy(),
                "frames": database.groupby("video", sort=True).size().to_numpy(),
            }
        )
        write_atomic(out_split, lambda tmp: table.to_csv(tmp, index=False))
