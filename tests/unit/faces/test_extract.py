"""extract_faces: the parquet/npy contract, full-resolution geometry, clear errors (who the
subject is: tests/unit/faces/test_identity.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pandas as pd
import pytest
import skimage.data
from helpers import SHARED

from affect4k.config.schema import from_schema, schema_default
from affect4k.core.columns import GEOMETRY_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames, ffmpeg_exe
from affect4k.faces import extract as faces
from affect4k.faces.detectors import Detection, make_detector
from affect4k.faces.extract import IDENTITY_COLUMNS, detection_width, extract_faces
from affect4k.faces.identity import IdentitySettings

#: What the workflow passes for ``faces.detect_width`` unless a config sets it.
DETECT_WIDTH = schema_default("faces.detect_width")
#: ... and for the ``faces`` identity settings.
IDENTITY = from_schema(IdentitySettings, "faces")

SCRFD = SHARED / "models" / "scrfd_500m_bnkps.onnx"
HEAD = skimage.data.astronaut()[:260, 120:340]  # head and shoulders, face ~110 px wide


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    argv = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=25)
        .output(str(path), vcodec="libx264", preset="ultrafast", crf=16, pix_fmt="yuv420p")
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(argv, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def scene(width: int, height: int, heads: list[tuple[int, int, float]]) -> np.ndarray:
    """A grey frame with the astronaut's head pasted at each (x, y, scale)."""
    frame = np.full((height, width, 3), 110, np.uint8)
    for x, y, scale in heads:
        head = cv2.resize(HEAD, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame[y : y + head.shape[0], x : x + head.shape[1]] = head
    return frame


def check_contract(clip: Path, table_path: Path, crops_path: Path) -> pd.DataFrame:
    table = pd.read_parquet(table_path)
    crops = np.load(crops_path, mmap_mode="r")
    frames = count_frames(clip)
    assert list(table.columns) == ["frame", "time_s", "face", *GEOMETRY_COLUMNS, *IDENTITY_COLUMNS]
    assert len(table) == frames == len(crops)
    np.testing.assert_array_equal(table["frame"], np.arange(frames))
    np.testing.assert_allclose(table["time_s"], np.arange(frames) / 25)
    assert table["face"].dtype == bool
    assert all(table[c].dtype == np.float64 for c in GEOMETRY_COLUMNS)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (112, 112, 3)
    with_face, without = table[table["face"]], table[~table["face"]]
    assert without[GEOMETRY_COLUMNS].isna().all().all()
    assert not with_face[GEOMETRY_COLUMNS].isna().any().any()
    assert (table["faces"] >= table["face"]).all() and (without["identity"] == -1).all()
    assert (with_face["identity"] >= 0).all() and with_face["subject_distance"].notna().all()
    assert (crops[~table["face"].to_numpy()] == 0).all()
    assert all(crops[i].std() > 10 for i in with_face.index)  # a real image, not a blank
    for i in range(5):
        x, y = with_face[f"lm{i}_x"], with_face[f"lm{i}_y"]
        assert ((x > with_face["x1"]) & (x < with_face["x2"])).all()
        assert ((y > with_face["y1"]) & (y < with_face["y2"])).all()
    return table


@pytest.mark.skipif(not SCRFD.is_file(), reason=f"{SCRFD} absent (../shared)")
def test_scrfd_face_stage_writes_full_resolution_geometry_and_crops(tmp_path: Path):
    # A 720p clip detected at 320 px wide: coordinates must come back in 720p pixels.
    clip = write_clip(
        tmp_path / "v.avi", [scene(1280, 720, [(400 + 8 * i, 120, 2.0)]) for i in range(12)]
    )
    detector = make_detector("insightface", str(SCRFD), min_score=0.5)
    summary = extract_faces(
        clip,
        tmp_path / "v.parquet",
        tmp_path / "v.npy",
        detector=detector,
        video_id="v",
        detect_width=320,
        progress=False,
        identity=IDENTITY,
    )
    table = check_contract(clip, tmp_path / "v.parquet", tmp_path / "v.npy")
    assert summary.frames == summary.face_frames == 12 == table["face"].sum()
    # The face is in the head's upper middle: x 400+8i+[~140, ~360] at scale 2 in 720p pixels.
    centre_x = (table["x1"] + table["x2"]) / 2 - 8 * table["frame"]
    assert centre_x.between(500, 700).all()
    assert ((table["x2"] - table["x1"]) > 150).all()


class FixedDetector:
    """Finds one face at the same place of every detection image, given as fractions."""

    def __init__(self, found: bool = True):
        self.found = found
        self.image_sizes: list[tuple[int, int]] = []

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        self.image_sizes.append((width, height))
        if not self.found:
            return []
        scale = np.array([width, height])
        landmarks = (
            np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.5], [0.42, 0.6], [0.58, 0.6]])
        ) * scale
        bbox = np.concatenate([[0.3, 0.25] * scale, [0.7, 0.75] * scale])
        return [Detection(bbox, 0.95, landmarks)]


