"""The ``identity_overlap`` stage: database people whom an external corpus also shows.

The corpora a pretraining trains on, or a cross-dataset evaluation scores, may show people of
the database; a run that saw such a person in one set and is scored on them in the other is
optimistic. Each corpus person (a video, or an image of a still-image corpus) is described by
dlib's face embedding, as the face stage describes each video's subject, and compared with the
database's subjects (:func:`affect4k.faces.persons.identity_overlap`); the tables then mark or leave
out the rows that score them (:func:`affect4k.faces.persons.overlap_touched`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from insightface.utils.face_align import arcface_dst

from affect4k.core.columns import STATIC_COLUMN
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.faces.identity import FaceEmbedder, face_chip
from affect4k.faces.persons import identity_overlap, subject_embedding

log = logging.getLogger(__name__)

#: Face frames of a corpus video whose embeddings are averaged into that video's person (evenly
#: spaced): enough to average out expression and pose, few enough for 300k-frame corpora.
CORPUS_SAMPLES = 8
#: Images of a still-image corpus embedded per batch.
IMAGE_BATCH = 256


def _template_chip(crop: np.ndarray) -> np.ndarray:
    """dlib's chip of an imported corpus crop, cut at ArcFace's template landmarks scaled to
    the crop: the crops are aligned that way (Aff-Wild2's cropped_aligned) or roughly
    face-centred squares (AffectNet), so no detector is run on them."""
    return face_chip(np.ascontiguousarray(crop), arcface_dst * crop.shape[0] / 112)


def corpus_people(annotations: Path, faces_dir: Path, embedder: FaceEmbedder) -> pd.DataFrame:
    """The people of an imported corpus, each with a face embedding.

    A video is one person, described by the mean embedding of up to :data:`CORPUS_SAMPLES`
    of its face frames; in a still-image corpus (``static`` rows) every image is one.
    Returns ``video, frame, group, split, embedding`` (``frame`` -1 for a whole video).
    """
    table = read_table(annotations, ("video", "frame", "group", "split"), "corpus")
    rows = []
    for video, frames in table.groupby("video", sort=True):
        crops = np.load(Path(faces_dir) / f"{video}.npy", mmap_mode="r")
        face = pd.read_parquet(Path(faces_dir) / f"{video}.parquet", columns=["frame", "face"])
        found = frames[frames["frame"].isin(face.loc[face["face"], "frame"])]
        if found.empty:
            continue
        static = STATIC_COLUMN in frames and bool(frames[STATIC_COLUMN].any())
        if static:
            for start in range(0, len(found), IMAGE_BATCH):
                chunk = found.iloc[start : start + IMAGE_BATCH]
                chips = [_template_chip(crops[frame]) for frame in chunk["frame"]]
                for row, vector in zip(chunk.itertuples(), embedder.embed(chips), strict=True):
                    rows.append((video, row.frame, row.group, row.split, vector))
            continue
        picks = found.iloc[np.unique(np.linspace(0, len(found) - 1, CORPUS_SAMPLES).round())]
        vectors = embedder.embed([_template_chip(crops[frame]) for frame in picks["frame"]])
        sides = sorted(set(frames["split"]))
        side = sides[0] if len(sides) == 1 else "mixed"
        rows.append((video, -1, frames["group"].iat[0], side, vectors.mean(axis=0)))
    return pd.DataFrame(rows, columns=["video", "frame", "group", "split", "embedding"])


def write_identity_overlap(
    split_csv: Path,
    identities: Mapping[str, Path],
    corpora: Mapping[str, Path],
    out_csv: Path,
    *,
    threshold: float,
) -> pd.DataFrame:
    """Write ``results/identity_overlap.csv`` (:func:`identity_overlap`) for the database of
    ``split_csv`` (``results/split.csv``) and the imported corpora (``corpora``: name ->
    folder holding ``annotations.parquet`` and ``faces/``); logs each person found."""
    try:
        split_table = pd.read_csv(split_csv, dtype={"video": str, "person": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise Affect4kError(f"identity overlap: cannot read {split_csv} ({exc})") from None
    if not {"video", "person", "split"} <= set(split_table.columns):
        raise Affect4kError(f"identity overlap: {split_csv} lacks a video, person or split column")
    embeddings = {
        video: subject_embedding(Path(identities[video]), video) for video in split_table["video"]
    }
    embedder = FaceEmbedder()
    people = {
        name: corpus_people(root / "annotations.parquet", root / "faces", embedder)
        for name, root in corpora.items()
    }
    table = identity_overlap(split_table, embeddings, people, threshold)
    for (person, corpus), rows in table.groupby(["person", "corpus"], sort=True):
        log.warning(
            f"person {person} (videos {rows['videos'].iat[0]}) appears in corpus {corpus} "
            f"({len(rows)} of its people, nearest {rows['distance'].min():.2f})"
        )
    write_atomic(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    return table
