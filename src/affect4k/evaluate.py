"""The ``predict`` stage: a run's per-frame predictions on our test split or an imported corpus.

Predictions are stored per ``(video, frame)`` next to the labels (:data:`PREDICTION_COLUMNS`),
with NaN where no face was found, so every number of the results table can be recomputed from
the parquet alone (:mod:`affect4k.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import affect4k.models  # noqa: F401  (registers the custom layers load_model needs)
from affect4k.errors import Affect4kError
from affect4k.files import write_atomic
from affect4k.layout import PREDICTION_COLUMNS
from affect4k.progress import progress
from affect4k.sequences import EvalDataset, Video, load_split


def predict_frames(
    model: keras.Model,
    videos: Sequence[Video],
    *,
    sequence_length: int,
    batch_size: int,
    description: str = "predict",
) -> pd.DataFrame:
    """Run ``model`` over every in-split frame once: a table of :data:`PREDICTION_COLUMNS`.

    Shared by :func:`predict` and the per-epoch scores of training, so both see the same
    windows: :class:`EvalDataset` batches (one shape, so the jitted predict step compiles
    once), the next gathered on a thread while the model runs. ``predict_on_batch`` rather than
    ``model.predict``: on TensorFlow, Keras feeds a dataset through a ``tf.data`` generator,
    which predicted at about half the rate (docs/performance.md). Frames without a face keep
    their label but get NaN predictions (their crop is still fed, as in training, to keep the
    sequence's time steps). Progress (windows done, ETA) goes to the log as ``description``.
    """
    predictions = [np.full((len(video.labels), 2), np.nan, dtype=np.float32) for video in videos]
    dataset = EvalDataset(videos, sequence_length=sequence_length, batch_size=batch_size)
    reporter = progress(len(dataset.windows), description, "windows")
    for batch in dataset:
        output = np.asarray(model.predict_on_batch(batch.x), dtype=np.float32)
        rows = np.flatnonzero(batch.video >= 0)
        for row in rows:
            steps = batch.frames[row] >= 0
            predictions[batch.video[row]][batch.frames[row, steps]] = output[row, steps]
        reporter.update(len(rows))
    reporter.close()
    tables = []
    for video, predicted in zip(videos, predictions, strict=True):
        frames = np.flatnonzero(video.in_split)
        predicted[~video.face] = np.nan
        tables.append(
            pd.DataFrame(
                {
                    "video": video.name,
                    "frame": frames,
                    "valence": video.labels[frames, 0],
                    "arousal": video.labels[frames, 1],
                    "valence_pred": predicted[frames, 0],
                    "arousal_pred": predicted[frames, 1],
                }
            )
        )
    if not tables:
        return pd.DataFrame({name: [] for name in PREDICTION_COLUMNS})
    return pd.concat(tables, ignore_index=True)


def predict(
    model_path: Path,
    annotations: Path,
    faces_dir: Path,
    out_path: Path,
    *,
    split: str | None,
    sequence_length: int,
    batch_size: int,
) -> None:
    """Write the predictions parquet of ``model_path`` on ``split`` (None = every frame).

    Use the final ``model.keras`` of a run for reported numbers: ``best.keras`` was chosen on
    the test split, so scoring it on that split is optimistic.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise Affect4kError(f"model file {model_path} does not exist")
    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # keras raises several types for a bad archive
        raise Affect4kError(f"cannot load model {model_path} ({exc})") from None
    videos = load_split(annotations, faces_dir, split)
    table = predict_frames(
        model,
        videos,
        sequence_length=sequence_length,
        batch_size=batch_size,
        description=f"predict {Path(out_path).name}",
    )
    write_atomic(Path(out_path), lambda tmp: table.to_parquet(tmp, index=False))
