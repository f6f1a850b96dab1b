"""Sequence loader: batches of consecutive face crops with per-frame labels for the CNN-RNNs.

The study cut each video into sequences of 80 frames and fed 4 of them per batch, taking care
that they come from different videos: the 1-CCC loss pools the batch's frames, and the frames
of one short stretch of one video barely vary, which leaves the CCC near 0/0 (seed, 6.2).

Crops are never loaded whole: each video's ``{video}.npy`` is memory-mapped and a batch copies
only its own frames (one contiguous slice per sequence), so resident memory does not grow with
the database. Only the per-frame labels and masks (10 bytes a frame) are held in RAM.

A frame is trained and scored only when it belongs to the requested split, its faces parquet
says a face was found and its label is finite; every other frame gets a NaN target that the
loss and metrics mask (it is never fed as a zero label). Sequences never straddle the split: a
video cut into train and test chunks (``split="sequence"``) is read as separate segments, so
no test image is ever part of a training sequence.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from affect4k.core.columns import STATIC_COLUMN
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table

#: Columns the loader needs from annotations.parquet.
ANNOTATION_COLUMNS = ("video", "frame", "valence", "arousal", "split")


@dataclass(frozen=True)
class Video:
    """One video of a split: memory-mapped crops and per-frame arrays of equal length.

    ``labels`` are the annotation's [valence, arousal] (NaN = unlabelled). ``targets`` are what
    training and scoring use: ``labels`` where the frame is in the split and has a face, NaN
    elsewhere. ``static`` videos are
    collections of still images (AffectNet): each frame is a sequence of its own.
    """

    name: str
    crops: np.ndarray
    labels: np.ndarray
    face: np.ndarray
    in_split: np.ndarray
    static: bool

    @cached_property
    def targets(self) -> np.ndarray:
        usable = self.in_split & self.face
        return np.where(usable[:, None], self.labels, np.float32(np.nan))


def _read_annotations(path: Path, split: str | None, required: bool) -> pd.DataFrame:
    table = read_table(path, ANNOTATION_COLUMNS, "annotations")
    if required and split is not None and not (table["split"] == split).any():
        found = ", ".join(sorted(map(str, table["split"].unique())))
        raise Affect4kError(f"{path} has no frame in split {split!r} (splits: {found})")
    return table


def _load_video(name: str, rows: pd.DataFrame, faces_dir: Path, split: str | None) -> Video:
    npy, parquet = faces_dir / f"{name}.npy", faces_dir / f"{name}.parquet"
    for path in (npy, parquet):
        if not path.is_file():
            raise Affect4kError(f"video {name}: {path} does not exist")
    try:
        crops = np.load(npy, mmap_mode="r")
        faces = pd.read_parquet(parquet, columns=["frame", "face"])
    except Exception as exc:  # numpy/pyarrow raise several types for corrupt files
        raise Affect4kError(f"video {name}: cannot read {npy} / {parquet} ({exc})") from None
    n = len(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise Affect4kError(
            f"{npy}: expected uint8 (frames, h, w, 3), got {crops.dtype} {crops.shape}"
        )
    if not np.array_equal(faces["frame"].to_numpy(), np.arange(n)):
        raise Affect4kError(f"{parquet}: rows must be frames 0..{n - 1}, one per row of {npy}")
    frames = rows["frame"].to_numpy()
    if frames.min() < 0 or frames.max() >= n:
        raise Affect4kError(
            f"video {name}: annotations reach frame {frames.max()} but {npy} has {n} frames"
        )
    labels = np.full((n, 2), np.nan, dtype=np.float32)
    labels[frames] = rows[["valence", "arousal"]].to_numpy(np.float32)
    in_split = np.zeros(n, dtype=bool)
    in_split[frames] = True if split is None else (rows["split"] == split).to_numpy()
    static = bool(rows[STATIC_COLUMN].any()) if STATIC_COLUMN in rows else False
    return Video(name, crops, labels, faces["face"].to_numpy(bool), in_split, static)


def load_split(
    annotations: Path,
    faces_dir: Path,
    split: str | None,
    required: bool = True,
) -> list[Video]:
    """The videos with at least one frame in ``split`` (None = every frame), crops memory-mapped.

    An empty split is an error when ``required``, otherwise no videos: a corpus a pretraining
    trains on may have no validation part.

    The face mask comes from ``faces_dir`` (not from the annotations' ``face`` column) so one
    annotation table serves crops of several resolutions, each with its own detections.
    """
    table = _read_annotations(annotations, split, required)
    if split is not None:
        table = table[table["video"].isin(table.loc[table["split"] == split, "video"])]
    videos = [
        _load_video(str(name), rows, Path(faces_dir), split)
        for name, rows in table.groupby("video", sort=True)
    ]
    shapes = {video.crops.shape[1:] for video in videos}
    if len(shapes) > 1:
        raise Affect4kError(f"{faces_dir}: crops of different sizes {sorted(shapes)}")
    return videos


@dataclass(frozen=True)
class Windows:
    """Sequences as parallel arrays: ``video`` index, first ``start`` frame, ``length`` frames.

    A static video's window has length 1: the image is repeated over all T steps.
    """

    video: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.video)

    def take(self, index: np.ndarray) -> Windows:
        return Windows(self.video[index], self.start[index], self.length[index])


def _segments(in_split: np.ndarray) -> np.ndarray:
    """(start, stop) of each run of consecutive in-split frames."""
    edges = np.diff(np.concatenate([[0], in_split.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def _windows(videos: Sequence[Video], length: int, rng: np.random.Generator | None) -> Windows:
    """Tile every segment with windows of ``length``; with ``rng``, keep only trainable ones.

    Evaluation (``rng`` None) tiles from each segment's start, the last window shorter, so every
    in-split frame is in exactly one window. Training shifts the grid by a random offset per
    segment and epoch (windows clipped to the segment, so the two ends overlap a little) so
    sequence boundaries move between epochs, and drops windows without a labelled face.
    """
    parts = []
    for index, video in enumerate(videos):
        labelled = np.concatenate([[0], np.cumsum(np.isfinite(video.targets[:, 0]))])
        for first, stop in _segments(video.in_split):
            if video.static:
                starts = np.arange(first, stop)
                lengths = np.ones_like(starts)
            else:
                size = stop - first
                starts = np.arange(0, size, length)
                if rng is not None and size > length:
                    shifted = np.arange(-int(rng.integers(length)), size, length)
                    starts = np.unique(np.clip(shifted, 0, size - length))
                lengths = np.minimum(length, size - starts)
                starts = starts + first
            if rng is not None:
                keep = labelled[starts + lengths] > labelled[starts]
                starts, lengths = starts[keep], lengths[keep]
            parts.append((np.full(len(starts), index), starts, lengths))
    if not parts:
        return Windows(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
    return Windows(
        *(np.concatenate(column).astype(np.int64) for column in zip(*parts, strict=True))
    )


def _window_frames(videos: Sequence[Video], windows: Windows, sequence_length: int) -> np.ndarray:
    """The frame of each step of ``windows`` ``(N, T)``, -1 where a step holds no frame.

    Steps past a window's end (padding) hold none; a static window repeats its image T times
    and only the last step carries the frame (predictions take the last step).
    """
    steps = np.arange(sequence_length)
    frames = windows.start[:, None] + steps[None, :]
    frames[steps[None, :] >= windows.length[:, None]] = -1
    static = np.array([videos[index].static for index in windows.video], dtype=bool)
    frames[static, :] = -1
    frames[static, -1] = windows.start[static]
    return frames


def _gather(
    videos: Sequence[Video], windows: Windows, sequence_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crops ``(B, T, h, w, 3)`` uint8 of ``windows`` and the frame of each step ``(B, T)``
    (see :func:`_window_frames`); steps without a frame are zero crops, except that a static
    window repeats its image over all T steps.
    """
    crop_shape = videos[int(windows.video[0])].crops.shape[1:]
    x = np.zeros((len(windows), sequence_length, *crop_shape), dtype=np.uint8)
    for row, (index, start, length) in enumerate(
        zip(windows.video, windows.start, windows.length, strict=True)
    ):
        video = videos[index]
        if video.static:
            x[row] = video.crops[start]
        else:
            _read_crops(video.crops, start, x[row, :length])
    return x, _window_frames(videos, windows, sequence_length)


def _read_crops(crops: np.ndarray, start: int, out: np.ndarray) -> None:
    """``out[...] = crops[start : start + len(out)]``, from a memory-mapped file by ``pread``.

    Pages read through a map stay mapped in the process, and count in its RSS, until the kernel
    wants them back: over an epoch of the study's 15 GB of crops the loader's RSS would grow to
    the size of the page cache. ``pread`` copies the same bytes from the page cache without
    mapping them, so the process holds only its batches (bench/study_scale.py measures both).
    """
    if not (isinstance(crops, np.memmap) and isinstance(crops.base, mmap.mmap)):
        out[...] = crops[start : start + len(out)]  # in memory, or a view of a map
        return
    buffer = memoryview(out).cast("B")
    fd = os.open(crops.filename, os.O_RDONLY)
    try:
        count = os.preadv(fd, [buffer], crops.offset + start * out[0].nbytes)
    finally:
        os.close(fd)
    if count != len(buffer):
        raise Affect4kError(f"{crops.filename}: ends before frame {start + len(out) - 1}")


def _frame_targets(videos: Sequence[Video], windows: Windows, frames: np.ndarray) -> np.ndarray:
    """``(B, T, 2)`` float32 targets of gathered ``frames``; NaN for padding and masked frames."""
    y = np.full((*frames.shape, 2), np.nan, dtype=np.float32)
    for row, index in enumerate(windows.video):
        steps = frames[row] >= 0
        y[row, steps] = videos[index].targets[frames[row, steps]]
    return y


def _foreign_targets(
    videos: Sequence[Video], windows: Windows, y: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``y`` with each sequence's labels replaced by a random stretch of another video's trace.

    The negative control of the sync test. Whole traces swapped once between videos are not
    enough: short smooth traces of different videos correlate by chance (|r| ~ 0.5 over a
    10 s clip), and a fixed pairing lets a model learn that chance correlation. Drawing donor
    video and start afresh for every sequence of every epoch averages it out, while the labels
    keep their own smoothness and range. Frames masked in ``y`` (no face) stay masked.
    """
    steps = y.shape[1]
    foreign = np.full_like(y, np.nan)
    for row, receiver in enumerate(windows.video):
        donor = videos[rng.choice(np.setdiff1d(np.arange(len(videos)), [receiver]))]
        start = int(rng.integers(max(1, len(donor.targets) - steps + 1)))
        stretch = donor.targets[start : start + steps]
        foreign[row, : len(stretch)] = stretch
    return np.where(np.isnan(y), np.float32(np.nan), foreign)


def _distinct_video_batches(
    windows: Windows, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Group window indices into batches whose windows all come from different videos.

    Greedy: each batch takes one window from each of the ``batch_size`` videos with the most
    windows left (ties broken at random), which empties the videos evenly; once fewer videos
    than ``batch_size`` remain, the batch is completed with random windows of other videos.
    With fewer videos than ``batch_size`` in total distinctness is impossible and windows are
    simply chunked in random order, the last batch topped up with random windows.
    """
    order = rng.permutation(len(windows))
    video_ids = np.unique(windows.video)
    if len(video_ids) < batch_size:
        order = np.concatenate([order, rng.choice(len(order), -len(order) % batch_size)])
        return list(order.reshape(-1, batch_size))
    queues = {int(v): list(order[windows.video[order] == v]) for v in video_ids}
    batches = []
    while any(queues.values()):
        left = np.array([len(queues[int(v)]) for v in video_ids])
        ranked = video_ids[np.lexsort((rng.random(len(video_ids)), -left))]
        chosen = [int(v) for v in ranked[:batch_size] if queues[int(v)]]
        batch = [queues[v].pop() for v in chosen]
        fillers = rng.choice(np.setdiff1d(video_ids, chosen), batch_size - len(batch), False)
        for video in fillers:
            batch.append(int(rng.choice(np.flatnonzero(windows.video == video))))
        batches.append(np.array(batch))
    rng.shuffle(batches)
    return batches


class SequenceDataset(keras.utils.PyDataset):
    """Training batches ``(x uint8 (B, T, h, w, 3), y float32 (B, T, 2))`` for ``model.fit``.

    Epoch ``e``'s sequences are a pure function of ``(seed, e)``: a random grid offset per
    segment, windows in random order grouped by :func:`_distinct_video_batches`. An epoch has a
    fixed number of batches (``steps_per_epoch``, default: enough to cover epoch 0's windows
    once), so Keras sees a stable length; later epochs truncate or top up with repeats.
    The caller selects the epoch with :meth:`set_epoch` before each ``fit`` call (so a resumed
    run continues the sequence). Keras' epoch hooks are deliberately not used: Keras 3 also
    calls ``on_epoch_end`` when ``fit`` starts, and its worker threads start fetching before
    ``on_epoch_begin``, so neither marks an epoch boundary reliably.
    """

    def __init__(
        self,
        videos: Sequence[Video],
        *,
        sequence_length: int,
        batch_size: int,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        shuffle_labels: bool = False,
        workers: int = 1,
    ):
        super().__init__(workers=workers, use_multiprocessing=False)
        # Checked where the config enters (the schema, affect4k.config.settings), naming the key.
        assert sequence_length >= 1 and batch_size >= 1, (sequence_length, batch_size)
        assert steps_per_epoch is None or steps_per_epoch >= 1, steps_per_epoch
        self.videos = list(videos)
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.seed = seed
        if shuffle_labels and len(self.videos) < 2:
            raise Affect4kError("shuffle_labels needs at least 2 videos in the split")
        self.shuffle_labels = shuffle_labels
        _, first_batches = self._plan(0, None)
        if not first_batches:
            raise Affect4kError("no training sequence has a labelled face")
        self._num_batches = steps_per_epoch or len(first_batches)
        self.set_epoch(0)

    @property
    def num_batches(self) -> int:
        return self._num_batches

    def __len__(self) -> int:
        return self._num_batches

    def _plan(self, epoch: int, num_batches: int | None) -> tuple[Windows, list[np.ndarray]]:
        """Epoch ``epoch``'s windows and batches, cut or topped up to ``num_batches``."""
        rng = np.random.default_rng([self.seed, epoch])
        windows = _windows(self.videos, self.sequence_length, rng)
        if not len(windows):
            return windows, []
        batches = _distinct_video_batches(windows, self.batch_size, rng)
        if num_batches is not None:
            while len(batches) < num_batches:
                batches.append(batches[int(rng.integers(len(batches)))])
            batches = batches[:num_batches]
        return windows, batches

    def set_epoch(self, epoch: int) -> None:
        """Plan epoch ``epoch`` (0-based); call it before the ``fit`` that trains that epoch."""
        self._epoch_plan = self._plan(epoch, self._num_batches)
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        all_windows, batches = self._epoch_plan
        windows = all_windows.take(batches[index])
        x, frames = _gather(self.videos, windows, self.sequence_length)
        y = _frame_targets(self.videos, windows, frames)
        if self.shuffle_labels:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            y = _foreign_targets(self.videos, windows, y, rng)
        return x, y


@dataclass(frozen=True)
class EvalBatch:
    """``x`` crops, ``video`` index per row (-1 = padding row), ``frames`` per step (-1 = none)."""

    x: np.ndarray
    video: np.ndarray
    frames: np.ndarray


class EvalDataset:
    """Batches covering every in-split frame of every video exactly once, in a fixed order
    (training's per-epoch scores and the predict job alike).

    Sequences start at each segment's first frame; the last one of a segment is padded (its
    padding has frame -1 and is discarded) and the last batch is padded with empty rows, so
    every batch has the same shape and a jitted predict step compiles once. Iterating gathers
    the next batch on a thread while the caller runs the model on the current one.
    """

    def __init__(self, videos: Sequence[Video], *, sequence_length: int, batch_size: int):
        assert sequence_length >= 1 and batch_size >= 1, (sequence_length, batch_size)
        self.videos = list(videos)
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.windows = _windows(self.videos, sequence_length, rng=None)

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch_size)

    def batch(self, index: int) -> EvalBatch:
        """Batch ``index``: its crops, and the video and frames of each row."""
        rows = np.arange(
            index * self.batch_size, min((index + 1) * self.batch_size, len(self.windows))
        )
        part = self.windows.take(rows)
        x, frames = _gather(self.videos, part, self.sequence_length)
        pad = self.batch_size - len(rows)
        return EvalBatch(
            x=np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)),
            video=np.pad(part.video, (0, pad), constant_values=-1),
            frames=np.pad(frames, [(0, pad), (0, 0)], constant_values=-1),
        )

    def __iter__(self) -> Iterator[EvalBatch]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.batch, 0) if len(self) else None
            for index in range(len(self)):
                current = pending.result()
                if index + 1 < len(self):
                    pending = pool.submit(self.batch, index + 1)
                yield current
