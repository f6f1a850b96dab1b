"""The ``annotate`` stage: one video's raw traces -> per-frame labels on its 25 fps grid.

Each annotator's trace (:mod:`affect4k.traces`) is resampled onto the clip's frames and the
annotators are averaged there, frame by frame, only where enough of them cover the frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.errors import Affect4kError
from affect4k.files import read_table, write_atomic
from affect4k.layout import DIMENSIONS
from affect4k.traces import (
    SKIPPED_MARKER,
    check_annotators,
    is_skipped,
    read_trace,
    resample_trace,
)

log = logging.getLogger(__name__)


def _warn_unlisted(trace_dir: Path, expected: set[str], video_id: str) -> None:
    """Warn about CSV files in ``trace_dir`` that no listed annotator owns (an annotator missing
    from the config, a misspelt dimension): they would otherwise be ignored without a word.
    ``affect4k annotate``'s unfinished ``*.draft.csv`` files are meant to be ignored."""
    try:
        found = {path.name for path in Path(trace_dir).glob("*.csv")}
        found = {name for name in found if not name.endswith(".draft.csv")}
    except OSError:
        return
    unlisted = sorted(found - expected)
    if unlisted:
        log.warning(
            f"video {video_id}: {trace_dir} holds trace files of no listed annotator, ignored: "
            f"{', '.join(unlisted)} (the config's annotators read "
            f"{', '.join(sorted(expected))})"
        )


def _annotator_trace(
    path: Path, n_frames: int, max_gap_s: float, video_id: str, source_start_s: float | None
) -> np.ndarray:
    """Resample one trace file, warning about every frame it leaves unlabelled; all NaN for an
    annotator who skipped the video (:data:`SKIPPED_MARKER`).

    A trace timed against the clip that runs past the clip's end by more than ``max_gap_s`` was
    timed against something else (the untrimmed source, or written in milliseconds): refused,
    since its labels would land on the wrong frames. A trace timed against the source
    (``source_start_s``, the clip's start in it) is shifted by that start and may run on past
    the clip's end, where the source was trimmed.
    """
    if is_skipped(path):
        log.warning(f"{path} (video {video_id}): marked {SKIPPED_MARKER}, no labels from it")
        return np.full(n_frames, np.nan)
    times, values = read_trace(path)
    clip_s = n_frames / CLIP_FPS
    if source_start_s is not None:
        times = times - source_start_s
    elif times[-1] > clip_s + max_gap_s:
        hint = (
            "written in milliseconds? times must be seconds"
            if times[-1] > 100 * clip_s
            else "timed against the untrimmed source? set annotation.time_origin: source"
        )
        raise Affect4kError(
            f"{path} (video {video_id}): the trace runs to {times[-1]:.2f} s but the clip "
            f"lasts {clip_s:.2f} s; {hint}"
        )
    trace = resample_trace(times, values, n_frames, max_gap_s=max_gap_s)
    masked = int(np.isnan(trace).sum())
    if masked:
        tail = int((np.arange(n_frames) / CLIP_FPS > times[-1] + max_gap_s).sum())
        log.warning(
            f"{path} (video {video_id}): masked {masked} of {n_frames} frames: {tail} after the "
            f"trace ends at {times[-1]:.2f} s (the clip lasts {clip_s:.2f} s), "
            f"{masked - tail} in gaps longer than {max_gap_s} s or before its first sample"
        )
    return trace


def annotate_video(
    video_id: str,
    faces_parquet: Path,
    trace_dir: Path,
    annotators: Sequence[str],
    out_path: Path,
    *,
    max_gap_s: float = 0.5,
    min_annotators: int | None = None,
    source_start_s: float | None = None,
) -> None:
    """Write one video's per-frame labels: one row per row of its faces table.

    Trace times are seconds from the clip's start, or, given ``source_start_s`` (the clip's
    start in its source), seconds from the untrimmed source's start.

    Columns: ``video, frame, time_s, face, valence, arousal`` and each annotator's resampled
    trace as ``valence_<annotator>`` / ``arousal_<annotator>``. ``valence`` and ``arousal`` are
    the mean over the annotators that cover the frame, NaN where fewer than ``min_annotators``
    do, so the label of a frame never silently rests on a minority. By default that is every
    annotator who did not skip the video: a trace file whose first line is ``skipped`` says so
    explicitly (its column is all NaN), and a video skipped by everyone is refused, as is a
    video with no labelled frame in either dimension.
    """
    check_annotators(annotators)
    if min_annotators is not None and not 1 <= min_annotators <= len(annotators):
        raise Affect4kError(
            f"min_annotators must be between 1 and {len(annotators)}, got {min_annotators}"
        )
    faces = read_table(faces_parquet, ("frame", "time_s", "face"), f"video {video_id}")
    n_frames = len(faces)
    if not np.array_equal(faces["frame"].to_numpy(), np.arange(n_frames)):
        raise Affect4kError(f"video {video_id}: {faces_parquet} rows are not frames 0..n-1")
    table = pd.DataFrame(
        {
            "video": video_id,
            "frame": faces["frame"].to_numpy(),
            "time_s": faces["time_s"].to_numpy(),
            "face": faces["face"].to_numpy(),
        }
    )
    files = {
        (dim, name): Path(trace_dir) / f"{name}.{dim}.csv"
        for dim in DIMENSIONS
        for name in annotators
    }
    _warn_unlisted(Path(trace_dir), {path.name for path in files.values()}, video_id)
    traces = {
        key: _annotator_trace(path, n_frames, max_gap_s, video_id, source_start_s)
        for key, path in files.items()
    }
    for dim in DIMENSIONS:
        skipped = [name for name in annotators if is_skipped(files[dim, name])]
        if len(skipped) == len(annotators):
            raise Affect4kError(
                f"video {video_id}: every annotator's {dim} trace in {trace_dir} is marked "
                f"{SKIPPED_MARKER}; drop the video or annotate it"
            )
        needed = min_annotators or len(annotators) - len(skipped)
        stack = np.stack([traces[dim, name] for name in annotators])
        covered = np.isfinite(stack)
        count = covered.sum(axis=0)
        mean = np.where(covered, stack, 0.0).sum(axis=0) / np.maximum(count, 1)
        table[dim] = np.where(count >= needed, mean, np.nan)
        if not np.isfinite(table[dim]).any():
            note = f" ({', '.join(skipped)} skipped it)" if skipped else ""
            raise Affect4kError(
                f"video {video_id}: no frame has a {dim} label from at least "
                f"{needed} annotator(s) in {trace_dir}{note}"
            )
    for (dim, name), trace in traces.items():
        table[f"{dim}_{name}"] = trace
    write_atomic(out_path, lambda tmp: table.to_parquet(tmp, index=False))
