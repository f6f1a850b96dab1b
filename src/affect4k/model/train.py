"""Training a CNN-RNN on the database with the study's protocol, resumable after a kill.

Study sections 6.2-6.4: Adam at 1e-5, 1-CCC loss, batches of 4 sequences of 80 frames from
different videos, 96x96 inputs from the 112x112 crops, 50 epochs, train and test CCC/MSE after
every epoch, a checkpoint every 10 epochs. Scoring departs from it twice. The study scored and
chose its epoch on the *test* split; a run here is scored on the *validation* split (our
addition, see docs/design.md) and never on test during training, so no epoch, checkpoint or
reader of the curves can choose on a test score: ``best.keras`` is the epoch with the best
validation CCC, and reported numbers come from the final ``model.keras``. And by default the
validation split is scored every ``eval_every`` = 2 epochs and the train split every
``eval_train_every`` = 10, which keeps scoring to a few % of an epoch's time on a CPU (1 and 1
are the study's cadence; docs/performance.md).

A run lives in one directory and is resumable: after every epoch the weights and optimizer
state go to ``backup/`` (atomically, the state file last), so calling :func:`train` again
after a kill continues at the next epoch with the same data order, and ``history.csv`` keeps
one row per finished epoch.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from affect4k.config.run_settings import TrainConfig
from affect4k.core.columns import DIMENSIONS, HISTORY_COLUMNS, METRIC_NAMES, SCORED_SPLITS
from affect4k.core.files import atomic_path, read_table, write_atomic
from affect4k.core.progress import progress
from affect4k.evaluation.tables import score
from affect4k.model.architectures import build_model
from affect4k.model.device import accelerator_available, configure_precision
from affect4k.model.loss import ccc_loss
from affect4k.model.predict import predict_frames
from affect4k.model.sequences import SequenceDataset, Video, load_split

log = logging.getLogger(__name__)

#: Fields that may differ when a run is resumed: they do not change what an epoch computes.
RESUMABLE_FIELDS = (
    "epochs",
    "checkpoint_every",
    "eval_every",
    "eval_train_every",
    "eval_batch_size",
)


def compile_model(config: TrainConfig, crop_size: int) -> keras.Model:
    """``config.model`` compiled with Adam and the 1-CCC loss, jitted where it pays off.

    JAX always compiles with XLA, and TensorFlow on a GPU does too; TensorFlow on a CPU runs
    its graph mode instead, since XLA there took 10 s to compile the tests' tiny model and
    then stepped 2x slower. (torch's "auto" leaves it eager.)
    """
    model = build_model(
        config.model,
        input_size=config.input_size,
        crop_size=crop_size,
        width=config.width,
        gru_units=config.gru_units,
        fc_units=config.fc_units,
        pretrained=config.pretrained,
        convention=config.input_convention,
        seed=config.seed,
        gru_unroll=config.gru_unroll,
    )
    cpu_tensorflow = keras.backend.backend() == "tensorflow" and not accelerator_available()
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=ccc_loss,
        jit_compile=False if cpu_tensorflow else "auto",
    )
    return model


def training_dataset(config: TrainConfig, videos: list[Video], *, gpu: bool) -> SequenceDataset:
    """The loader :func:`train` feeds ``fit`` with (also what bench/train.py times)."""
    return SequenceDataset(
        videos,
        sequence_length=config.sequence_length,
        batch_size=config.batch_size,
        seed=config.seed,
        steps_per_epoch=config.steps_per_epoch,
        shuffle_labels=config.shuffle_labels,
        # Worker threads gather the next batches while the GPU trains; on a CPU they would
        # only compete with the model for the cores.
        workers=2 if gpu else 1,
    )


class _StepProgress(keras.callbacks.Callback):
    """Advances a :func:`affect4k.core.progress.progress` reporter by one per training step."""

    def __init__(self, reporter: tqdm):
        super().__init__()
        self.reporter = reporter

    def on_train_batch_end(self, batch, logs=None):
        self.reporter.update(1)


def training_inputs(annotations: Path, faces_dir: Path) -> str:
    """A digest of what a run learns from and is chosen on: the train and validation rows of
    ``annotations`` (video, frame, side, labels) and which of those videos' frames have a face.

    Saved with every resumable state, so a run is never resumed on other data: after a video
    moved to the test side (a new person split), weights trained on it must not continue.
    """
    table = read_table(annotations, ("video", "frame", "split", *DIMENSIONS), "annotations")
    rows = table[table["split"].isin(("train", "validation"))]
    rows = rows[["video", "frame", "split", *DIMENSIONS]].sort_values(["video", "frame"])
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    for video in sorted(rows["video"].astype(str).unique()):
        faces = Path(faces_dir) / f"{video}.parquet"
        if faces.is_file():  # a missing table is load_split's to refuse, naming it
            mask = pd.read_parquet(faces, columns=["face"])["face"].to_numpy(dtype=bool)
            digest.update(video.encode() + np.packbits(mask).tobytes())
    return digest.hexdigest()[:16]


def _discard_other_run(config: TrainConfig, out_dir: Path, inputs: str) -> None:
    """Clear ``out_dir`` unless it holds this run, resumable: the same settings (or fewer
    epochs than asked), trained on the same ``inputs`` (:func:`training_inputs`), and not
    finished. A finished run whose ``model.keras`` is gone is one Snakemake asks for again
    because its inputs or code changed: it trains from scratch too."""
    config_path = out_dir / "config.json"
    if not config_path.is_file():
        return
    saved = json.loads(config_path.read_text())
    # A field missing from config.json did not exist when the run was written: the run
    # behaved as its default.
    defaults = {field.name: field.default for field in dataclasses.fields(config)}
    changed = [
        f"{name} {saved.get(name, defaults[name])!r} -> {value!r}"
        for name, value in dataclasses.asdict(config).items()
        if name not in RESUMABLE_FIELDS and saved.get(name, defaults[name]) != value
    ]
    done, _, trained_on = _read_state(out_dir / "backup")
    if done > config.epochs:
        changed.append(f"epochs {done} trained -> {config.epochs}")
    if done and trained_on != inputs:
        changed.append("the training or validation data changed")
    if done >= config.epochs and not (out_dir / "model.keras").is_file():
        changed.append(f"all {done} epochs were trained, but model.keras is gone")
    if not changed:
        return
    log.info("%s: settings changed (%s): training from scratch", out_dir, "; ".join(changed))
    for folder in ("backup", "checkpoints"):
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    for name in ("config.json", "best.keras", "model.keras", "history.csv"):
        (out_dir / name).unlink(missing_ok=True)


def _read_state(backup_dir: Path) -> tuple[int, Path | None, str | None]:
    """Last finished epoch, its weights file and the :func:`training_inputs` it was trained
    on (None in a state written before they were saved), or (0, None, None) for a fresh run."""
    path = backup_dir / "state.json"
    if not path.is_file():
        return 0, None, None
    state = json.loads(path.read_text())
    return int(state["epoch"]), backup_dir / state["weights"], state.get("inputs")


def _save_state(model: keras.Model, backup_dir: Path, epoch: int, inputs: str) -> None:
    """Weights + optimizer under an epoch-specific name, then the state file pointing to them.

    A kill between the two leaves the previous state file, which still names the previous
    (untouched) weights, so the state on disk is always consistent.
    """
    weights = backup_dir / f"epoch_{epoch:03d}.weights.h5"
    with atomic_path(weights) as tmp:
        model.save_weights(tmp)
    state = json.dumps({"epoch": epoch, "weights": weights.name, "inputs": inputs})
    write_atomic(backup_dir / "state.json", lambda tmp: tmp.write_text(state))
    for old in backup_dir.glob("epoch_*.weights.h5"):
        if old != weights:
            old.unlink()


def _save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def _is_best(validation_ccc: float, history: list[dict[str, float]]) -> bool:
    """Whether ``validation_ccc`` beats every earlier epoch's (NaN, an unscored epoch or an
    empty validation split, never does)."""
    earlier = [row.get("validation_mean_ccc", math.nan) for row in history]
    return bool(np.isfinite(validation_ccc)) and not any(
        value >= validation_ccc for value in earlier
    )


def scored_splits(config: TrainConfig, epoch: int) -> tuple[str, ...]:
    """The splits scored after ``epoch`` (1-based): each on its own cadence, both at the end."""
    every = {"train": config.eval_train_every, "validation": config.eval_every}
    return tuple(
        split for split in SCORED_SPLITS if epoch % every[split] == 0 or epoch == config.epochs
    )


def score_splits(
    model: keras.Model,
    videos: Mapping[str, list[Video]],
    config: TrainConfig,
    splits: Sequence[str],
) -> dict[str, float]:
    """Scores of ``splits``, each pooled over all its frames as the ABAW scripts do; NaN for a
    split without videos (a corpus a pretraining trains on may have no validation part)."""
    row = {}
    for split in splits:
        if not videos[split]:
            row.update({f"{split}_{name}": math.nan for name in METRIC_NAMES})
            continue
        predictions = predict_frames(
            model,
            videos[split],
            sequence_length=config.sequence_length,
            batch_size=config.eval_batch_size,
            description=f"score {split} split",
        )
        scores = score(predictions)
        row.update({f"{split}_{name}": scores[name] for name in METRIC_NAMES})
    return row


def train(config: TrainConfig, annotations: Path, faces_dir: Path, out_dir: Path) -> Path:
    """Train (or resume) the run in ``out_dir``; return the path of its final ``model.keras``.

    Writes ``history.csv`` (:data:`HISTORY_COLUMNS`, after every epoch; metrics pooled over all
    frames of each split, NaN on epochs :func:`scored_splits` skips),
    ``checkpoints/epoch_{e:03d}.keras`` every ``checkpoint_every`` epochs, ``best.keras`` (best
    validation mean CCC so far; the study chose on test) and ``model.keras`` after the last
    epoch. The test split is not loaded: it is scored once, by the ``predict`` stage.
    ``shuffle_labels`` trains every sequence on a random stretch of another video's labels
    (the negative control); all scores use the true labels.
    """
    out_dir = Path(out_dir)
    backup_dir = out_dir / "backup"
    config_path = out_dir / "config.json"
    final_path = out_dir / "model.keras"
    inputs = training_inputs(annotations, faces_dir)
    _discard_other_run(config, out_dir, inputs)
    done, weights, _ = _read_state(backup_dir)
    if done >= config.epochs and final_path.is_file():
        log.info("%s: already trained for %d epochs", out_dir, done)
        return final_path
    config_json = json.dumps(dataclasses.asdict(config), indent=2)
    write_atomic(config_path, lambda tmp: tmp.write_text(config_json))

    keras.utils.set_random_seed(config.seed)
    gpu = configure_precision()
    videos = {
        split: load_split(annotations, faces_dir, split, required=split == "train")
        for split in SCORED_SPLITS
    }
    dataset = training_dataset(config, videos["train"], gpu=gpu)
    model = compile_model(config, crop_size=videos["train"][0].crops.shape[1])
    history: list[dict[str, float]] = []
    if weights is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        # The backup keeps its own history: Snakemake deletes a killed job's declared outputs
        # (history.csv among them) before rerunning it. A kill after writing the history but
        # before the state leaves one row too many.
        history = pd.read_csv(backup_dir / "history.csv").to_dict("records")[:done]
        log.info("%s: resuming after epoch %d", out_dir, done)

    started = time.monotonic()
    for epoch in range(done + 1, config.epochs + 1):
        # One progress reporter per epoch, closed before scoring opens its own: nested tqdm
        # bars write cursor movements into the log.
        reporter = progress(
            len(dataset), f"train {out_dir.name} epoch {epoch}/{config.epochs}", "steps"
        )
        dataset.set_epoch(epoch - 1)
        fit = model.fit(
            dataset,
            epochs=epoch,
            initial_epoch=epoch - 1,
            shuffle=False,
            verbose=0,
            callbacks=[_StepProgress(reporter)],
        )
        reporter.close()
        row = {"epoch": epoch, "loss": float(fit.history["loss"][-1])}
        row.update(score_splits(model, videos, config, scored_splits(config, epoch)))
        validation_ccc = row.get("validation_mean_ccc", math.nan)
        per_epoch = (time.monotonic() - started) / (epoch - done)
        # Only what this epoch scored: an unscored split has no number, not a NaN.
        scored = "".join(
            f", {split} mean CCC {row[f'{split}_mean_ccc']:.4f}"
            for split in SCORED_SPLITS
            if f"{split}_mean_ccc" in row
        )
        log.info(
            "epoch %d/%d: loss %.4f%s; run ETA %s",
            epoch,
            config.epochs,
            row["loss"],
            scored,
            datetime.timedelta(seconds=round(per_epoch * (config.epochs - epoch))),
        )
        if _is_best(validation_ccc, history):
            _save_model(model, out_dir / "best.keras")
        if epoch % config.checkpoint_every == 0:
            _save_model(model, out_dir / "checkpoints" / f"epoch_{epoch:03d}.keras")
        history.append(row)
        table = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
        for path in (backup_dir / "history.csv", out_dir / "history.csv"):
            write_atomic(path, lambda tmp, t=table: t.to_csv(tmp, index=False))
        _save_state(model, backup_dir, epoch, inputs)
    _save_model(model, final_path)
    return final_path
