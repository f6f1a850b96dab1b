"""The resolution ablation: cells that differ in pixels only, derived face bins, and a table
recomputable from predictions."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from insightface.utils.face_align import arcface_dst

from affect4k.config.schema import schema_default
from affect4k.core.columns import GEOMETRY_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.media import ffmpeg_exe, iter_frames
from affect4k.core.metrics import va_metrics
from affect4k.evaluation.ablation import (
    NATIVE,
    UNRESOLVED,
    AblationCell,
    bin_order,
    build_ablation,
    resolved_from,
)
from affect4k.faces.ablation_crops import CropCell, crop_span, scaled_size, write_cell_crops
from affect4k.faces.align import align_face, downscale

#: What the workflow passes for ``evaluation.resamples`` unless a config sets it.
RESAMPLES = schema_default("evaluation.resamples")


# --- face bins -------------------------------------------------------------------------------


def test_a_face_is_binned_by_the_lowest_height_that_resolves_its_crop():
    heights = [NATIVE, 2160, 1440, 1080, 720, 360]
    span = np.array([80.0, 112, 200, 224, 500, 700, np.nan, 200])
    source = np.array([2160, 2160, 2160, 2160, 2160, 2160, 2160, 1080])
    bins = resolved_from(span, source, heights, 112)
    # 80 px < 112 even at 4K; 112 px fills the crop at 4K only; 200 x 1440/2160 = 133 >= 112
    # but 200 x 1080/2160 = 100 < 112; 224 just at 1080; 500 x 720/2160 = 167 but 500 x
    # 360/2160 = 83; 700 x 360/2160 = 117 even at 360. The 1080-line clip is its own native.
    assert bins.tolist() == [UNRESOLVED, NATIVE, "h1440", "h1080", "h720", "h360", None, "h720"]
    # A larger crop asks more of every height: the same 500 px face needs 2160 lines for 448.
    assert resolved_from(np.array([500.0]), np.array([2160]), heights, 448).tolist() == [NATIVE]
    assert bin_order(heights) == [UNRESOLVED, NATIVE, "h2160", "h1440", "h1080", "h720", "h360"]


def test_the_crop_span_is_the_side_of_the_square_a_crop_covers():
    template = arcface_dst  # the 112 px template's landmarks
    assert crop_span(template) == pytest.approx(112, rel=1e-6)
    assert crop_span(template * 3 + 500) == pytest.approx(336, rel=1e-6)


@pytest.mark.parametrize(
    ("size", "lines", "scaled"),
    [
        ((3840, 2160), 360, (640, 360)),
        ((1080, 1920), 360, (202, 360)),  # portrait: scaled by height, never stretched
        ((641, 361), 180, (320, 180)),
        ((640, 360), 720, None),  # never upscaled
        ((640, 360), None, None),
    ],
)
def test_scaling_by_height_keeps_the_aspect_ratio(size, lines, scaled):
    assert scaled_size(*size, lines) == scaled


# --- crops: the same landmarks and frames in every cell ---------------------------------------


@pytest.fixture(scope="module")
def clip_and_faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 640x360 clip of 8 textured frames and a native face table whose frames 2 and 5 have
    no face; the landmarks move from frame to frame."""
    folder = tmp_path_factory.mktemp("ablation")
    rng = np.random.default_rng(0)
    frames = [
        cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), np.uint8), (5, 5), 1) for _ in range(8)
    ]
    clip = folder / "clip.avi"
    argv = [
        ffmpeg_exe(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", "640x360", "-r", "25", "-i", "pipe:", "-c:v", "ffv1", str(clip),
    ]  # fmt: skip
    subprocess.run(argv, input=b"".join(f.tobytes() for f in frames), check=True)
    rows = []
    for index in range(8):
        face = index not in (2, 5)
        landmarks = arcface_dst * (1.2 + 0.05 * index) + [200 + 10 * index, 80]
        geometry = [0.99, 0, 0, 0, 0, *landmarks.ravel()] if face else [np.nan] * 15
        rows.append(
            {"frame": index, "face": face, **dict(zip(GEOMETRY_COLUMNS, geometry, strict=True))}
        )
    table = folder / "native.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return clip, table


def test_every_cell_crops_the_native_landmarks_of_the_native_frames(clip_and_faces, tmp_path):
    clip, native_table = clip_and_faces
    cells = [
        CropCell(height, crop, tmp_path / f"{height}-{crop}.npy", tmp_path / f"{height}-{crop}.pq")
        for height, crop in ((None, 224), (180, 112), (90, 224), (720, 112))
    ]
    write_cell_crops(clip, native_table, cells, tmp_path / "spans.pq", video_id="v", progress=False)
    native = pd.read_parquet(native_table)
    frames = list(iter_frames(clip))
    for cell in cells:
        # Every cell: exactly the native table, so exactly the native frames.
        pd.testing.assert_frame_equal(pd.read_parquet(cell.table), native)
        crops = np.load(cell.crops)
        assert crops.shape == (8, cell.crop_size, cell.crop_size, 3)
        for index, frame in enumerate(frames):
            if not native.loc[index, "face"]:
                assert not crops[index].any()
                continue
            # Cut at the native landmarks scaled to the cell, from the frame scaled there
            # low-passed for its factor (720 lines: above the clip's own, so the clip as it is).
            size = scaled_size(640, 360, cell.height)
            image = frame if size is None else downscale(frame, size)
            landmarks = native.loc[index, GEOMETRY_COLUMNS[5:]].to_numpy(float).reshape(5, 2)
            expected = align_face(image, landmarks * image.shape[0] / 360, cell.crop_size)
            np.testing.assert_array_equal(crops[index], expected)
    spans = pd.read_parquet(tmp_path / "spans.pq")
    assert spans["source_height"].eq(360).all()
    np.testing.assert_allclose(
        spans["span"].dropna(), [112 * (1.2 + 0.05 * i) for i in (0, 1, 3, 4, 6, 7)], rtol=1e-6
    )


def test_a_clip_that_does_not_match_its_native_table_fails_and_writes_nothing(
    clip_and_faces, tmp_path
):
    clip, native_table = clip_and_faces
    shorter = tmp_path / "short.parquet"
    pd.read_parquet(native_table).iloc[:6].to_parquet(shorter)
    out = tmp_path / "out"
    out.mkdir()
    cell = CropCell(180, 112, out / "c.npy", out / "c.pq")
    with pytest.raises(Affect4kError, match="video v: .*more frames than"):
        write_cell_crops(clip, shorter, [cell], out / "spans.pq", video_id="v", progress=False)
    assert list(out.iterdir()) == []


# --- the table -------------------------------------------------------------------------------


def _write(tmp_path, rng, frames_of=None):
    """Spans of two videos and two cells' predictions (native: good, h180: poor)."""
    spans = tmp_path / "spans"
    spans.mkdir()
    span = {"v1": np.r_[np.full(50, 150.0), np.full(50, 300.0)], "v2": np.full(60, 900.0)}
    span["v2"][:10] = np.nan  # no native face
    for video, values in span.items():
        pd.DataFrame(
            {"frame": np.arange(len(values)), "face": np.isfinite(values), "span": values,
             "source_height": 2160}
        ).to_parquet(spans / f"{video}.parquet")  # fmt: skip
    cells = []
    for resolution, noise in (("native", 0.05), ("h180-c112", 0.5)):
        rows = []
        for video, values in span.items():
            frames = np.flatnonzero(np.isfinite(values))
            if frames_of is not None and resolution != "native":
                frames = frames[:frames_of]
            labels = rng.uniform(-1, 1, (len(frames), 2))
            predicted = labels + rng.normal(0, noise, labels.shape)
            rows.append(
                pd.DataFrame(
                    {
                        "video": video,
                        "frame": frames,
                        "valence": labels[:, 0],
                        "arousal": labels[:, 1],
                        "valence_pred": predicted[:, 0],
                        "arousal_pred": predicted[:, 1],
                    }
                )  # fmt: skip
            )
        path = tmp_path / f"{resolution}.parquet"
        pd.concat(rows).to_parquet(path)
        cells.append(AblationCell("vgg", "vgg16_gru", resolution, 96, path))
    return spans, cells


def test_every_cell_is_scored_over_all_frames_and_per_face_bin(tmp_path):
    spans, cells = _write(tmp_path, np.random.default_rng(0))
    heights = [NATIVE, 1080, 720, 180]
    table = build_ablation(
        cells, spans, heights, tmp_path / "ablation.csv", resamples=RESAMPLES, min_groups=2
    )
    assert table["face_bin"].unique().tolist() == ["all", *bin_order(heights)]
    low = table[table["resolution"] == "h180-c112"]
    assert (low["height"].unique().tolist(), low["crop_size"].unique().tolist()) == (
        ["h180"],
        [112],
    )
    counts = table[table["resolution"] == "native"].set_index("face_bin")["frames"]
    # 150 px: resolved at 2160 (150 >= 112), not at 1080 (75); 300 px: from 1080 (150), not
    # at 720 (100); 900 px: from 720 (300), not at 180 (75).
    assert counts.to_dict() == {
        "all": 150,
        UNRESOLVED: 0,
        NATIVE: 50,
        "h1080": 50,
        "h720": 50,
        "h180": 0,
    }
    # A cell's row is the metric of exactly its bin's frames.
    predictions = pd.read_parquet(cells[0].predictions)
    both = predictions[predictions["video"] == "v1"].iloc[:50]
    expected = va_metrics(
        both[["valence", "arousal"]].to_numpy(), both[["valence_pred", "arousal_pred"]].to_numpy()
    )
    row = table[(table["resolution"] == "native") & (table["face_bin"] == NATIVE)].iloc[0]
    assert row["mean_ccc"] == pytest.approx(expected["mean_ccc"])
    assert (table["mean_ccc_lo"].dropna() <= table["mean_ccc_hi"].dropna()).all()
    # The written table is the returned one: every cell is recomputable from predictions.
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ablation.csv"), table, check_dtype=False)


def test_cells_scored_on_different_frames_are_refused(tmp_path):
    spans, cells = _write(tmp_path, np.random.default_rng(1), frames_of=30)
    with pytest.raises(Affect4kError, match="same frames"):
        build_ablation(cells, spans, [NATIVE, 180], tmp_path / "a.csv", resamples=RESAMPLES)
    assert not (tmp_path / "a.csv").exists()


def test_the_ablation_measures_paired_differences_against_native_with_holm(tmp_path):
    """Native, a height that changes nothing and one that costs about 0.1 CCC, two seeds each,
    on 40 videos (groups): the seed-mean rows carry the paired difference against native, and
    only the real loss survives Holm's correction; 2160 lines on 2160-line clips is native."""
    rng = np.random.default_rng(11)
    spans = tmp_path / "spans"
    spans.mkdir()
    videos, frames = [f"v{i}" for i in range(40)], 50
    truth = {}
    for video in videos:
        pd.DataFrame(
            {"frame": np.arange(frames), "face": True, "span": 900.0, "source_height": 2160}
        ).to_parquet(spans / f"{video}.parquet")
        truth[video] = rng.normal(0, 0.3, 2) + rng.normal(0, 0.3, (frames, 2))
    cells = []
    for seed in (0, 1):
        base = {v: 0.8 * y + rng.normal(0, 0.25, y.shape) for v, y in truth.items()}
        cells_of_seed = (
            ("native", 0.0),
            ("h2160-c112", 0.0),
            ("h1080-c112", 0.0),
            ("h360-c112", 0.25),
        )
        for resolution, extra in cells_of_seed:
            rows = []
            for video, labels in truth.items():
                predicted = (
                    base[video] + rng.normal(0, extra, labels.shape) if extra else base[video]
                )
                if resolution in ("h1080-c112", "h2160-c112"):  # the same quality, other noise
                    predicted = 0.8 * labels + rng.normal(0, 0.25, labels.shape)
                rows.append(
                    pd.DataFrame(
                        {
                            "video": video,
                            "frame": np.arange(frames),
                            "valence": labels[:, 0],
                            "arousal": labels[:, 1],
                            "valence_pred": predicted[:, 0],
                            "arousal_pred": predicted[:, 1],
                        }
                    )
                )
            path = tmp_path / f"{resolution}-{seed}.parquet"
            pd.concat(rows).to_parquet(path)
            cells.append(AblationCell("vgg", "vgg16_gru", resolution, 112, path, seed=seed))
    table = build_ablation(
        [replace(cell, eval_set="test") for cell in cells],
        spans,
        [NATIVE, 2160, 1080, 360],
        tmp_path / "ablation.csv",
        resamples=RESAMPLES,
    )
    rows = table[table["face_bin"] == "all"].set_index(["resolution", "seed"])
    # 2160 lines on 2160-line clips is the native cell trained again: named, never tested.
    again = rows.loc[("h2160-c112", "mean")]
    assert "the native cell again" in again["interval_note"]
    assert pd.isna(again["delta_p"]) and pd.isna(again["delta_significant"])
    assert set(rows.index.get_level_values("seed").astype(str)) == {"0", "1", "mean"}
    for resolution in ("h1080-c112", "h360-c112"):
        seeds = rows.loc[[(resolution, 0), (resolution, 1)], "delta_ccc"]
        mean = rows.loc[(resolution, "mean")]
        assert mean["delta_ccc"] == pytest.approx(seeds.mean())
        assert mean["delta_ccc_lo"] < mean["delta_ccc"] < mean["delta_ccc_hi"]
        assert mean["delta_p_holm"] >= mean["delta_p"]
    loss, null = rows.loc[("h360-c112", "mean")], rows.loc[("h1080-c112", "mean")]
    assert loss["delta_ccc_hi"] < 0 and loss["delta_significant"] is True
    assert null["delta_ccc_lo"] < 0 < null["delta_ccc_hi"] and null["delta_significant"] is False
    # Per-seed rows are not in the family; native has no difference with itself.
    assert pd.isna(rows.loc[("h360-c112", 0), "delta_significant"])
    assert rows.loc[[("native", 0), ("native", "mean")], "delta_ccc"].isna().all()
