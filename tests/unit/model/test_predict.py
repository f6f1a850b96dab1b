"""Tests of per-frame prediction and the results table, with a tiny untrained GRU model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affect4k.config.schema import schema_default
from affect4k.core.columns import TABLE_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.metrics import va_metrics
from affect4k.demo.corpora import write_toy_corpus
from affect4k.evaluation.tables import TableEntry, build_table
from affect4k.model.architectures import build_model
from affect4k.model.predict import predict

#: What the workflow passes for ``evaluation.resamples`` unless a config sets it.
RESAMPLES = schema_default("evaluation.resamples")
CROP = 16
T = 16


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_model(
        "alexnet_gru", input_size=40, crop_size=CROP, width=0.0625, gru_units=4, fc_units=8
    )
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("db")
    write_toy_corpus(root, videos=4, frames=45, test_videos=2, crop_size=CROP, seed=2)
    return root


def _predict(model_path: Path, root: Path, out: Path, split: str | None) -> pd.DataFrame:
    predict(
        model_path,
        root / "annotations.parquet",
        root / "faces",
        out,
        split=split,
        sequence_length=T,
        batch_size=3,
    )
    return pd.read_parquet(out)


def test_predictions_cover_each_frame_once_with_nan_without_face(
    model_path: Path, database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _predict(model_path, database, tmp_path / "test.parquet", "test")
    assert "predict test.parquet: 100%" in capsys.readouterr().err, "progress in windows"
    annotations = pd.read_parquet(database / "annotations.parquet")
    expected = annotations[annotations["split"] == "test"]
    assert not table.duplicated(["video", "frame"]).any()
    merged = expected.merge(table, on=["video", "frame"], suffixes=("", "_out"), validate="1:1")
    assert len(merged) == len(expected) == len(table)
    np.testing.assert_array_equal(merged["valence_out"], merged["valence"])
    np.testing.assert_array_equal(merged["arousal_out"], merged["arousal"])
    no_face = ~merged["face"].to_numpy()
    assert no_face.any()
    assert merged.loc[no_face, ["valence_pred", "arousal_pred"]].isna().all().all()
    assert np.isfinite(merged.loc[~no_face, ["valence_pred", "arousal_pred"]]).all().all()


@pytest.fixture(scope="module")
def stateful_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose output depends on its input and on its GRU state: random weights with
    live ReLUs (an untrained one of this size outputs 0 everywhere) and slow update gates, so
    that a state reset shows as a jump."""
    model = build_model(
        "alexnet_gru", input_size=40, crop_size=CROP, width=0.0625, gru_units=4, fc_units=8
    )
    rng = np.random.default_rng(5)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = rng.normal(0, 1 / np.sqrt(np.prod(weights[0].shape[:-1])), weights[0].shape)
        rest = [np.full(w.shape, 0.1) if w.ndim == 1 else rng.normal(0, 0.5, w.shape)
                for w in weights[1:]]  # fmt: skip
        if layer.name.startswith("gru"):
            rest[-1][:, : layer.cell.units] += 2.0  # update gate mostly closed: slow state
        layer.set_weights([kernel, *rest])
    path = tmp_path_factory.mktemp("stateful") / "model.keras"
    model.save(path)
    return path


def test_each_frame_is_predicted_with_its_whole_segment_before_it(
    stateful_model_path: Path, database: Path, tmp_path: Path
) -> None:
    """Windows of T frames carry the GRU state: the numbers of one pass over each video."""
    import keras

    model = keras.models.load_model(stateful_model_path, compile=False)
    table = _predict(stateful_model_path, database, tmp_path / "all.parquet", None)
    for video, rows in table.groupby("video"):
        crops = np.load(database / "faces" / f"{video}.npy")
        face = pd.read_parquet(database / "faces" / f"{video}.parquet")["face"].to_numpy()
        expected = model.predict_on_batch(crops[None])[0]
        assert len(crops) > 2 * T and np.ptp(expected[face], axis=0).min() > 0.05
        expected[~face] = np.nan
        got = rows.sort_values("frame")[["valence_pred", "arousal_pred"]].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # A segment of a video (a chunk of the sequence split) starts afresh at its first frame.
    annotations = pd.read_parquet(database / "annotations.parquet")
    video = annotations["video"].iloc[0]
    annotations["split"] = "train"
    chunk = (annotations["video"] == video) & (annotations["frame"] >= 20)
    annotations.loc[chunk, "split"] = "test"
    annotations.to_parquet(tmp_path / "annotations.parquet")
    (tmp_path / "faces").symlink_to(database / "faces")
    table = _predict(stateful_model_path, tmp_path, tmp_path / "chunk.parquet", "test")
    crops = np.load(database / "faces" / f"{video}.npy")
    face = pd.read_parquet(database / "faces" / f"{video}.parquet")["face"].to_numpy()
    expected = model.predict_on_batch(crops[None, 20:])[0]
    expected[~face[20:]] = np.nan
    np.testing.assert_array_equal(table["frame"], np.arange(20, len(crops)))
    np.testing.assert_allclose(table[["valence_pred", "arousal_pred"]], expected, atol=1e-5)


