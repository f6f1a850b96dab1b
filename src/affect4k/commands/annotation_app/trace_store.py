"""Where the app keeps one annotator's traces, and how it checks what the page sends.

A finished trace is ``{annotations}/{video}/{annotator}.{dimension}.csv``, the file the
``annotate`` stage reads, so saving one reruns that video's ``annotate`` job. An unfinished one
is a draft next to it, ``{annotator}.{dimension}.draft.csv``, which no stage reads: a half-done
trace never reaches the database, yet the annotator can close the page and resume. Annotator
names cannot hold a ``.``, so a draft never shadows another annotator's trace.

Trace times in these files count from the origin the config's ``annotation.time_origin`` names
(the clip's first frame, or the untrimmed source's start, ``offset_s`` seconds earlier), as the
``annotate`` stage reads them; the page always works in clip time, so the conversion happens
here and nowhere else. A file whose first line is ``skipped`` is an annotator's explicit "not
annotated" (:data:`affect4k.labels.traces.SKIPPED_MARKER`): no trace to resume or to compare.

Writers hold an exclusive ``flock`` on the video's trace folder while they check the version
and write, so two servers (or two tabs) never interleave: when a write clears the temp files
an earlier write of the same trace left behind, that writer is gone.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.config.video_list import VIDEO_ID_PATTERN
from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic
from affect4k.labels.database import agreement_table
from affect4k.labels.traces import TRACE_HEADER, is_skipped, read_trace, resample_trace

#: Decimals written: 0.1 ms in time (frame times f / 25 are exact) and 1e-4 in value.
TIME_DECIMALS = 4
VALUE_DECIMALS = 4
#: Longest wait for a video's write lock, in seconds.
LOCK_TIMEOUT_S = 10.0


def check_video_id(video_id: str) -> str:
    """``video_id`` if it is one plain file name (the manifest's rule), else an error."""
    if not re.fullmatch(VIDEO_ID_PATTERN, video_id):
        raise Affect4kError(f"video id {video_id!r} may only use letters, digits, '_' and '-'")
    return video_id


def check_dimension(dimension: str) -> str:
    """``dimension`` if it is valence or arousal: it becomes part of a file name."""
    if dimension not in DIMENSIONS:
        raise Affect4kError(f"dimension {dimension!r} must be one of {', '.join(DIMENSIONS)}")
    return dimension


@dataclass(frozen=True)
class TraceFiles:
    """The finished trace and the draft of one (video, annotator, dimension)."""

    final: Path
    draft: Path

    @classmethod
    def of(cls, annotations: Path, video_id: str, annotator: str, dimension: str) -> TraceFiles:
        """The files under ``annotations``, after checking the id and dimension they embed."""
        folder = Path(annotations) / check_video_id(video_id)
        stem = f"{annotator}.{check_dimension(dimension)}"
        return cls(final=folder / f"{stem}.csv", draft=folder / f"{stem}.draft.csv")

    def status(self) -> dict[str, bool]:
        """``done``: the pipeline has this annotator's trace; ``draft``: unsaved-as-done work;
        ``skipped``: the finished file says the annotator skipped the video."""
        skipped = is_skipped(self.final)
        return {
            "done": self.final.is_file() and not skipped,
            "draft": self.draft.is_file(),
            "skipped": skipped,
        }

    def resumable(self) -> Path | None:
        """The trace to continue from: the draft if there is one, else the finished trace
        (unless it is the skipped marker, which holds no trace)."""
        if self.draft.is_file():
            return self.draft
        if self.final.is_file() and not is_skipped(self.final):
            return self.final
        return None

    def version(self) -> str:
        """A digest of the trace and the draft as they are on disk: a page sends back the
        version it loaded, so a save from a tab that missed a later save is refused."""
        digest = hashlib.sha256()
        for path in (self.final, self.draft):
            try:
                digest.update(b"1" + path.read_bytes() + b"\0")
            except FileNotFoundError:
                digest.update(b"0")
        return digest.hexdigest()[:16]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the video folder's write lock (``flock`` on the folder itself, so no lock file
        is left among the traces); other threads and processes wait, at most
        :data:`LOCK_TIMEOUT_S` (a save holds it for milliseconds: a lock held longer is a stuck
        process, and the request says so instead of hanging)."""
        folder = self.final.parent
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        timeout_s = LOCK_TIMEOUT_S
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TraceBusy(
                            f"{folder} is locked by another process for more than "
                            f"{timeout_s:g} s (a stuck save?); try again, or end that process"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(descriptor)  # releases the lock


class StaleTrace(Affect4kError):
    """A save based on a version of the trace that another save has replaced since."""


class TraceBusy(Affect4kError):
    """A video's traces stayed locked by another writer for longer than a save takes."""


