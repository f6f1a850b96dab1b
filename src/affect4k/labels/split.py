"""The ``split`` stage: the train/validation/test sides, by person.

A test split measures generalisation to people a model has never seen, so whole groups go to
one side: each video's person comes from its subject's face embedding (or videos.tsv's
``person`` column), its group from person and source (or the ``group`` column), and a person
whose videos would straddle the split is refused. The study's own protocol (``sequence``:
chunks of every video on every side) is kept for comparison and said to be optimistic. Only
what trains or scores reads the split; the database itself is built for any number of videos.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.config.schema import schema_enum
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.faces.persons import check_straddle, find_persons, subject_embedding, video_groups

log = logging.getLogger(__name__)

#: How ``build_database`` may split the videos into sides (schema ``database.split``).
SPLIT_METHODS = schema_enum("database.split")


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
    person, a channel: whatever must not straddle the split; :func:`build_split` gives persons);
    a video it does not name is a group of its own. Test faces are then people the model has
    never seen; this is the protocol to report. Validation is what every choice (grid cell,
    epoch, best run) is made on, so the test split is read once, for the report.
    ``split="sequence"``: the study's protocol, each video cut into consecutive chunks of
    ``sequence_length`` frames (``frame // sequence_length``; the last may be shorter) and the
    chunks drawn for the sides the same way.
    It is optimistic: the same person, often in the neighbouring second of the same shot, is on
    every side, so it measures interpolation within a video rather than generalisation to new
    people. ``validation_fraction=0`` gives train and test only (the study had no validation).
    """
    if split not in SPLIT_METHODS:
        raise Affect4kError(
            f"split: unknown value {split!r}, expected one of {', '.join(SPLIT_METHODS)}"
        )
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
        found = f"got {len(unique)}"
        if split == "group":
            members = videos.groupby(keys.to_numpy()).unique()
            found += ": " + "; ".join(
                f"{group} ({', '.join(sorted(members[group]))})" for group in unique
            )
            found += (
                " (videos of one person, as their faces or videos.tsv's person and group "
                "columns say, share a group)"
            )
        raise Affect4kError(
            f"split={split!r} needs at least {needed} {unit} to have {sides} sides, {found}"
        )
    sides = _key_sides(unique, test_fraction, validation_fraction, seed)
    return keys.map(sides).to_numpy(dtype=object)


#: Columns of ``results/split.parquet``: the database's labels with each frame's side, what
#: training, prediction and the report read (``affect4k.model.sequences.load_split``).
SPLIT_TABLE_COLUMNS = ("video", "frame", "valence", "arousal", "face", "split")


#: Columns of ``results/split.csv``, one row per video.
SPLIT_CSV_COLUMNS = ("video", "person", "group", "split", "frames")


def build_split(
    annotations_parquet: Path,
    identities: Mapping[str, Path],
    out_csv: Path,
    out_parquet: Path,
    *,
    sources: Mapping[str, str],
    given_groups: Mapping[str, str | None],
    declared_persons: Mapping[str, str | None],
    same_person_distance: float,
    person_straddle: str,
    split: str,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    sequence_length: int,
) -> pd.DataFrame:
    """Assign the database's train/validation/test sides by person and write them.

    Each video's person is found from its subject's face embedding (``identities``: each
    video's identities parquet; :func:`affect4k.faces.persons.find_persons`, ``declared_persons``
    the ``person`` column), its group from person and source unless ``given_groups`` (the
    ``group`` column) places it (:func:`affect4k.faces.persons.video_groups`), and the sides by
    :func:`assign_split`. Under ``split="group"`` a person whose videos land on several sides
    is refused or warned about (``person_straddle``). ``out_csv`` gets
    :data:`SPLIT_CSV_COLUMNS` per video (``mixed`` where the sequence split puts a video on
    several sides), ``out_parquet`` :data:`SPLIT_TABLE_COLUMNS` per frame. Returns the former.
    """
    database = read_table(
        annotations_parquet, ("video", "frame", "valence", "arousal", "face"), "database"
    )
    videos = sorted(database["video"].astype(str).unique())
    missing = [video for video in videos if video not in identities]
    if missing:
        raise Affect4kError(f"split: no identities table for video(s) {', '.join(missing)}")
    embeddings = {video: subject_embedding(Path(identities[video]), video) for video in videos}
    for video in (v for v in videos if embeddings[v] is None and not declared_persons.get(v)):
        log.warning(
            f"video {video}: the face stage kept no subject, so no face tells who it shows; it "
            "is a person of its own (name one in videos.tsv's person column)"
        )
    persons = find_persons(embeddings, declared_persons, same_person_distance)
    groups = video_groups(persons, {v: sources.get(v, v) for v in videos}, given_groups)
    table = database[list(SPLIT_TABLE_COLUMNS[:-1])].copy()
    table["split"] = assign_split(
        table,
        split,
        test_fraction,
        seed,
        sequence_length,
        groups,
        validation_fraction=validation_fraction,
    )
    sides = table.groupby("video", sort=True)["split"].agg(
        lambda side: side.iat[0] if side.nunique() == 1 else "mixed"
    )
    per_video = pd.DataFrame(
        {
            "video": sides.index,
            "person": [persons[video] for video in sides.index],
            "group": [groups[video] for video in sides.index],
            "split": sides.to_numpy(),
            "frames": table.groupby("video", sort=True).size().to_numpy(),
        }
    )
    if split == "group":
        check_straddle(per_video, person_straddle)
    write_atomic(out_parquet, lambda tmp: table.to_parquet(tmp, index=False))
    write_atomic(out_csv, lambda tmp: per_video.to_csv(tmp, index=False))
    return per_video
