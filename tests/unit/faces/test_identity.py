"""Who the subject is: the face stage on a clip of real people with cuts (affect4k.demo.people).

The clip's ground truth is where each person's face really is in every frame, so each kept
crop is checked against the subject's true box, independently of the embeddings that chose it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from affect4k.config.schema import from_schema, schema_default
from affect4k.core.errors import Affect4kError
from affect4k.demo.affect_faces import _read_shipped
from affect4k.demo.people import FRAMES, people_video, person_photo
from affect4k.demo.transitions import CASES, transition_video
from affect4k.faces.ablation_crops import CropCell, write_cell_crops
from affect4k.faces.detectors import make_detector
from affect4k.faces.extract import IDENTITY_TABLE_COLUMNS, VERIFICATION_STATES, extract_faces
from affect4k.faces.identity import FaceEmbedder, IdentitySettings
from affect4k.faces.tracking import REJECTED, UNVERIFIED, VERIFIED, face_verdicts

#: What the workflow passes for ``faces.detect_width`` unless a config sets it.
DETECT_WIDTH = schema_default("faces.detect_width")
#: ... and for the ``faces`` identity settings.
IDENTITY = from_schema(IdentitySettings, "faces")


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("people")
    truth = people_video(folder / "people.avi")
    return folder / "people.avi", truth


class _Remembered:
    """A detector or embedder that computes each distinct input once.

    MTCNN and dlib's descriptor are pure functions of the pixels they get, so a test that runs
    the face stage again on the same clip (with a photo, with nobody's photo) gets exactly what
    the networks said the first time; everything else (decoding, tracking, cropping, the
    clustering and the choice of subject) runs again. Detection is 80 % of a pass.
    """

    def __init__(self, model: object, method: str) -> None:
        self._call = getattr(model, method)
        self._seen: dict[bytes, object] = {}
        setattr(self, method, self._remembered)

    def _remembered(self, pixels):
        arrays = [pixels] if isinstance(pixels, np.ndarray) else list(pixels)
        key = hashlib.blake2b(digest_size=16)
        for array in arrays:
            key.update(repr((array.shape, array.dtype.str)).encode())
            key.update(np.ascontiguousarray(array).data)
        digest = key.digest()
        if digest not in self._seen:
            self._seen[digest] = self._call(pixels)
        found = self._seen[digest]
        return found.copy() if isinstance(found, np.ndarray) else list(found)


@pytest.fixture(scope="module")
def tools() -> tuple[object, object]:
    return (
        _Remembered(make_detector("mtcnn"), "detect"),
        _Remembered(FaceEmbedder(), "embed"),
    )


def run(
    people, tools, out: Path, photo: Path | None = None, **options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    clip, _ = people
    return run_on(clip, tools, out, photo, **options)


def run_on(
    clip: Path, tools, out: Path, photo: Path | None = None, **options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    detector, embedder = tools
    options.setdefault("identity", IDENTITY)
    extract_faces(
        clip,
        out / "p.parquet",
        out / "p.npy",
        detector=detector,
        embedder=embedder,
        video_id="people",
        identities_path=out / "p.identities.parquet",
        subject_photo=photo,
        progress=False,
        **options,
        detect_width=DETECT_WIDTH,
    )
    return pd.read_parquet(out / "p.parquet"), pd.read_parquet(out / "p.identities.parquet")


def kept_is(table: pd.DataFrame, truth: pd.DataFrame, person: str) -> tuple[float, float]:
    """(share of ``person``'s frames kept, share of kept frames whose box is not ``person``'s)."""
    boxes = truth[truth["person"] == person].set_index("frame")
    kept = table[table["face"]].set_index("frame")
    hits = kept.index.intersection(boxes.index)
    mine, theirs = kept.loc[hits, ["x1", "y1", "x2", "y2"]], boxes.loc[hits, ["x1", "y1", "x2"]]
    centre_x = (mine["x1"] + mine["x2"]) / 2
    centre_y = (mine["y1"] + mine["y2"]) / 2
    inside = centre_x.between(theirs["x1"], theirs["x2"]) & centre_y.between(
        boxes.loc[hits, "y1"], boxes.loc[hits, "y2"]
    )
    right = int(inside.sum())
    return right / len(boxes), (len(kept) - right) / max(len(kept), 1)


@pytest.fixture(scope="module")
def default_run(people, tools, tmp_path_factory: pytest.TempPathFactory):
    """The face stage with every default (no photo): the tables and their folder."""
    out = tmp_path_factory.mktemp("default")
    return (*run(people, tools, out), out)


def test_the_subject_is_the_person_on_screen_longest_across_cuts_and_absences(people, default_run):
    table, identities, tmp_path = default_run
    _, truth = people
    recall, wrong = kept_is(table, truth, "A")
    assert recall >= 0.95 and wrong <= 0.01, (recall, wrong)
    # Frames where only B, C, D or E are on screen are "no face", never a bystander's crop.
    absent = sorted(set(range(FRAMES)) - set(truth.loc[truth["person"] == "A", "frame"]))
    assert not table.loc[absent, "face"].any()
    assert (table.loc[absent, "faces"] >= 1).all()  # though faces were detected there
    crops = np.load(tmp_path / "p.npy", mmap_mode="r")
    assert (crops[~table["face"].to_numpy()] == 0).all()
    # The identity table: four people told apart, A first and the subject; C, the cameraman
    # turned away (54 degrees of yaw), is beyond faces.max_yaw: nobody the descriptor can judge.
    assert list(identities.columns) == list(IDENTITY_TABLE_COLUMNS)
    assert identities["embedding"].map(len).eq(128).all()
    assert len(identities) == 4
    only_c_and_e = truth.groupby("frame")["person"].agg(set).map({"C", "E"}.__eq__)
    assert (table.loc[only_c_and_e[only_c_and_e].index, "verification"] == "unverified").all()
    assert set(table.loc[table["face"], "verification"]) == {"verified"}
    subject = identities[identities["subject"]]
    assert len(subject) == 1 and subject["identity"].iloc[0] == 0
    assert subject["frames"].iloc[0] == table["face"].sum()
    assert (table.loc[table["face"], "identity"] == 0).all()
    assert identities["frames"].is_monotonic_decreasing
    thumbnail = cv2.imdecode(np.frombuffer(identities["thumbnail"].iloc[0], np.uint8), 1)
    assert thumbnail.shape == (112, 112, 3)
    # The subject is near its own mean embedding, everyone else far from it.
    assert table["subject_distance"].max() < 0.4
    assert (identities["distance"].iloc[1:] > 0.6).all()


def test_a_reference_photo_selects_that_person_instead(people, tools, tmp_path):
    photo = person_photo("B", tmp_path / "b.png")
    table, identities = run(people, tools, tmp_path, photo)
    _, truth = people
    recall, wrong = kept_is(table, truth, "B")
    assert recall >= 0.95 and wrong <= 0.01, (recall, wrong)
    assert table["face"].sum() < (truth["person"] == "A").sum()  # B has less screen time
    subject = identities[identities["subject"]]
    assert subject["distance"].iloc[0] <= 0.6 < identities["distance"].drop(subject.index).min()


def test_the_resolution_ablation_crops_the_native_subject_in_every_cell(
    people, default_run, tmp_path
):
    """On the clip with two people and cuts: every cell has the native table's frames, and
    its crops show the native subject (what the native crop shows, less detail)."""
    clip, _ = people
    native, _, native_folder = default_run
    cells = [
        CropCell(height, crop, tmp_path / f"{height}-{crop}.npy", tmp_path / f"{height}-{crop}.pq")
        for height, crop in ((None, 224), (180, 112))
    ]
    write_cell_crops(
        clip,
        native_folder / "p.parquet",
        cells,
        tmp_path / "spans.pq",
        video_id="p",
        progress=False,
    )
    reference = np.load(native_folder / "p.npy")
    kept = native["face"].to_numpy()
    for cell in cells:
        pd.testing.assert_frame_equal(pd.read_parquet(cell.table), native)
        crops = np.load(cell.crops)
        assert len(crops) == len(native)
        assert not crops[~kept].any() and crops[kept].reshape(kept.sum(), -1).any(axis=1).all()
        small = np.stack(
            [cv2.resize(c, (16, 16), interpolation=cv2.INTER_AREA) for c in crops[kept]]
        )
        ours = np.stack(
            [cv2.resize(c, (16, 16), interpolation=cv2.INTER_AREA) for c in reference[kept]]
        )
        # The same face at the same place: coarse pixels agree to a few grey levels.
        assert np.abs(small.astype(int) - ours.astype(int)).mean() < 8
    spans = pd.read_parquet(tmp_path / "spans.pq")
    assert spans["span"].notna().to_numpy().tolist() == kept.tolist()


def test_a_photo_of_nobody_in_the_clip_fails_naming_the_photo_and_threshold(
    people, tools, tmp_path
):
    photo = person_photo("F", tmp_path / "f.png")
    with pytest.raises(
        Affect4kError, match=r"video people: nobody .*subject_threshold 0.6 .*f\.png"
    ):
        run(people, tools, tmp_path, photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_a_photo_without_a_face_or_not_an_image_is_refused(people, tools, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(Affect4kError, match=r"video people: subject photo .*blank\.png: no face"):
        run(people, tools, tmp_path, blank)
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(Affect4kError, match=r"subject photo .*notes\.jpg: not a readable image"):
        run(people, tools, tmp_path, text)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (from_schema(IdentitySettings, "faces", cluster_threshold=0.0), "faces.cluster_threshold"),
        (from_schema(IdentitySettings, "faces", subject_threshold=2.5), "faces.subject_threshold"),
        (from_schema(IdentitySettings, "faces", embed_every=0), "faces.embed_every"),
    ],
)
def test_identity_settings_out_of_range_are_refused_naming_the_key(settings, key):
    with pytest.raises(Affect4kError, match=key):
        settings.check()


@pytest.fixture(scope="module", params=sorted(CASES))
def handover(request, tools, tmp_path_factory: pytest.TempPathFactory):
    """A clip of :mod:`affect4k.demo.transitions` through the face stage with every default:
    (case, truth, faces table, identity table)."""
    folder = tmp_path_factory.mktemp(request.param)
    truth = transition_video(folder / "t.avi", request.param)
    return (request.param, truth, *run_on(folder / "t.avi", tools, folder))


def shares_kept(case: str, truth: pd.DataFrame, table: pd.DataFrame) -> tuple[float, float]:
    """(share of the subject's frames kept, share of the other person's frames kept): a frame
    is a person's where their weight is over one half (at least one half for the other)."""
    weights = truth.pivot_table(index="frame", columns="person", values="weight", fill_value=0)
    subject = CASES[case].subject
    mine = weights[subject] > 0.5
    theirs = (weights.drop(columns=subject) >= 0.5).any(axis=1)
    kept = table.set_index("frame")["face"]
    return float(kept[mine[mine].index].mean()), float(kept[theirs[theirs].index].mean())


def test_a_person_taking_over_at_the_same_place_is_never_kept_as_the_subject(handover):
    """A cut the shot detector misses, a dissolve, a cut to someone in profile: at least 90 %
    of the subject's frames are kept and at most 2 % of the other person's."""
    case, truth, table, _ = handover
    mine, theirs = shares_kept(case, truth, table)
    assert mine >= 0.9 and theirs <= 0.02, (case, mine, theirs)
    other = truth.loc[truth["person"] != CASES[case].subject, "frame"].unique()
    # What the sheet shows for the other person's frames: never kept as the subject.
    assert set(table.loc[other, "verification"]) <= {"rejected", "unverified", "verified"}
    assert set(table["verification"]) <= set(VERIFICATION_STATES)


def test_the_handover_is_found_where_the_shot_detector_sees_nothing(handover):
    """The clips' cuts and dissolves are invisible to the shot detector (one background, one
    place): what keeps the other person out is the embeddings, not a cut."""
    case, truth, _, identities = handover
    if case == "profile":
        # C is beyond faces.max_yaw: unverified, so nobody's identity; E alone is one.
        assert len(identities) == 1
    else:
        assert len(identities) == 2  # the track was cut where the person changed


def test_a_photo_of_the_subject_keeps_the_same_frames(handover, tools, tmp_path):
    case, truth, table, _ = handover
    photo = person_photo(CASES[case].subject, tmp_path / "subject.png")
    clip = tmp_path / "t.avi"
    transition_video(clip, case)
    with_photo, _ = run_on(clip, tools, tmp_path, photo)
    mine, theirs = shares_kept(case, truth, with_photo)
    assert mine >= 0.9 and theirs <= 0.02, (case, mine, theirs)


def test_bridging_keeps_an_unverifiable_stretch_only_inside_one_uncut_track():
    """faces.unverified: bridge keeps unverified samples between verified ones of a segment;
    a rejected sample in between, or the segment's end, stops the bridge."""
    frames = np.arange(40)
    segments = np.r_[np.zeros(30, int), np.ones(10, int)]
    sample_of = np.array([0, 10, 20, 29, 30, 39])
    said = np.array([VERIFIED, UNVERIFIED, VERIFIED, UNVERIFIED, VERIFIED, UNVERIFIED], object)
    bridged = face_verdicts(frames, segments, sample_of, said, window=10, bridge=True)
    dropped = face_verdicts(frames, segments, sample_of, said, window=10, bridge=False)
    assert set(bridged[:20]) == {"verified", "bridged"} and "bridged" in set(bridged[10:20])
    # Without the bridge, the faces after the last verified sample are unverified: the head
    # turned somewhere before the next sample.
    assert dropped[0] == "verified" and set(dropped[1:20]) == {"unverified"}
    assert dropped[20] == "verified"
    # After the segment's last verified sample an unverified one bounds nothing.
    assert set(bridged[29:30]) == {"unverified"}
    assert set(bridged[39:]) == {"unverified"}
    said[1] = REJECTED
    rejected = face_verdicts(frames, segments, sample_of, said, window=10, bridge=True)
    assert set(rejected[1:10]) == {"unverified"} and set(rejected[11:20]) == {"unverified"}
    assert rejected[10] == "rejected"


def test_a_photo_with_two_faces_of_comparable_size_is_refused(people, tools, tmp_path):
    group = _read_shipped("t1.jpg")
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), cv2.cvtColor(group[200:480, 0:640], cv2.COLOR_RGB2BGR))
    with pytest.raises(Affect4kError, match=r"two\.png shows \d faces, two of comparable size"):
        run(people, tools, tmp_path, photo)


def test_a_toss_up_and_a_rarely_kept_subject_are_said_naming_the_video(tools, tmp_path, caplog):
    clip = tmp_path / "t.avi"
    transition_video(clip, "cut")  # F on screen 200 frames of 260, M 60
    with caplog.at_level("WARNING"):
        run_on(clip, tools, tmp_path)
    assert "faces.subject_margin" not in caplog.text
    assert "faces.min_coverage" not in caplog.text
    settings = from_schema(IdentitySettings, "faces", subject_margin=0.9, min_coverage=0.99)
    with caplog.at_level("WARNING"):
        run_on(clip, tools, tmp_path, identity=settings)
    assert "video people: the subject is the person on screen longest" in caplog.text
    assert "within faces.subject_margin 0.9" in caplog.text
    assert re.search(
        r"video people: the subject's face is kept in \d+ % .*min_coverage 0.99", caplog.text
    )