def trace_from_payload(payload: object, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``(times, values)`` of a trace the page sent as ``{"time_s": [...], "value": [...]}``.

    Refused unless it is what :func:`affect4k.labels.traces.read_trace` will accept once written:
    at least 2 samples, finite, values in [-1, 1], times strictly increasing (after rounding to
    what is written) and within the clip (``duration_s``, plus one frame).
    """
    if not isinstance(payload, dict):
        raise Affect4kError("the trace must be a JSON object with time_s and value lists")
    times, values = payload.get("time_s"), payload.get("value")
    if not isinstance(times, list) or not isinstance(values, list):
        raise Affect4kError("the trace needs lists time_s and value")
    if len(times) != len(values):
        raise Affect4kError(f"time_s has {len(times)} entries but value has {len(values)}")
    if len(times) < 2:
        raise Affect4kError("the trace has fewer than 2 samples: play the video to annotate it")
    numbers = [
        x for x in (*times, *values) if isinstance(x, int | float) and not isinstance(x, bool)
    ]
    if len(numbers) != 2 * len(times) or not all(math.isfinite(x) for x in numbers):
        raise Affect4kError("time_s and value may only hold finite numbers")
    time_s = np.round(np.asarray(times, np.float64), TIME_DECIMALS)
    value = np.round(np.asarray(values, np.float64), VALUE_DECIMALS)
    if np.abs(value).max() > 1:
        raise Affect4kError(f"value {value[np.argmax(np.abs(value))]} is outside [-1, 1]")
    latest = duration_s + 1 / CLIP_FPS
    if time_s[0] < 0 or time_s[-1] > latest:
        raise Affect4kError(f"times must lie within the clip, 0 to {duration_s:.2f} s")
    if (np.diff(time_s) <= 0).any():
        raise Affect4kError("time_s must increase strictly from sample to sample")
    return time_s, value


def uncovered_frames(times: np.ndarray, n_frames: int, max_gap_s: float) -> np.ndarray:
    """Frames the ``annotate`` stage would leave without this trace's value (NaN)."""
    resampled = resample_trace(times, np.zeros_like(times), n_frames, max_gap_s=max_gap_s)
    return np.flatnonzero(np.isnan(resampled))


def write_trace(path: Path, times: np.ndarray, values: np.ndarray) -> None:
    """Write ``time_s,value`` atomically, refusing a file the ``annotate`` stage would refuse."""

    def write(tmp: Path) -> None:
        lines = [",".join(TRACE_HEADER)]
        lines += [
            f"{t:.{TIME_DECIMALS}f},{v:.{VALUE_DECIMALS}f}"
            for t, v in zip(times, values, strict=True)
        ]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        read_trace(tmp)

    write_atomic(path, write)


def framewise(
    path: Path, n_frames: int, max_gap_s: float, offset_s: float = 0.0
) -> list[float | None]:
    """A saved trace on the clip's frame grid, for resuming: ``None`` where not covered.

    Resampled as the ``annotate`` stage does (times minus ``offset_s``, the clip's start in the
    files' time origin), except that no frame before the first sample or after the last counts
    as annotated: on the page such a frame would look played when it was not, and saving would
    then write it as a real sample.
    """
    times, values = read_trace(path)
    times = times - offset_s
    resampled = resample_trace(times, values, n_frames, max_gap_s=max_gap_s)
    frame_times = np.arange(n_frames) / CLIP_FPS
    resampled[(frame_times < times[0] - 1e-9) | (frame_times > times[-1] + 1e-9)] = np.nan
    return [None if math.isnan(x) else round(float(x), VALUE_DECIMALS) for x in resampled]


def video_columns(
    trace_dir: Path,
    annotators: Sequence[str],
    n_frames: int,
    max_gap_s: float,
    offset_s: float = 0.0,
) -> pd.DataFrame:
    """One video's finished traces as the ``annotate`` stage resamples them (times minus
    ``offset_s``), in the database's ``{dimension}_{annotator}`` columns; NaN for an annotator
    without a finished trace or who skipped the video."""
    columns = {}
    for dimension in DIMENSIONS:
        for name in annotators:
            path = Path(trace_dir) / f"{name}.{dimension}.csv"
            if path.is_file() and not is_skipped(path):
                times, values = read_trace(path)
                column = resample_trace(times - offset_s, values, n_frames, max_gap_s=max_gap_s)
            else:
                column = np.full(n_frames, np.nan)
            columns[f"{dimension}_{name}"] = column
    return pd.DataFrame(columns)


def pooled_agreement(videos: Sequence[pd.DataFrame], annotators: Sequence[str]) -> pd.DataFrame:
    """The ``database`` stage's agreement table over ``videos`` (from :func:`video_columns`):
    one video alone, or every video's frames pooled as in ``agreement.csv``."""
    return agreement_table(pd.concat(videos, ignore_index=True), annotators)