@pytest.fixture(scope="module")
def plain_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (360, 640, 3), np.uint8) for _ in range(6)]
    return write_clip(tmp_path_factory.mktemp("faces") / "plain.avi", frames)


def test_min_face_widens_the_detection_copy(plain_clip: Path, tmp_path: Path):
    detector = FixedDetector()
    extract_faces(
        plain_clip,
        tmp_path / "p.parquet",
        tmp_path / "p.npy",
        detector=detector,
        video_id="p",
        detect_width=160,
        min_face=64,  # 40 px of a copy 400 wide: 64 px of the 640 px clip
        progress=False,
        identity=IDENTITY,
    )
    assert set(detector.image_sizes) == {(400, 225)}
    check_contract(plain_clip, tmp_path / "p.parquet", tmp_path / "p.npy")


@pytest.mark.parametrize(
    ("clip_width", "detect_width", "min_face", "width"),
    [
        (3840, 640, None, 640),  # faces from 240 px of 4K
        (3840, 640, 240, 640),  # already found
        (3840, 640, 48, 3200),  # 48 px faces: 40 px of a copy 3200 wide
        (1920, 640, 16, 1920),  # never wider than the clip
    ],
)
def test_detection_width(clip_width, detect_width, min_face, width):
    assert detection_width(clip_width, detect_width, min_face) == width


def test_no_face_in_any_frame_is_an_error_and_writes_nothing(plain_clip: Path, tmp_path: Path):
    with pytest.raises(Affect4kError, match="video p: no face found in any of 6 frames"):
        extract_faces(
            plain_clip,
            tmp_path / "p.parquet",
            tmp_path / "p.npy",
            detector=FixedDetector(found=False),
            video_id="p",
            progress=False,
            detect_width=DETECT_WIDTH,
            identity=IDENTITY,
        )
    assert list(tmp_path.iterdir()) == []


def test_corrupt_clip_is_an_error_naming_the_video(tmp_path: Path):
    clip = tmp_path / "bad.avi"
    clip.write_bytes(b"RIFF" + bytes(5000))
    with pytest.raises(Affect4kError, match="video bad: .*bad.avi"):
        extract_faces(
            clip,
            tmp_path / "b.parquet",
            tmp_path / "b.npy",
            detector=FixedDetector(),
            video_id="bad",
            progress=False,
            detect_width=DETECT_WIDTH,
            identity=IDENTITY,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.avi"]


@pytest.mark.parametrize(("claimed", "message"), [(7, "decoded 6 frames"), (5, "more frames")])
def test_decoded_count_must_match_the_counted_one(
    plain_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claimed: int, message: str
):
    monkeypatch.setattr(faces, "count_frames", lambda clip: claimed)
    with pytest.raises(Affect4kError, match=message):
        extract_faces(
            plain_clip,
            tmp_path / "p.parquet",
            tmp_path / "p.npy",
            detector=FixedDetector(),
            video_id="p",
            progress=False,
            detect_width=DETECT_WIDTH,
            identity=IDENTITY,
        )
    assert list(tmp_path.iterdir()) == []
