"""Tests of the training loop: its outputs, and resuming after a kill."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from affect4k.config.run_settings import TrainConfig
from affect4k.core.columns import HISTORY_COLUMNS
from affect4k.demo.corpora import write_toy_corpus
from affect4k.model.train import train

SRC = REPO / "src"

CONFIG = TrainConfig(
    model="alexnet_gru",
    epochs=3,
    batch_size=2,
    sequence_length=8,
    learning_rate=1e-3,
    input_size=40,
    width=0.0625,
    gru_units=4,
    fc_units=8,
    checkpoint_every=1,
)

# Runs train() and SIGKILLs itself while gathering the 3rd batch of the 2nd epoch, i.e. in the
# middle of that epoch's training steps, after epoch 1 was fully saved.
KILLED_RUN = """
import json, os, signal, sys
from pathlib import Path
from affect4k.model import sequences
from affect4k.model import train as training

getitem = sequences.SequenceDataset.__getitem__

def killing_getitem(self, index):
    if self.epoch == 1 and index == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return getitem(self, index)

sequences.SequenceDataset.__getitem__ = killing_getitem
config = training.TrainConfig(**json.loads(sys.argv[1]))
training.train(config, Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("db")
    write_toy_corpus(
        root, videos=4, frames=48, test_videos=1, validation_videos=1, crop_size=16, seed=0
    )
    return root


def _train(config: TrainConfig, database: Path, out: Path) -> Path:
    return train(config, database / "annotations.parquet", database / "faces", out)


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return [np.asarray(w) for w in keras.models.load_model(path, compile=False).weights]


def test_run_writes_history_checkpoints_and_models(
    database: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="affect4k.model.train")
    config = dataclasses.replace(CONFIG, checkpoint_every=2, eval_every=2, eval_train_every=3)
    final = _train(config, database, tmp_path)
    assert final == tmp_path / "model.keras" and final.is_file()
    history = pd.read_csv(tmp_path / "history.csv")
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert list(history["epoch"]) == [1, 2, 3]
    assert np.isfinite(history["loss"]).all()
    # eval_every=2, eval_train_every=3: epoch 1 is not scored, epoch 2 only on the validation
    # split, the last epoch on both; the test split never.
    train_scores, validation_scores = (
        history.loc[:, "train_valence_ccc":"train_arousal_mse"],
        history.loc[:, "validation_valence_ccc":],
    )
    assert train_scores.loc[:1].isna().all().all() and train_scores.loc[2].notna().all()
    assert validation_scores.loc[0].isna().all()
    assert validation_scores.loc[1:].notna().all().all()
    assert not any(column.startswith("test_") for column in history.columns)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_002.keras"]
    assert (tmp_path / "best.keras").is_file()
    assert not list(tmp_path.rglob(".tmp-*")), "no temp file left behind"
    # Progress of the run's steps (with the epoch) and of each scoring pass, to the job's log.
    log = capsys.readouterr().err.splitlines()
    assert any(f"train {tmp_path.name} epoch 3/3: 100%" in line for line in log)
    assert any("score validation split: 100%" in line and "windows" in line for line in log)
    assert not any("score test split" in line for line in log)
    assert not any("\x1b" in line for line in log), "no cursor movements in the log"
    assert "epoch 3/3" in caplog.text and "run ETA 0:00:00" in caplog.text
    # Each epoch's line gives the scores it has, never a NaN for a split it did not score.
    epochs = {line.split(":")[0]: line for line in caplog.messages if line.startswith("epoch ")}
    assert "CCC" not in epochs["epoch 1/3"]
    assert "validation mean CCC" in epochs["epoch 2/3"] and "train" not in epochs["epoch 2/3"]
    assert "train mean CCC" in epochs["epoch 3/3"] and "validation mean CCC" in epochs["epoch 3/3"]
    assert "nan" not in caplog.text
    mtime = final.stat().st_mtime_ns
    assert _train(config, database, tmp_path) == final
    assert final.stat().st_mtime_ns == mtime, "a finished run is not retrained"


def test_a_corpus_without_validation_part_trains_and_is_never_scored_there(
    tmp_path: Path,
) -> None:
    """A pretraining corpus (train and held-out test only) trains; validation scores stay NaN
    and no best epoch is chosen without them."""
    root = tmp_path / "corpus"
    write_toy_corpus(root, videos=3, frames=48, test_videos=1, crop_size=16, seed=1)
    assert "validation" not in set(pd.read_parquet(root / "annotations.parquet")["split"])
    config = dataclasses.replace(CONFIG, epochs=1)
    final = _train(config, root, tmp_path / "run")
    assert final.is_file()
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history.loc[:, "validation_valence_ccc":].isna().all().all()
    assert not (tmp_path / "run" / "best.keras").exists()


def test_changed_settings_retrain_from_scratch(database: Path, tmp_path: Path) -> None:
    _train(dataclasses.replace(CONFIG, epochs=2), database, tmp_path)
    changed = dataclasses.replace(CONFIG, epochs=1, learning_rate=1e-2)
    _train(changed, database, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["learning_rate"] == 1e-2
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_001.keras"]
    # Nothing of the old run survives: the same settings in a fresh directory give the same model.
    _train(changed, database, tmp_path / "fresh")
    for got, want in zip(
        _weights(tmp_path / "model.keras"), _weights(tmp_path / "fresh/model.keras"), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_killed_run_resumes_at_the_next_epoch(database: Path, tmp_path: Path) -> None:
    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    env = {**os.environ, "PYTHONPATH": str(SRC)}  # same Keras backend as this process
    args = [json.dumps(dataclasses.asdict(CONFIG)), database / "annotations.parquet"]
    args += [database / "faces", killed]
    result = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, *map(str, args)], env=env, capture_output=True
    )
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    assert json.loads((killed / "backup" / "state.json").read_text())["epoch"] == 1
    first = killed / "checkpoints" / "epoch_001.keras"
    first_mtime = first.stat().st_mtime_ns
    first_loss = pd.read_csv(killed / "history.csv")["loss"].tolist()
    assert len(first_loss) == 1 and not (killed / "model.keras").exists()

    (killed / "history.csv").unlink()  # as Snakemake does with a killed job's declared outputs
    _train(CONFIG, database, killed)
    history = pd.read_csv(killed / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert history.loc[0, "loss"] == first_loss[0]
    assert first.stat().st_mtime_ns == first_mtime, "epoch 1 was not trained again"
    # Weights, optimizer state and data order were restored: same result as no kill at all.
    _train(CONFIG, database, uninterrupted)
    expected = pd.read_csv(uninterrupted / "history.csv")
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-5)
    for got, want in zip(
        _weights(killed / "model.keras"), _weights(uninterrupted / "model.keras"), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_run_never_resumes_on_other_data(
    database: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new split that moves a training video to test: the saved epochs learned from it, so
    the run starts again rather than continuing (and would otherwise score a video it saw)."""
    import shutil

    moved = tmp_path / "db"
    shutil.copytree(database, moved)
    out = tmp_path / "run"
    _train(dataclasses.replace(CONFIG, epochs=1), moved, out)
    first = out / "checkpoints" / "epoch_001.keras"
    first_mtime = first.stat().st_mtime_ns
    table = pd.read_parquet(moved / "annotations.parquet")
    video = sorted(table.loc[table["split"] == "train", "video"].unique())[0]
    table.loc[table["video"] == video, "split"] = "test"
    table.to_parquet(moved / "annotations.parquet", index=False)
    with caplog.at_level("INFO"):
        _train(dataclasses.replace(CONFIG, epochs=2), moved, out)
    assert "the training or validation data changed" in caplog.text
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    assert first.stat().st_mtime_ns != first_mtime, "epoch 1 was trained again"


def test_a_finished_run_asked_for_again_trains_and_writes_its_outputs(
    database: Path, tmp_path: Path
) -> None:
    """Snakemake reruns a finished run when its code or inputs change, deleting its outputs
    first: the run trains again and writes them all, rather than finding its saved epochs
    done and writing no history."""
    config = dataclasses.replace(CONFIG, epochs=1)
    _train(config, database, tmp_path)
    for name in ("model.keras", "history.csv", "best.keras"):
        (tmp_path / name).unlink()
    _train(config, database, tmp_path)
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [1]
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "best.keras").is_file()


def test_settings_keep_fields() -> None:
    """A job's settings become the config field by field (the schema refuses a key that is no
    field, tests/unit/config/test_settings.py; job_settings keeps the workflow's keys from a
    job)."""
    settings = {"model": "alexnet_gru", "epochs": 4}
    assert TrainConfig.from_settings(settings) == TrainConfig(model="alexnet_gru", epochs=4)


def test_a_run_written_before_a_setting_existed_resumes_with_its_default(
    database: Path, tmp_path: Path
) -> None:
    _train(dataclasses.replace(CONFIG, epochs=1), database, tmp_path)
    config_path = tmp_path / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["gru_unroll"], saved["eval_train_every"]
    config_path.write_text(json.dumps(saved))
    _train(dataclasses.replace(CONFIG, epochs=2), database, tmp_path)
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [1, 2]
    # A setting that does differ from the old run's default still means a new run.
    backup = tmp_path / "backup" / "state.json"
    assert json.loads(backup.read_text())["epoch"] == 2
    _train(dataclasses.replace(CONFIG, epochs=1, gru_unroll=4), database, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["gru_unroll"] == 4
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [1]


def test_best_epoch_is_chosen_on_validation_never_on_test() -> None:
    from affect4k.model.train import _is_best

    history = [{"validation_mean_ccc": 0.4, "test_mean_ccc": 0.9}]
    assert _is_best(0.5, history), "a better validation score wins whatever test said"
    assert not _is_best(0.3, [{"validation_mean_ccc": 0.4, "test_mean_ccc": -0.9}])
    assert not _is_best(float("nan"), history)
