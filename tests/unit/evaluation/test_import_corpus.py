"""Tests of the Aff-Wild2 and AffectNet importers on tiny corpora written by the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from affect4k.core.errors import Affect4kError
from affect4k.demo.corpora import write_toy_corpus
from affect4k.evaluation.import_corpus import AFFECTNET_VIDEO, import_affectnet, import_affwild2
from affect4k.model.sequences import load_split


def _write_rgb(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (112, 112)) -> None:
    """A flat-colour image (PNG-compressed JPEG artefacts would blur the colour check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((*size, 3), dtype=np.uint8)
    image[:] = rgb[::-1]  # OpenCV writes BGR
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 100])


def _affwild2(root: Path, lines: dict[str, list[str]], missing: dict[str, set[int]]) -> None:
    """Videos with the given label lines; image k (1-based) has colour (10k, 20, 30)."""
    for subset, video in (("Train_Set", "vidA"), ("Validation_Set", "vidB")):
        labels = root / "annotations" / "VA_Estimation_Challenge" / subset / f"{video}.txt"
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("\n".join(["valence,arousal", *lines[video]]) + "\n")
        for k in range(1, len(lines[video]) + 1):
            if k not in missing.get(video, set()):
                size = (224, 224) if k == 1 else (112, 112)
                _write_rgb(
                    root / "cropped_aligned" / video / f"{k:05d}.jpg", (10 * k, 20, 30), size
                )


@pytest.fixture
def affwild2_root(tmp_path: Path) -> Path:
    root = tmp_path / "affwild2"
    lines = {
        "vidA": ["0.5,-0.25", "-5,-5", "0.1,0.2", "-1,1"],
        "vidB": ["0.0,0.0", "0.3,-0.3", "-0.7,0.9"],
    }
    _affwild2(root, lines, missing={"vidA": {3}})
    return root


def test_affwild2_import_matches_frames_labels_and_images(affwild2_root: Path, tmp_path: Path):
    out = tmp_path / "out"
    annotations = import_affwild2(affwild2_root, out)
    table = pd.read_parquet(annotations)
    vid_a = table[table["video"] == "vidA"]
    np.testing.assert_array_equal(vid_a["frame"], [0, 1, 2, 3])
    np.testing.assert_allclose(vid_a["valence"], [0.5, np.nan, 0.1, -1])
    np.testing.assert_allclose(vid_a["arousal"], [-0.25, np.nan, 0.2, 1])
    np.testing.assert_array_equal(vid_a["face"], [True, True, False, True])
    assert not table["static"].any()
    sides = table.groupby("video")["split"].unique()
    assert sides.map(list).to_dict() == {"vidA": ["train"], "vidB": ["test"]}, "official split"
    assert set(table.loc[table["video"] == "vidB", "subset"]) == {"Validation_Set"}
    crops = np.load(out / "faces" / "vidA.npy")
    assert crops.shape == (4, 112, 112, 3), "the 224 px image was resized"
    for frame in (0, 1, 3):
        np.testing.assert_allclose(
            crops[frame].mean(axis=(0, 1)), [10 * (frame + 1), 20, 30], atol=2
        )
    assert (crops[2] == 0).all(), "a missing image is a zero crop"
    faces = pd.read_parquet(out / "faces" / "vidA.parquet")
    np.testing.assert_array_equal(faces["face"], [True, True, False, True])
    videos = load_split(annotations, out / "faces", None)
    assert [video.name for video in videos] == ["vidA", "vidB"]


def test_affwild2_crop_size_is_applied(affwild2_root: Path, tmp_path: Path) -> None:
    import_affwild2(affwild2_root, tmp_path / "out", crop_size=48)
    assert np.load(tmp_path / "out" / "faces" / "vidB.npy").shape == (3, 48, 48, 3)


def test_affwild2_corrupt_image_is_named(affwild2_root: Path, tmp_path: Path) -> None:
    bad = affwild2_root / "cropped_aligned" / "vidB" / "00002.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(Affect4kError, match="00002.jpg"):
        import_affwild2(affwild2_root, tmp_path / "out")
    assert not (tmp_path / "out" / "annotations.parquet").exists()
    assert not list((tmp_path / "out" / "faces").glob("vidB*")), "no partial output"


def test_affwild2_out_of_range_value_names_the_line(affwild2_root: Path, tmp_path: Path):
    labels = affwild2_root / "annotations" / "VA_Estimation_Challenge" / "Train_Set" / "vidA.txt"
    labels.write_text("valence,arousal\n0.1,0.1\n1.5,0.0\n0,0\n0,0\n")
    with pytest.raises(Affect4kError, match=r"vidA.txt, line 3"):
        import_affwild2(affwild2_root, tmp_path / "out")


def test_affwild2_without_images_folder_is_refused(affwild2_root: Path, tmp_path: Path):
    for image in (affwild2_root / "cropped_aligned" / "vidB").iterdir():
        image.unlink()
    (affwild2_root / "cropped_aligned" / "vidB").rmdir()
    with pytest.raises(Affect4kError, match="vidB"):
        import_affwild2(affwild2_root, tmp_path / "out")


