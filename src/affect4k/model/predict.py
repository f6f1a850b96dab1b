"""The ``predict`` stage: a run's per-frame predictions on our validation or test split, or an
imported corpus.

Predictions are stored per ``(video, frame)`` next to the labels (:data:`PREDICTION_COLUMNS`),
with NaN where no face was found, so every number of the results table can be recomputed from
the parquet alone (:mod:`affect4k.evaluation.tables`).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import affect4k.model.architectures  # noqa: F401  (registers the custom layers load_model needs)
from affect4k.core.columns import PREDICTION_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic
from affect4k.core.progress import progress
from affect4k.model.sequences import EvalBatch, EvalDataset, Video, Windows, load_split


def predict_frames(
    model: keras.Model,
    videos: Sequence[Video],
    *,
    sequence_length: int,
    batch_size: int,
    description: str = "predict",
) -> pd.DataFrame:
    """Run ``model`` over every in-split frame once: a table of :data:`PREDICTION_COLUMNS`.

    Shared by :func:`predict`, ``affect4k predict`` and the per-epoch scores of training, so
    all see the same numbers. A run of consecutive in-split frames (a segment: a whole video,
    or one chunk of the ``sequence`` split) is cut into windows of ``sequence_length`` that are
    fed in order, each starting from the GRUs' state at the end of the one before
    (:func:`carry_state`): every frame is predicted with all of its segment before it, exactly
    as one pass over the whole segment would, and no window starts from a fresh state (which
    made the predictions drop at every window boundary). Windows are fed in lanes
    (:func:`_lanes`), a batch holding the next window of each lane, so batches keep one shape
    and a jitted predict step compiles once; the next batch is gathered on a thread while the
    model runs. ``predict_on_batch`` rather than ``model.predict``: on TensorFlow, Keras feeds
    a dataset through a ``tf.data`` generator, which predicted at about half the rate
    (docs/performance.md). Frames without a face keep their label but get NaN predictions
    (their crop is still fed, as in training, to keep the sequence's time steps). Progress
    (windows done, ETA) goes to the log as ``description``.
    """
    predictions = [np.full((len(video.labels), 2), np.nan, dtype=np.float32) for video in videos]
    dataset = EvalDataset(videos, sequence_length=sequence_length, batch_size=batch_size)
    stateful = carry_state(model)
    reporter = progress(len(dataset.windows), description, "windows")
    if stateful is None:  # no recurrent state: the windows as EvalDataset batches them
        for batch in dataset:
            output = np.asarray(model.predict_on_batch(batch.x), dtype=np.float32)
            reporter.update(_store(predictions, batch, output, batch.video >= 0))
    elif len(dataset.windows):
        lanes = _lanes(videos, dataset.windows, batch_size)
        # EvalDataset batches its windows in order: laid out lane by lane, batch b holds step
        # b of every lane (a lane with nothing left repeats a one-frame window, ignored).
        laid_out = dataset.windows.take(np.where(lanes.order >= 0, lanes.order, 0))
        laid_out.length[lanes.order < 0] = 1
        dataset.windows, dataset.batch_size = laid_out, lanes.count
        states = [np.zeros((lanes.count, units), np.float32) for units in stateful.units]
        rows = np.arange(lanes.count)
        for index, batch in enumerate(dataset):
            slots = slice(index * lanes.count, (index + 1) * lanes.count)
            real = lanes.order[slots] >= 0
            for state in states:
                state[lanes.fresh[slots] | ~real] = 0
            output, *sequences = stateful.model.predict_on_batch([batch.x, *states])
            # A GRU's state after a window is its output at the window's last frame.
            last = laid_out.length[slots] - 1
            states = [np.asarray(sequence, np.float32)[rows, last] for sequence in sequences]
            reporter.update(_store(predictions, batch, np.asarray(output, np.float32), real))
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


def _store(
    predictions: list[np.ndarray], batch: EvalBatch, output: np.ndarray, real: np.ndarray
) -> int:
    """Put ``output``'s rows that ``real`` marks into ``predictions``; how many rows."""
    for row in np.flatnonzero(real):
        steps = batch.frames[row] >= 0
        predictions[batch.video[row]][batch.frames[row, steps]] = output[row, steps]
    return int(real.sum())


@dataclass(frozen=True)
class Lanes:
    """Windows laid out in ``count`` lanes: ``order`` (steps x count, flattened step by step)
    holds window indices, -1 where a lane has nothing left; ``fresh`` marks a window that
    starts a segment (its lane's state is reset)."""

    count: int
    order: np.ndarray
    fresh: np.ndarray


def _lanes(videos: Sequence[Video], windows: Windows, batch_size: int) -> Lanes:
    """Each segment's windows, in order, on one lane; lanes filled longest segment first.

    A segment is a run of windows of one video, each starting where the one before ended; a
    still image (``static`` video) is a segment of its own. There are as many lanes as
    ``batch_size`` allows without a lane outlasting the others by more than the longest
    segment: one long video takes one lane rather than a batch of mostly empty rows.
    """
    contiguous = np.zeros(len(windows), bool)
    contiguous[1:] = (windows.video[1:] == windows.video[:-1]) & (
        windows.start[1:] == windows.start[:-1] + windows.length[:-1]
    )
    static = np.array([videos[index].static for index in windows.video], bool)
    fresh = ~contiguous | static
    segments = np.split(np.arange(len(windows)), np.flatnonzero(fresh)[1:])
    longest = max(len(segment) for segment in segments)
    count = min(batch_size, max(1, len(windows) // longest))
    loads = [0] * count
    queues: list[list[int]] = [[] for _ in range(count)]
    for segment in sorted(segments, key=len, reverse=True):
        lane = int(np.argmin(loads))
        queues[lane].extend(segment.tolist())
        loads[lane] += len(segment)
    order = np.full((max(loads), count), -1, np.int64)
    for lane, queue in enumerate(queues):
        order[: len(queue), lane] = queue
    order = order.reshape(-1)
    return Lanes(count=count, order=order, fresh=np.where(order >= 0, fresh[order], True))


@dataclass(frozen=True)
class StatefulModel:
    """``model``: (crops, one initial state per recurrent layer) -> (outputs, each recurrent
    layer's output sequence); ``units``: the state size of each recurrent layer."""

    model: keras.Model
    units: tuple[int, ...]


_STATEFUL: weakref.WeakKeyDictionary[keras.Model, StatefulModel] = weakref.WeakKeyDictionary()


def carry_state(model: keras.Model) -> StatefulModel | None:
    """``model`` with its recurrent layers' initial states as inputs (None if it has none).

    The same layers (same weights, updated in place by training) called again with an
    ``initial_state``; a GRU's output at a step is its state, so each layer's state after a
    window is its output at the window's last frame. Built once per model: training scores with it
    every few epochs and a new graph would compile anew each time. Only a chain is supported, as
    :func:`affect4k.model.architectures.build_model` makes: recurrent layers one after the other,
    then the layers that map each step to its output.
    """
    if model in _STATEFUL:
        return _STATEFUL[model]
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    if not recurrent:
        return None
    after = model.layers[model.layers.index(recurrent[-1]) + 1 :]
    chain = [*recurrent, *after]
    linked = all(layer.input is before.output for before, layer in itertools.pairwise(chain))
    if not linked or chain[-1].output is not model.output:
        raise Affect4kError(f"model {model.name}: cannot carry the GRU state across windows")
    units = tuple(int(layer.cell.units) for layer in recurrent)
    states = [
        keras.Input((size,), dtype="float32", name=f"{layer.name}_state")
        for layer, size in zip(recurrent, units, strict=True)
    ]
    x, sequences = recurrent[0].input, []
    for layer, state in zip(recurrent, states, strict=True):
        x = layer(x, initial_state=state)
        sequences.append(x)
    for layer in after:
        x = layer(x)
    stateful = StatefulModel(keras.Model([model.input, *states], [x, *sequences]), units)
    _STATEFUL[model] = stateful
    return stateful


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
    the validation split, so scoring it there is optimistic.
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
