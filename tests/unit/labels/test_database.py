"""The database stage: per-video labels fused into annotations.parquet, the agreement and
annotators tables (affect4k.labels.database)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.traces import FUSION

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.labels.database import build_database
from affect4k.labels.fusion import agreement_with_others, ewe_weights, fuse

NOISE = {"ann1": 0.1, "ann2": 0.2, "ann3": 0.4}
SIGNAL_SD = 0.3
STAGES = ("raw", "aligned")


def write_video_labels(path: Path, video: str, n_frames: int, rng: np.random.Generator) -> Path:
    """Annotators = one shared signal + independent noise of known SD, so r is known."""
    table = pd.DataFrame({"video": video, "frame": np.arange(n_frames)})
    table["time_s"] = table["frame"] / CLIP_FPS
    table["face"] = True
    for dim in ("valence", "arousal"):
        signal = rng.normal(0, SIGNAL_SD, n_frames)
        for name, sd in NOISE.items():
            table[f"{dim}_{name}"] = signal + rng.normal(0, sd, n_frames)
        table[dim] = table[[f"{dim}_{name}" for name in NOISE]].mean(axis=1)
    table.loc[: n_frames // 10, "valence_ann3"] = np.nan  # ann3 skipped the start
    for dim in ("valence", "arousal"):
        for name in NOISE:
            table[f"raw.{dim}_{name}"] = table[f"{dim}_{name}"]  # no lag
    table.to_parquet(path, index=False)
    return path


def test_build_database_agreement_and_table(tmp_path):
    rng = np.random.default_rng(3)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 3000, rng) for i in range(3)]
    out, agreement_csv = tmp_path / "db" / "annotations.parquet", tmp_path / "db" / "agreement.csv"
    build_database(paths[::-1], list(NOISE), out, agreement_csv, **FUSION)

    agreement = pd.read_csv(agreement_csv)
    assert list(agreement.columns) == [
        "stage",
        "dimension",
        "annotator_a",
        "annotator_b",
        "pearson_r",
        "ccc",
        "alpha",
        "frames",
    ]
    # No lag: the traces before and after compensation are the same, and so is agreement.
    raw, aligned = (agreement[agreement["stage"] == s].reset_index(drop=True) for s in STAGES)
    pd.testing.assert_frame_equal(raw.drop(columns="stage"), aligned.drop(columns="stage"))
    by_pair = aligned[aligned["annotator_a"] != "*"]
    assert (by_pair["ccc"] <= by_pair["pearson_r"] + 1e-12).all()  # CCC <= r, always
    for dim in ("valence", "arousal"):
        rows = by_pair[by_pair["dimension"] == dim]
        pairs = {frozenset(p) for p in zip(rows["annotator_a"], rows["annotator_b"], strict=True)}
        assert len(rows) == 3 and pairs == {frozenset(p) for p in itertools.combinations(NOISE, 2)}
        for row in rows.itertuples():
            var_s, sd_a, sd_b = SIGNAL_SD**2, NOISE[row.annotator_a], NOISE[row.annotator_b]
            expected = var_s / np.sqrt((var_s + sd_a**2) * (var_s + sd_b**2))
            assert row.pearson_r == pytest.approx(expected, abs=0.03)
            with_ann3 = "ann3" in (row.annotator_a, row.annotator_b) and dim == "valence"
            assert row.frames == 3 * (3000 - (3000 // 10 + 1) * with_ann3)

    database = pd.read_parquet(out)
    assert {"video", "frame", "time_s", "valence", "arousal", "face"} <= set(database)
    assert "split" not in database  # the split stage's, so that any number of videos builds
    assert "valence_ann1" in database  # per-annotator columns are kept
    assert list(database["video"].unique()) == ["v0", "v1", "v2"]
    assert database.groupby("video")["frame"].apply(lambda f: f.is_monotonic_increasing).all()


def test_a_one_video_pilot_builds_its_database(tmp_path):
    """Issue 30 item 10: the database, agreement.csv and annotators.csv of a single video (a
    pilot) build; only the split needs several groups."""
    path = write_video_labels(tmp_path / "pilot.parquet", "pilot", 500, np.random.default_rng(1))
    out = tmp_path / "db"
    build_database(
        [path],
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        out_annotators=out / "annotators.csv",
        **FUSION,
    )
    assert set(pd.read_parquet(out / "annotations.parquet")["video"]) == {"pilot"}
    agreement = pd.read_csv(out / "agreement.csv")
    assert agreement["pearson_r"].notna().all() and len(agreement) == 2 * 2 * 4
    assert len(pd.read_csv(out / "annotators.csv")) == 2 * len(NOISE)


def test_build_database_refuses_duplicate_video_and_missing_columns(tmp_path):
    rng = np.random.default_rng(0)
    first = write_video_labels(tmp_path / "a.parquet", "same", 20, rng)
    second = write_video_labels(tmp_path / "b.parquet", "same", 20, rng)
    with pytest.raises(Affect4kError, match="video same appears in both"):
        build_database(
            [first, second],
            list(NOISE),
            tmp_path / "db.parquet",
            tmp_path / "a.csv",
            **FUSION,
        )
    with pytest.raises(Affect4kError, match="arousal_ann9") as caught:
        build_database(
            [first],
            [*NOISE, "ann9"],
            tmp_path / "db.parquet",
            tmp_path / "a.csv",
            **FUSION,
        )
    assert str(first) in str(caught.value)
    assert not (tmp_path / "db.parquet").exists()


@pytest.mark.parametrize(
    ("fusion", "per_video"), [("mean", False), ("ewe", False), ("ewe", True), ("median", False)]
)
def test_the_database_fuses_the_annotators_and_reports_each(tmp_path, fusion, per_video):
    rng = np.random.default_rng(5)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 2000, rng) for i in range(3)]
    out = tmp_path / "db"
    build_database(
        paths,
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        fusion=fusion,
        per_video=per_video,
        out_annotators=out / "annotators.csv",
    )
    database = pd.read_parquet(out / "annotations.parquet")
    assert not [column for column in database if column.startswith("raw.")]
    for written in ("annotators.csv", "agreement.csv"):  # 0.44, not 0.44000000000000006
        assert not re.search(r"\d\.\d{5,}", (out / written).read_text()), written
    table = pd.read_csv(out / "annotators.csv")
    assert list(table.columns) == [
        "annotator",
        "dimension",
        "lag_s",
        "weight",
        "pearson_r_raw",
        "ccc_raw",
        "pearson_r",
        "ccc",
        "ccc_label",
        "frames",
        "calibration_lag_s",
        "calibration_ccc",
    ]
    assert len(table) == 6 and (table["lag_s"] == 0).all()
    assert table["calibration_lag_s"].isna().all()  # no calibration given
    stack = database[[f"arousal_{name}" for name in NOISE]].to_numpy().T
    labelled = database["arousal"].notna()
    if fusion == "ewe":
        weights = table[table["dimension"] == "arousal"]["weight"].to_numpy()
        assert list(np.argsort(-weights)) == [0, 1, 2]  # by noise: ann1 < ann2 < ann3
        videos = database["video"].to_numpy()
        expected = np.concatenate(  # each video's own weights, or the pooled ones
            [
                fuse(
                    stack[:, videos == video],
                    "ewe",
                    ewe_weights(agreement_with_others([stack[:, videos == video]])[0])
                    if per_video
                    else weights,
                )
                for video in ("v0", "v1", "v2")
            ]
        )
    else:
        expected = fuse(stack, fusion)
    # The weights read back are rounded to CSV_DECIMALS; the labels used them unrounded.
    np.testing.assert_allclose(database.loc[labelled, "arousal"], expected[labelled], atol=1e-3)
    # Frames the annotate stage left unlabelled stay unlabelled, whatever the fusion.
    source = pd.concat(pd.read_parquet(path) for path in paths)
    assert database["valence"].isna().sum() == source["valence"].isna().sum()


def test_the_annotators_table_reports_the_calibration(tmp_path):
    rng = np.random.default_rng(9)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 500, rng) for i in range(3)]
    calibration = pd.DataFrame(
        [("ann1", "valence", 0.4, 0.9), ("ann2", "arousal", 1.2, 0.7)],
        columns=["annotator", "dimension", "lag_s", "ccc"],
    )
    out = tmp_path / "db"
    build_database(
        paths,
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        out_annotators=out / "annotators.csv",
        calibration=calibration,
        **FUSION,
    )
    table = pd.read_csv(out / "annotators.csv").set_index(["annotator", "dimension"])
    assert table.loc[("ann1", "valence"), "calibration_lag_s"] == 0.4
    assert table.loc[("ann2", "arousal"), "calibration_ccc"] == 0.7
    assert table["calibration_lag_s"].isna().sum() == len(table) - 2
