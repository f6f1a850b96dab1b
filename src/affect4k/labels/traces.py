"""Raw annotation traces: the joystick tool's ``time_s,value`` CSV files, read and resampled.

A joystick tool writes one ``time_s,value`` CSV per annotator and dimension, sampled irregularly
(every ~20-60 ms with jitter), with valence and arousal recorded in separate passes and so on
different time stamps. Everything downstream works per frame (see the frame-index contract in
docs/design.md), so each trace is resampled onto ``t_f = f / CLIP_FPS``. Frames a trace does not
cover (late start, early end, a long pause in the recording) become NaN instead of being
extrapolated: NaN labels are excluded from training and from every metric, so a hole in the
annotation can never turn into an invented label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError

TRACE_HEADER = ("time_s", "value")
#: Latest time a trace may reach, in seconds (a day): a source longer than that is no video of
#: a study, and a time beyond it (a trace in microseconds, a corrupt line) would make the stages
#: that lay a trace on the frame grid allocate one frame per 40 ms up to it.
MAX_TRACE_S = 86_400.0

# Annotator names become file names and column names, so they must be plain identifiers.
_ANNOTATOR_RE = re.compile(r"[A-Za-z0-9_-]+")


def _line_error(path: Path, line: int, problem: str) -> Affect4kError:
    return Affect4kError(f"{path}, line {line}: {problem}")


def read_numeric_csv(path: Path, header: Sequence[str]) -> np.ndarray:
    """Rows of a small all-numeric CSV as a float array of shape ``(n_rows, len(header))``.

    The first line must be exactly ``header``; every later line must hold one finite number per
    column. Parsing is vectorised (pandas reads strings, numpy converts), and only when something
    is wrong is the offending 1-based line (header = line 1) located, so each error names the
    file and the line a user has to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"annotation file {path} does not exist")
    expected = ",".join(header)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            found = handle.readline().rstrip("\r\n")
        if found.replace(" ", "") != expected:
            raise _line_error(path, 1, f"header is {found!r}, expected {expected!r}")
        table = pd.read_csv(
            path,
            header=None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError as exc:
        raise Affect4kError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except pd.errors.ParserError:
        raise _field_count_error(path, len(header)) from None
    text = table.iloc[1:]
    values = text.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, copy=True)
    bad_rows, bad_cols = np.nonzero(~np.isfinite(values))
    if bad_rows.size:
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raw = text.iat[row, col].strip()
        kind = "empty value" if raw == "" else f"{raw!r} is not a finite number"
        raise _line_error(path, row + 2, f"{kind} in column {header[col]!r}")
    return values


def _field_count_error(path: Path, n_columns: int) -> Affect4kError:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            n_fields = line.count(",") + 1
            if n_fields > n_columns:
                problem = f"expected {n_columns} comma-separated values, got {n_fields}"
                return _line_error(path, number, f"{problem}: {line.rstrip()!r}")
    return Affect4kError(f"{path}: not a comma-separated table of {n_columns} columns")


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One annotator's trace as ``(times, values)``: seconds from the clip start, in [-1, 1].

    Refuses (naming file and line) what resampling would otherwise silently absorb: values
    outside [-1, 1], negative or non-increasing times, times beyond :data:`MAX_TRACE_S`, and
    traces of fewer than 2 samples.
    """
    data = read_numeric_csv(path, TRACE_HEADER)
    times, values = data[:, 0], data[:, 1]
    if len(times) < 2:
        raise Affect4kError(f"{path}: {len(times)} sample(s) after the header, need at least 2")
    checks = (
        (np.abs(values) > 1, lambda i: f"value {values[i]} is outside [-1, 1]"),
        (times < 0, lambda i: f"time {times[i]} s is negative"),
        (
            times > MAX_TRACE_S,
            lambda i: f"time {times[i]:g} s is beyond a day ({MAX_TRACE_S:g} s); times are seconds",
        ),
        (
            np.r_[False, np.diff(times) <= 0],
            lambda i: f"time {times[i]} s does not increase (previous line: {times[i - 1]} s)",
        ),
    )
    for bad, describe in checks:
        if bad.any():
            row = int(np.argmax(bad))
            raise _line_error(path, row + 2, describe(row))
    return times, values


def resample_trace(
    times: np.ndarray,
    values: np.ndarray,
    n_frames: int,
    *,
    fps: int = CLIP_FPS,
    max_gap_s: float,
    hold_end: bool = True,
) -> np.ndarray:
    """A trace's values at ``t_f = f / fps`` for ``f < n_frames``; NaN where it is not covered.

    Frames between two samples are linearly interpolated. A frame within ``max_gap_s`` before
    the first or after the last sample takes that sample's value (a joystick log usually starts
    a few ms after the clip does); a frame further out, or strictly inside a gap between samples
    longer than ``max_gap_s`` (the tool paused or dropped input), is NaN: masked, excluded from
    training and metrics, never silently extrapolated. ``hold_end=False`` drops the hold after
    the last sample: a trace shifted earlier by a reaction lag has nothing to say past it.
    """
    if n_frames < 0:
        raise Affect4kError(f"n_frames must be >= 0, got {n_frames}")
    if fps <= 0:
        raise Affect4kError(f"fps must be > 0, got {fps}")
    if max_gap_s < 0:
        raise Affect4kError(f"max_gap_s must be >= 0, got {max_gap_s}")
    if len(times) < 2 or len(times) != len(values):
        raise Affect4kError(
            f"times and values must have the same length >= 2, got {len(times)}, {len(values)}"
        )
    frame_times = np.arange(n_frames) / fps
    resampled = np.interp(frame_times, times, values)
    after = np.searchsorted(times, frame_times, side="right")  # first sample later than t_f
    inner = (after > 0) & (after < len(times))
    left = times[np.clip(after - 1, 0, len(times) - 1)]
    right = times[np.clip(after, 0, len(times) - 1)]
    in_long_gap = inner & (right - left > max_gap_s) & (frame_times > left)
    tail_s = max_gap_s if hold_end else 0.0
    uncovered = (frame_times < times[0] - max_gap_s) | (frame_times > times[-1] + tail_s)
    resampled[in_long_gap | uncovered] = np.nan
    return resampled


def check_annotators(annotators: Sequence[str]) -> None:
    if not annotators:
        raise Affect4kError("annotators: the list is empty")
    if len(set(annotators)) != len(annotators):
        raise Affect4kError(f"annotators: duplicate names in {list(annotators)}")
    for name in annotators:
        if not _ANNOTATOR_RE.fullmatch(name):
            raise Affect4kError(f"annotators: {name!r} must match {_ANNOTATOR_RE.pattern}")


#: First line of a trace file that says its annotator did not annotate this video in this
#: dimension; anything after it is a free-text note. A missing file stays an error (a file left
#: behind by mistake must not pass as a deliberate gap).
SKIPPED_MARKER = "skipped"


def is_skipped(path: Path) -> bool:
    """Whether the trace file at ``path`` is the explicit :data:`SKIPPED_MARKER`."""
    try:
        with Path(path).open(encoding="utf-8-sig") as handle:
            return handle.readline().strip() == SKIPPED_MARKER
    except (OSError, UnicodeDecodeError):
        return False  # read_trace reports what is wrong with it