def test_predictions_are_continuous_at_window_boundaries(stateful_model_path: Path) -> None:
    """One face held still for 60 frames, windows of 10: the prediction settles smoothly,
    with no step at a window boundary larger than the steps inside the windows (a window that
    started from a fresh state would jump back to the first frame's value: a saw tooth)."""
    import keras

    from affect4k.model.predict import predict_frames
    from affect4k.model.sequences import Video

    model = keras.models.load_model(stateful_model_path, compile=False)
    crop = np.random.default_rng(1).integers(0, 256, (CROP, CROP, 3), dtype=np.uint8)
    frames, length = 60, 10
    video = Video(
        name="still",
        crops=np.repeat(crop[None], frames, axis=0),
        labels=np.zeros((frames, 2), np.float32),
        face=np.ones(frames, bool),
        in_split=np.ones(frames, bool),
        static=False,
    )
    table = predict_frames(model, [video], sequence_length=length, batch_size=4)
    steps = np.abs(np.diff(table[["valence_pred", "arousal_pred"]].to_numpy(), axis=0))
    boundary = np.arange(length - 1, frames - 1, length)  # step from frame 9 to 10, ...
    inside = np.setdiff1d(np.arange(frames - 1), boundary)
    assert steps[inside].max() > 1e-3, "the model's output must depend on its state"
    assert (steps[boundary] <= steps[inside].max(axis=0)).all(), steps[boundary]


def test_a_frame_level_model_is_fed_as_it_is(database: Path, tmp_path: Path) -> None:
    """vgg16_cnn has no state to carry: each frame's number is its own crop's."""
    model = build_model("vgg16_cnn", input_size=32, crop_size=CROP, width=0.0625, fc_units=8)
    path = tmp_path / "cnn.keras"
    model.save(path)
    table = _predict(path, database, tmp_path / "cnn.parquet", "test")
    for video, rows in table.groupby("video"):
        crops = np.load(database / "faces" / f"{video}.npy")
        face = pd.read_parquet(database / "faces" / f"{video}.parquet")["face"].to_numpy()
        expected = model.predict_on_batch(crops[None])[0]
        expected[~face] = np.nan
        got = rows.sort_values("frame")[["valence_pred", "arousal_pred"]].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_static_corpus_takes_the_last_step(model_path: Path, tmp_path: Path) -> None:
    import keras

    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, CROP, CROP, 3), dtype=np.uint8)
    np.save(faces / "stills.npy", crops)
    pd.DataFrame({"frame": range(5), "face": True}).to_parquet(faces / "stills.parquet")
    pd.DataFrame(
        {
            "video": "stills",
            "frame": range(5),
            "valence": rng.uniform(-1, 1, 5),
            "arousal": rng.uniform(-1, 1, 5),
            "split": "test",
            "static": True,
        }
    ).to_parquet(tmp_path / "annotations.parquet")
    table = _predict(model_path, tmp_path, tmp_path / "p.parquet", None)
    model = keras.models.load_model(model_path, compile=False)
    repeated = np.repeat(crops[:, None], T, axis=1)
    expected = model.predict_on_batch(repeated)[:, -1]
    np.testing.assert_allclose(table[["valence_pred", "arousal_pred"]], expected, atol=1e-5)


def test_table_recomputes_the_metrics_from_the_parquets(
    model_path: Path, database: Path, tmp_path: Path
) -> None:
    paths = {split: tmp_path / f"{split}.parquet" for split in ("train", "test")}
    for split, path in paths.items():
        _predict(model_path, database, path, split)
    entries = [TableEntry("r1", "alexnet_gru", "112", split, path) for split, path in paths.items()]
    out = tmp_path / "table.csv"
    build_table(entries, out, resamples=RESAMPLES)
    table = pd.read_csv(out)
    assert tuple(table.columns) == TABLE_COLUMNS
    for (_, row), (split, path) in zip(table.iterrows(), paths.items(), strict=True):
        assert row["eval_set"] == split
        predictions = pd.read_parquet(path).dropna()
        expected = va_metrics(
            predictions[["valence", "arousal"]].to_numpy(),
            predictions[["valence_pred", "arousal_pred"]].to_numpy(),
        )
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-9, nan_ok=True)
        assert row["frames"] == len(predictions)
        assert row["videos"] == predictions["video"].nunique() == 2


def test_table_names_a_missing_predictions_file(tmp_path: Path) -> None:
    entry = TableEntry("run7", "vgg16_gru", "112", "test", tmp_path / "missing.parquet")
    with pytest.raises(Affect4kError, match="run run7"):
        build_table([entry], tmp_path / "table.csv", resamples=RESAMPLES)
    assert not (tmp_path / "table.csv").exists()


def test_predict_refuses_a_missing_model(database: Path, tmp_path: Path) -> None:
    with pytest.raises(Affect4kError, match="nothing.keras"):
        _predict(tmp_path / "nothing.keras", database, tmp_path / "p.parquet", "test")
