"""People, not sources, are what the split keeps apart, and people shared with a corpus show.

Clips are made of real photos that installed packages ship (:mod:`affect4k.demo.people`: the
astronaut of scikit-image is A, people of insightface's group photo are B, D and E, and F is
never in the database) and go through the real face stage (MTCNN, dlib's descriptor). Two
clips of A come from "different sources": other backgrounds, face sizes, places and motion.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from affect4k.config.schema import from_schema, schema_default
from affect4k.core.errors import Affect4kError
from affect4k.demo.people import people_video, portraits
from affect4k.evaluation.identity_overlap import write_identity_overlap
from affect4k.evaluation.import_corpus import import_affectnet, import_affwild2
from affect4k.evaluation.tables import TableEntry, build_table
from affect4k.faces.detectors import make_detector
from affect4k.faces.extract import extract_faces
from affect4k.faces.identity import FaceEmbedder, IdentitySettings
from affect4k.faces.persons import check_straddle, find_persons, video_groups
from affect4k.labels.split import SPLIT_CSV_COLUMNS, build_split

FRAMES = 20
#: video -> the single shot of its clip (person, face width, x, y, drift) on its background.
CLIPS = {
    "a_studio": (11, ("A", 90, 60, 40, 0.4)),
    "a_street": (12, ("A", 150, 300, 0, -0.5)),
    "b": (13, ("B", 110, 200, 40, 0.3)),
    "d": (14, ("D", 100, 260, 40, -0.3)),
    "e": (15, ("E", 100, 100, 60, 0.2)),
}
#: What the workflow passes for the split settings unless a config sets them.
SPLIT = {
    key: schema_default(f"database.{key}")
    for key in (
        "split",
        "test_fraction",
        "validation_fraction",
        "seed",
        "sequence_length",
        "same_person_distance",
        "person_straddle",
    )
}


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, embedder: FaceEmbedder) -> Path:
    """Every clip through the face stage, and a database of their (random) labels."""
    root = tmp_path_factory.mktemp("persons")
    detector = make_detector("mtcnn")
    rows = []
    for video, (background, person) in CLIPS.items():
        people_video(root / f"{video}.avi", [(0, FRAMES, background, [person])])
        extract_faces(
            root / f"{video}.avi",
            root / f"{video}.parquet",
            root / f"{video}.npy",
            detector=detector,
            embedder=embedder,
            video_id=video,
            identities_path=root / f"{video}.identities.parquet",
            progress=False,
            detect_width=640,
            identity=from_schema(IdentitySettings, "faces"),
        )
        faces = pd.read_parquet(root / f"{video}.parquet")
        assert faces["face"].mean() > 0.9, f"the face stage missed {person[0]} in {video}"
        labels = np.random.default_rng(len(rows)).uniform(-1, 1, (FRAMES, 2))
        rows.append(
            pd.DataFrame(
                {
                    "video": video,
                    "frame": np.arange(FRAMES),
                    "valence": labels[:, 0],
                    "arousal": labels[:, 1],
                    "face": faces["face"],
                }
            )
        )
    pd.concat(rows, ignore_index=True).to_parquet(root / "annotations.parquet")
    return root


def split(study: Path, out: Path, **changes: object) -> pd.DataFrame:
    """build_split on the study, every video its own source (nothing links them but faces)."""
    out.mkdir(parents=True, exist_ok=True)
    build_split(
        study / "annotations.parquet",
        {video: study / f"{video}.identities.parquet" for video in CLIPS},
        out / "split.csv",
        out / "split.parquet",
        **{
            "sources": {video: f"https://example.org/{video}.mp4" for video in CLIPS},
            "given_groups": {},
            "declared_persons": {},
            **SPLIT,
            **changes,
        },
    )
    return pd.read_csv(out / "split.csv").set_index("video")


def test_two_videos_of_one_person_from_different_sources_are_one_person_on_one_side(
    study: Path, tmp_path: Path
):
    table = split(study, tmp_path)
    assert list(table.reset_index().columns) == list(SPLIT_CSV_COLUMNS)
    a = table.loc[["a_studio", "a_street"]]
    assert a["person"].nunique() == 1 and a["group"].nunique() == 1 and a["split"].nunique() == 1
    assert table["person"].nunique() == 4, "A, B, D and E"
    assert set(table["split"]) == {"train", "validation", "test"}
    sides = pd.read_parquet(tmp_path / "split.parquet")
    assert (sides.groupby("video")["split"].first() == table["split"]).all()
    assert len(sides) == FRAMES * len(CLIPS)


def test_a_group_column_that_separates_one_person_is_refused_or_warned(
    study: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    given = {video: f"g_{video}" for video in CLIPS}
    for seed in range(40):
        with caplog.at_level(logging.WARNING):
            table = split(study, tmp_path, given_groups=given, seed=seed, person_straddle="warn")
        if table.loc["a_studio", "split"] != table.loc["a_street", "split"]:
            break
    else:
        pytest.fail("no seed put the two g_ groups of A on different sides")
    person = table.loc["a_studio", "person"]
    assert f"person {person} would straddle the split" in caplog.text
    with pytest.raises(Affect4kError, match=f"person {person} would straddle.*a_street"):
        split(study, tmp_path, given_groups=given, seed=seed)


def test_a_person_column_names_the_person_and_joins_videos(study: Path, tmp_path: Path):
    table = split(study, tmp_path, declared_persons={"a_studio": "ann", "b": "bo", "d": "bo"})
    assert table.loc[["a_studio", "a_street"], "person"].tolist() == ["ann", "ann"]
    assert table.loc[["b", "d"], "person"].tolist() == ["bo", "bo"]
    assert table.loc["b", "group"] == table.loc["d", "group"] == "bo"


def test_persons_and_groups_link_transitively_and_respect_given_groups():
    far, near = np.zeros(4), np.array([0.3, 0, 0, 0])
    persons = find_persons(
        {"v1": far, "v2": near, "v3": np.array([0.6, 0, 0, 0]), "v4": None, "v5": np.ones(4)},
        {},
        threshold=0.5,
    )
    assert persons == {"v1": "v1", "v2": "v1", "v3": "v1", "v4": "v4", "v5": "v5"}
    sources = {"v1": "s1", "v2": "s2", "v3": "s3", "v4": "s3", "v5": "s5"}
    groups = video_groups(persons, sources, {"v5": "mine"})
    assert groups == {"v1": "v1+v4", "v2": "v1+v4", "v3": "v1+v4", "v4": "v1+v4", "v5": "mine"}
    with pytest.raises(Affect4kError, match="person_straddle"):
        check_straddle(pd.DataFrame(columns=["video", "person", "split"]), "ignore")


def _affwild2_corpus(root: Path) -> Path:
    """An Aff-Wild2-layout corpus: video ``x_a`` shows A (in its Train_Set), ``x_f`` shows F,
    who is in no database video (Validation_Set); 112 px crops aligned by MTCNN's landmarks,
    as the released cropped_aligned are."""
    for video, person, subset in (("x_a", "A", "Train_Set"), ("x_f", "F", "Validation_Set")):
        crop = _aligned(person)
        folder = root / "cropped_aligned" / video
        folder.mkdir(parents=True)
        lines = ["valence,arousal"]
        for frame in range(10):
            shaded = np.clip(crop.astype(np.int16) + 4 * frame - 20, 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{frame + 1:05d}.jpg"), shaded)
            lines.append("0.1,0.2")
        labels = root / "annotations" / "VA_Estimation_Challenge" / subset
        labels.mkdir(parents=True, exist_ok=True)
        (labels / f"{video}.txt").write_text("\n".join(lines) + "\n")
    return root


def _aligned(person: str) -> np.ndarray:
    """``person``'s face as a 112 px crop aligned at MTCNN's landmarks (BGR, to write)."""
    from affect4k.faces.align import align_face

    image, _ = portraits()[person]
    found = make_detector("mtcnn").detect(image)
    face = max(found, key=lambda d: float(np.prod(d.bbox[2:] - d.bbox[:2])))
    return align_face(image, face.landmarks, 112)[..., ::-1]


def test_a_still_image_corpus_is_compared_image_by_image(study: Path, tmp_path: Path):
    """AffectNet's layout: image 2 shows A, images 1 and 3 show F (no database video's)."""
    root = tmp_path / "raw"
    (root / "images").mkdir(parents=True)
    lines = ["subDirectory_filePath,expression,valence,arousal"]
    for number, person in enumerate(("F", "A", "F"), start=1):
        cv2.imwrite(str(root / "images" / f"{number}.jpg"), _aligned(person))
        lines.append(f"{number}.jpg,1,0.1,0.2")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    import_affectnet(root, tmp_path / "an")
    table = split(study, tmp_path)
    overlap = write_identity_overlap(
        tmp_path / "split.csv",
        {video: study / f"{video}.identities.parquet" for video in CLIPS},
        {"an": tmp_path / "an"},
        tmp_path / "identity_overlap.csv",
        threshold=SPLIT["same_person_distance"],
    )
    assert overlap[["corpus_video", "corpus_frame"]].values.tolist() == [["affectnet", 1]]
    assert overlap.loc[0, "person"] == table.loc["a_studio", "person"]


def test_a_person_shared_with_a_pretraining_corpus_is_listed_and_marks_its_rows(
    study: Path, tmp_path: Path
):
    corpus = tmp_path / "external" / "aw"
    import_affwild2(_affwild2_corpus(tmp_path / "raw"), corpus)
    # A split where A's videos are scored (on test), so a run that saw A elsewhere shows.
    seed = next(
        s for s in range(40) if split(study, tmp_path, seed=s).loc["a_studio", "split"] == "test"
    )
    table = split(study, tmp_path, seed=seed)
    overlap = write_identity_overlap(
        tmp_path / "split.csv",
        {video: study / f"{video}.identities.parquet" for video in CLIPS},
        {"aw": corpus},
        tmp_path / "identity_overlap.csv",
        threshold=SPLIT["same_person_distance"],
    )
    written = pd.read_csv(tmp_path / "identity_overlap.csv")
    assert len(written) == len(overlap) == 1, written
    row = written.iloc[0]
    assert row["person"] == table.loc["a_studio", "person"]
    assert set(row["videos"].split(";")) == {"a_studio", "a_street"}
    assert (row["corpus"], row["corpus_video"], row["corpus_split"]) == ("aw", "x_a", "train")
    assert row["distance"] < SPLIT["same_person_distance"]
    # A run pretrained on aw's train part saw A: its test rows are contaminated; a run that
    # saw no corpus is not.
    test = table.index[table["split"] == "test"]
    predictions = pd.read_parquet(tmp_path / "split.parquet")
    predictions = predictions[predictions["video"].isin(test)]
    predictions = predictions.assign(valence_pred=0.5 * predictions["valence"], arousal_pred=0.0)
    path = tmp_path / "test.parquet"
    predictions.drop(columns=["face", "split"]).to_parquet(path)
    groups = tmp_path / "split.csv"
    entries = [
        TableEntry("pre", "m", "native", "test", path, groups=groups, database=True,
                   seen_corpora={"aw": "train"}),
        TableEntry("plain", "m", "native", "test", path, groups=groups, database=True),
    ]  # fmt: skip
    scores = build_table(
        entries, tmp_path / "tables.csv", resamples=10, overlap=tmp_path / "identity_overlap.csv"
    )
    assert list(scores["contaminated"]) == [True, False]


def test_a_video_without_a_subject_is_a_person_of_its_own_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    embedding = np.zeros(128, np.float32)
    rows = []
    for video, subject in (("v1", True), ("v2", True), ("v3", False), ("v4", True)):
        vector = embedding + (video == "v4")  # v4: another face, sqrt(128) away
        identities = pd.DataFrame({"subject": [subject], "embedding": [vector]})
        identities.to_parquet(tmp_path / f"{video}.identities.parquet")
        rows.append(pd.DataFrame({"video": video, "frame": range(5), "face": subject}))
    database = pd.concat(rows).assign(valence=0.1, arousal=0.2)
    database.to_parquet(tmp_path / "annotations.parquet")
    videos = ("v1", "v2", "v3", "v4")
    with caplog.at_level(logging.WARNING):
        build_split(
            tmp_path / "annotations.parquet",
            {video: tmp_path / f"{video}.identities.parquet" for video in videos},
            tmp_path / "split.csv",
            tmp_path / "split.parquet",
            sources={video: video for video in videos},
            given_groups={},
            declared_persons={},
            **SPLIT,
        )
    table = pd.read_csv(tmp_path / "split.csv").set_index("video")
    assert table["person"].to_dict() == {"v1": "v1", "v2": "v1", "v3": "v3", "v4": "v4"}
    assert "video v3: the face stage kept no subject" in caplog.text