def _affectnet(root: Path, rows: list[str], header: str = "") -> None:
    header = header or "subDirectory_filePath,face_x,expression,valence,arousal"
    (root / "labels.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture
def affectnet_root(tmp_path: Path) -> Path:
    root = tmp_path / "affectnet"
    _write_rgb(root / "images" / "1" / "a.jpg", (200, 10, 10), (150, 120))
    _write_rgb(root / "images" / "1" / "b.jpg", (10, 200, 10), (300, 300))
    _write_rgb(root / "images" / "2" / "c.jpg", (10, 10, 200), (112, 112))
    _affectnet(root, ["1/a.jpg,0,1,0.5,-0.5", "1/b.jpg,0,9,-2,-2", "2/c.jpg,0,3,-0.25,0.75"])
    return root


def test_affectnet_is_one_static_pseudo_video(affectnet_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    table = pd.read_parquet(import_affectnet(affectnet_root, out, crop_size=64))
    assert set(table["video"]) == {AFFECTNET_VIDEO} and table["static"].all()
    np.testing.assert_array_equal(table["frame"], [0, 1, 2])
    assert sorted(table["split"]) == ["test", "train", "train"], "split by image for pretraining"
    np.testing.assert_allclose(table["valence"], [0.5, np.nan, -0.25])
    np.testing.assert_allclose(table["arousal"], [-0.5, np.nan, 0.75])
    assert list(table["source"]) == ["1/a.jpg", "1/b.jpg", "2/c.jpg"]
    assert list(table["expression"]) == ["1", "9", "3"]
    crops = np.load(out / "faces" / f"{AFFECTNET_VIDEO}.npy", mmap_mode="r")
    assert crops.shape == (3, 64, 64, 3)
    expected = [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
    for crop, rgb in zip(crops, expected, strict=True):
        np.testing.assert_allclose(crop.mean(axis=(0, 1)), rgb, atol=3)
    (video,) = load_split(out / "annotations.parquet", out / "faces", None)
    assert video.static


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["1/a.jpg,0,1,0.5,-0.5"], "path,expression,valence,arousal", "line 1.*subDirectory"),
        (["1/a.jpg,0,1,0.5,-0.5", "1/b.jpg,0,1,1.5,0"], "", r"line 3: valence '1.5'"),
        (["1/a.jpg,0,1,0.5,x"], "", r"line 2: arousal 'x'"),
        (["1/a.jpg,0,1,0.5,0", "1/zz.jpg,0,1,0,0"], "", r"line 3: no image '1/zz.jpg'"),
        (["../outside.jpg,0,1,0,0"], "", r"line 2: no image"),
    ],
)
def test_affectnet_bad_labels_name_the_line(
    affectnet_root: Path, tmp_path: Path, rows: list[str], header: str, message: str
) -> None:
    _affectnet(affectnet_root, rows, header)
    with pytest.raises(Affect4kError, match=message):
        import_affectnet(affectnet_root, tmp_path / "out")


def test_affectnet_corrupt_image_names_file_and_line(affectnet_root: Path, tmp_path: Path):
    (affectnet_root / "images" / "2" / "c.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(Affect4kError, match=r"line 4: image .*c.jpg: not a readable image"):
        import_affectnet(affectnet_root, tmp_path / "out")
    assert not (tmp_path / "out" / "faces" / f"{AFFECTNET_VIDEO}.npy").exists()


def test_toy_corpus_crop_colour_encodes_the_label(tmp_path: Path) -> None:
    annotations = write_toy_corpus(tmp_path, videos=3, frames=40, test_videos=1, crop_size=8)
    table = pd.read_parquet(annotations)
    assert list(table.groupby("video")["split"].first()) == ["train", "train", "test"]
    for video in load_split(annotations, tmp_path / "faces", None):
        usable = np.isfinite(video.targets).all(axis=1)
        assert (~video.face).any() and np.isnan(video.labels).any()
        colour = video.crops[usable, 0, 0, :2].astype(float)
        np.testing.assert_allclose((colour - 128) / 100, video.targets[usable], atol=0.011)
        assert (video.crops[~video.face] == 0).all()


def test_affwild2_fallback_split_keeps_both_subjects_of_a_source_together(tmp_path: Path):
    """Without the official subsets, ``<source>_left``/``_right`` land on one side."""
    root = tmp_path / "affwild2"
    sources = [f"src{i}" for i in range(6)]
    for source in sources:
        for video in (f"{source}_left", f"{source}_right"):
            labels = root / "annotations" / "VA_Estimation_Challenge" / "Train_Set"
            labels.mkdir(parents=True, exist_ok=True)
            (labels / f"{video}.txt").write_text("valence,arousal\n0.1,0.2\n0.3,0.4\n")
            _write_rgb(root / "cropped_aligned" / video / "00001.jpg", (10, 20, 30), (16, 16))
    table = pd.read_parquet(import_affwild2(root, tmp_path / "out", crop_size=16))
    assert set(table["group"]) == set(sources)
    sides = table.groupby("group")["split"].unique()
    assert (sides.apply(len) == 1).all(), "a source straddles the split"
    assert {side[0] for side in sides} == {"train", "test"}


def test_affectnet_official_validation_list_is_the_held_out_part(
    affectnet_root: Path, tmp_path: Path
) -> None:
    _write_rgb(affectnet_root / "images" / "3" / "d.jpg", (90, 90, 90), (112, 112))
    header = "subDirectory_filePath,face_x,expression,valence,arousal"
    (affectnet_root / "validation.csv").write_text(f"{header}\n3/d.jpg,0,2,0.1,-0.1\n")
    table = pd.read_parquet(import_affectnet(affectnet_root, tmp_path / "out", crop_size=16))
    np.testing.assert_array_equal(table["frame"], [0, 1, 2, 3])
    assert list(table["split"]) == ["train", "train", "train", "test"]
    assert list(table["subset"]) == ["labels", "labels", "labels", "validation"]
    assert table["group"].is_unique, "each image is a group of its own"
    (affectnet_root / "validation.csv").write_text(f"{header}\n3/zz.jpg,0,2,0.1,-0.1\n")
    with pytest.raises(Affect4kError, match=r"validation\.csv, line 2: no image"):
        import_affectnet(affectnet_root, tmp_path / "again", crop_size=16)
