"""Who is who across videos and corpora: the database's persons, and people it shares.

A test split measures generalisation to people a model has never seen, so the split keeps
*people* apart, not sources. The face stage describes each video's subject by its mean dlib
face embedding (``results/faces/{video}.identities.parquet``); two videos whose subjects are
within ``database.same_person_distance`` of each other show one person, however different
their sources, backgrounds or shots. The same check between the database's subjects and every
external corpus's people (``results/identity_overlap.csv``) finds people a pretraining saw or
a cross-dataset evaluation scores, whose table rows are then marked or left out.

Linking is transitive (single linkage): if A is near B and B near C, all three are one person.
That errs towards merging, which only costs the split some balance; the opposite error puts
one person on two sides.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table

log = logging.getLogger(__name__)

#: How ``database.person_straddle`` answers a person on several sides of the split.
STRADDLE_ACTIONS = ("refuse", "warn")


class _Links:
    """Union-find over names: which ones end up connected."""

    def __init__(self, names: Sequence[str]) -> None:
        self._parent = {name: name for name in names}

    def root(self, name: str) -> str:
        while self._parent[name] != name:
            self._parent[name] = self._parent[self._parent[name]]
            name = self._parent[name]
        return name

    def join(self, a: str, b: str) -> None:
        low, high = sorted((self.root(a), self.root(b)))
        self._parent[high] = low

    def components(self) -> list[list[str]]:
        members: dict[str, list[str]] = {}
        for name in sorted(self._parent):
            members.setdefault(self.root(name), []).append(name)
        return list(members.values())


def subject_embedding(path: Path, video: str) -> np.ndarray | None:
    """The subject's mean face embedding from a video's identities parquet; None when the face
    stage kept no subject there (the video is then a person of its own)."""
    table = read_table(path, ("subject", "embedding"), f"identities of video {video}")
    subject = table[table["subject"].astype(bool)]
    if subject.empty:
        return None
    embedding = np.asarray(subject["embedding"].iat[0], np.float32)
    if embedding.ndim != 1 or not len(embedding) or not np.isfinite(embedding).all():
        raise Affect4kError(
            f"{path}: the subject's embedding of video {video} is not a vector of finite "
            "numbers (rebuild its face stage)"
        )
    return embedding


def find_persons(
    embeddings: Mapping[str, np.ndarray | None],
    declared: Mapping[str, str | None],
    threshold: float,
) -> dict[str, str]:
    """Each video's person id.

    Videos are linked when their subjects' embeddings are within ``threshold`` (unless both
    declare a person: the user's names then decide) and when they declare the same person
    (``declared``: videos.tsv's ``person`` column, None where empty). A linked set's id is the
    person it declares; a set that declares none is named after its first video (sorted); one
    that declares several (an undeclared video resembles both) is named by all of them joined
    with ``+``, with a warning, since the user's names and the faces disagree.
    """
    videos = sorted(embeddings)
    links = _Links(videos)
    for i, a in enumerate(videos):
        for b in videos[i + 1 :]:
            name_a, name_b = declared.get(a), declared.get(b)
            if name_a and name_b:
                if name_a == name_b:
                    links.join(a, b)
                continue
            ea, eb = embeddings[a], embeddings[b]
            if ea is not None and eb is not None and np.linalg.norm(ea - eb) < threshold:
                links.join(a, b)
    persons = {}
    for members in links.components():
        names = sorted({declared[v] for v in members if declared.get(v)})
        if len(names) > 1:
            log.warning(
                f"videos {', '.join(members)} show one face (within database."
                f"same_person_distance {threshold}) but videos.tsv names the persons "
                f"{', '.join(names)}: they are kept together as {'+'.join(names)}"
            )
        person = "+".join(names) if names else members[0]
        persons.update({video: person for video in members})
    return persons


def video_groups(
    persons: Mapping[str, str],
    sources: Mapping[str, str],
    given: Mapping[str, str | None],
) -> dict[str, str]:
    """Each video's group: what lands whole on one side of the split.

    A video with a ``group`` cell (``given``) is placed by it alone. The others are grouped by
    person and by source (parts cut from one source share its scene and often its people),
    transitively; such a group is named by its persons joined with ``+``.
    """
    free = sorted(video for video in persons if not given.get(video))
    links = _Links(free)
    first: dict[tuple[str, str], str] = {}
    for video in free:
        for key in (("person", persons[video]), ("source", sources[video])):
            if key in first:
                links.join(first[key], video)
            else:
                first[key] = video
    groups = {video: str(name) for video, name in given.items() if name and video in persons}
    for members in links.components():
        name = "+".join(sorted({persons[video] for video in members}))
        groups.update({video: name for video in members})
    return groups


def check_straddle(table: pd.DataFrame, action: str) -> None:
    """Refuse or warn (``database.person_straddle``) when one person's videos lie on several
    sides of the split: possible only where a ``group`` cell places a video apart from its
    person's other videos. ``table`` has ``video``, ``person`` and ``split`` per video."""
    if action not in STRADDLE_ACTIONS:
        raise Affect4kError(
            f"database.person_straddle: unknown value {action!r}, expected one of "
            f"{', '.join(STRADDLE_ACTIONS)}"
        )
    for person, rows in table.groupby("person", sort=True):
        if rows["split"].nunique() < 2:
            continue
        where = ", ".join(f"{r.video} ({r.split})" for r in rows.itertuples())
        message = (
            f"person {person} would straddle the split: {where}; the videos.tsv group column "
            "separates videos of one person (give them one group, or set "
            "database.person_straddle: warn to accept optimistic test scores)"
        )
        if action == "refuse":
            raise Affect4kError(message)
        log.warning(message)


#: Columns of ``results/identity_overlap.csv``: one row per (database person, corpus person)
#: pair within ``database.same_person_distance``. ``corpus_frame`` is -1 where the corpus
#: person is a whole video, the image's frame in a still-image corpus.
OVERLAP_COLUMNS = (
    "person",
    "videos",
    "database_split",
    "corpus",
    "corpus_video",
    "corpus_frame",
    "corpus_group",
    "corpus_split",
    "distance",
)


def identity_overlap(
    split_table: pd.DataFrame,
    embeddings: Mapping[str, np.ndarray | None],
    corpora: Mapping[str, pd.DataFrame],
    threshold: float,
) -> pd.DataFrame:
    """:data:`OVERLAP_COLUMNS`: every corpus person
    (:func:`affect4k.evaluation.identity_overlap.corpus_people`) within
    ``threshold`` of a database video's subject (``embeddings``), by database person
    (``split_table``: ``results/split.csv``), with the nearest distance."""
    rows = []
    for person, videos in split_table.groupby("person", sort=True):
        vectors = [embeddings[v] for v in videos["video"] if embeddings.get(v) is not None]
        if not vectors:
            continue
        sides = ";".join(sorted(set(videos["split"])))
        names = ";".join(videos["video"])
        for corpus, people in corpora.items():
            if people.empty:
                continue
            theirs = np.stack(people["embedding"].to_numpy())
            distance = np.linalg.norm(theirs[:, None] - np.stack(vectors)[None], axis=2).min(1)
            for index in np.flatnonzero(distance < threshold):
                them = people.iloc[index]
                rows.append(
                    (person, names, sides, corpus, them["video"], int(them["frame"]),
                     them["group"], them["split"], round(float(distance[index]), 4))
                )  # fmt: skip
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def overlap_touched(
    predictions: pd.DataFrame,
    overlap: pd.DataFrame,
    eval_set: str,
    database: bool,
    seen_corpora: Mapping[str, str],
) -> np.ndarray:
    """Which prediction rows of ``eval_set`` show a person the run's weights saw elsewhere.

    Every run trains on the database's train side, so on a corpus (``database`` False) the
    rows of corpus people who are database people with videos on that side are touched. On
    the database's own sets, the videos of database people found in a corpus the weights saw
    (``seen_corpora``: corpus -> ``train``, its pretraining's part, or ``all``, a corpus its
    ``trained_on`` declares) in the part they saw are touched.
    """
    if overlap.empty:
        return np.zeros(len(predictions), bool)
    if database:
        seen = overlap[
            overlap["corpus"].map(lambda c: c in seen_corpora)
            & (
                overlap["corpus"].map(lambda c: seen_corpora.get(c) == "all")
                | (overlap["corpus_split"] == "train")
                | (overlap["corpus_split"] == "mixed")
            )
        ]
        videos = {video for names in seen["videos"] for video in str(names).split(";")}
        return predictions["video"].astype(str).isin(videos).to_numpy()
    mine = overlap[
        (overlap["corpus"] == eval_set)
        & overlap["database_split"].map(lambda s: bool({"train", "mixed"} & set(str(s).split(";"))))
    ]
    whole = set(mine.loc[mine["corpus_frame"] < 0, "corpus_video"].astype(str))
    images = set(zip(mine["corpus_video"].astype(str), mine["corpus_frame"], strict=True))
    video = predictions["video"].astype(str)
    pairs = zip(video, predictions["frame"], strict=True)
    return (
        video.isin(whole) | pd.Series([pair in images for pair in pairs], index=video.index)
    ).to_numpy()
