"""The ablation table: cells scored per face-size bin, recomputable from predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affect4k.ablation import AblationCell, bin_labels, build_ablation
from affect4k.errors import Affect4kError
from affect4k.metrics import va_metrics
from affect4k.settings import schema_default

#: What the workflow passes for ``evaluation.resamples`` unless a config sets it.
RESAMPLES = schema_default("evaluation.resamples")


def _write(tmp_path, rng):
    faces = tmp_path / "faces"
    faces.mkdir()
    widths = {"v1": np.r_[np.full(50, 80.0), np.full(50, 300.0)], "v2": np.full(60, 900.0)}
    widths["v2"][:10] = np.nan  # no face found at native resolution
    for video, width in widths.items():
        x1 = np.full(len(width), 10.0)
        pd.DataFrame({"frame": np.arange(len(width)), "x1": x1, "x2": x1 + width}).to_parquet(
            faces / f"{video}.parquet"
        )
    cells = []
    for resolution, noise in (("native", 0.05), ("h180", 0.5)):
        rows = []
        for video, width in widths.items():
            labels = rng.uniform(-1, 1, (len(width), 2))
            predicted = labels + rng.normal(0, noise, labels.shape)
            rows.append(
                pd.DataFrame(
                    {
                        "video": video,
                        "frame": np.arange(len(width)),
                        "valence": labels[:, 0],
                        "arousal": labels[:, 1],
                        "valence_pred": predicted[:, 0],
                        "arousal_pred": predicted[:, 1],
                    }
                )
            )
        path = tmp_path / f"{resolution}.parquet"
        pd.concat(rows).to_parquet(path)
        cells.append(AblationCell("vgg", "vgg16_gru", resolution, 96, path))
    return faces, cells


def test_every_cell_is_scored_per_face_size_bin_from_its_predictions(tmp_path):
    faces, cells = _write(tmp_path, np.random.default_rng(0))
    table = build_ablation(
        cells, faces, [0, 100, 400, 800], tmp_path / "ablation.csv", resamples=RESAMPLES
    )
    assert list(table["face_bin"].unique()) == ["all", "0-100", "100-400", "400-800", "800+"]
    counts = table[table["resolution"] == "native"].set_index("face_bin")["frames"]
    assert counts.to_dict() == {"all": 160, "0-100": 50, "100-400": 50, "400-800": 0, "800+": 50}
    # A cell's row is the metric of exactly its bin's frames.
    predictions = pd.read_parquet(cells[1].predictions)
    big = predictions[(predictions["video"] == "v2") & (predictions["frame"] >= 10)]
    expected = va_metrics(
        big[["valence", "arousal"]].to_numpy(), big[["valence_pred", "arousal_pred"]].to_numpy()
    )
    row = table[(table["resolution"] == "h180") & (table["face_bin"] == "800+")].iloc[0]
    assert row["mean_ccc"] == pytest.approx(expected["mean_ccc"])
    native = table[(table["resolution"] == "native") & (table["face_bin"] == "all")].iloc[0]
    assert native["mean_ccc"] > row["mean_ccc"], "the noisier cell scores lower"
    assert pd.read_csv(tmp_path / "ablation.csv").shape == table.shape


def test_bins_must_increase(tmp_path):
    faces, cells = _write(tmp_path, np.random.default_rng(1))
    with pytest.raises(Affect4kError, match="face_bins must increase"):
        build_ablation(cells, faces, [0, 100, 100], tmp_path / "a.csv", resamples=RESAMPLES)


def test_bin_labels():
    assert bin_labels([0, 100, 250.5]) == ["0-100", "100-250.5", "250.5+"]
