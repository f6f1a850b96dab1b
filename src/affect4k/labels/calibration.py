"""Annotator calibration: a short clip whose valence and arousal are known, traced once by each
annotator, gives their absolute reaction lag and their accuracy.

Traces alone fix only relative delays (:func:`affect4k.labels.fusion.estimate_lags`); against a
known signal the delay is absolute: the shift in ``[0, max_lag_s]`` that maximises the CCC of the
annotator's trace with the truth (:func:`affect4k.labels.fusion.lag_against_truth`), and that CCC
says how well they follow it. ``annotation.lag: measured`` shifts each annotator's traces by it.

The truth is a pair of smooth curves (:func:`truth`) defined here, so the clip is generated on
demand from the package alone (offline, deterministic) and never committed. The traces live in
``{annotations}/_calibration/{annotator}.{dimension}.csv`` (:func:`trace_path`): the same
format and time origin (the clip's start) as a video's traces, in a folder no video can own
(the workflow refuses a video named :data:`CALIBRATION_ID`), so no stage reads them as a
video's labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic
from affect4k.core.metrics import pearson
from affect4k.labels.fusion import MIN_TRACE_SD, lag_against_truth, shift_earlier
from affect4k.labels.traces import check_annotators, is_skipped, read_trace, resample_trace

log = logging.getLogger(__name__)

#: The calibration clip's id: its folder of traces, its page and its media name in the app.
CALIBRATION_ID = "_calibration"
DURATION_S = 24.0
FRAMES = int(DURATION_S * CLIP_FPS)
CALIBRATION_COLUMNS = ("annotator", "dimension", "lag_s", "ccc")
#: Each dimension's truth: (amplitude, period in s, phase) of its sines. Two incommensurate
#: periods each, none of them under max_lag_s's default of 5 s by much, so no shift but the
#: true one lines the curve up with itself; slow enough for a hand on the keys to follow.
_COMPONENTS = {
    "valence": ((0.55, 10.0, 0.0), (0.3, 4.3, 0.7)),
    "arousal": ((0.55, 8.0, 1.9), (0.3, 5.7, 0.3)),
}


def truth(dimension: str, times: np.ndarray) -> np.ndarray:
    """The calibration clip's ``dimension`` at ``times`` (seconds from its start), in [-1, 1]."""
    if dimension not in _COMPONENTS:
        raise Affect4kError(f"calibration: no dimension {dimension!r}, expected {DIMENSIONS}")
    times = np.asarray(times, np.float64)
    return sum(
        a * np.sin(2 * np.pi * times / period + phase)
        for a, period, phase in _COMPONENTS[dimension]
    )


def truth_frames(dimension: str) -> np.ndarray:
    """The truth on the clip's 25 fps frame grid (frame ``f`` at ``f / CLIP_FPS``)."""
    return truth(dimension, np.arange(FRAMES) / CLIP_FPS)


def trace_path(annotations: Path, annotator: str, dimension: str) -> Path:
    """Where ``annotator``'s calibration trace of ``dimension`` lives."""
    return Path(annotations) / CALIBRATION_ID / f"{annotator}.{dimension}.csv"


def measure(
    times: np.ndarray, values: np.ndarray, dimension: str, max_lag_s: float, max_gap_s: float
) -> tuple[float, float]:
    """An annotator's reaction lag (seconds, a whole number of frames) and accuracy (CCC with
    the truth at that lag) from their calibration trace of ``dimension``."""
    trace = resample_trace(times, values, FRAMES, max_gap_s=max_gap_s)
    lag, agreement = lag_against_truth(
        trace, truth_frames(dimension), int(round(max_lag_s * CLIP_FPS))
    )
    return lag / CLIP_FPS, agreement


def check_calibration(
    times: np.ndarray,
    values: np.ndarray,
    dimension: str,
    *,
    max_lag_s: float,
    max_gap_s: float,
    min_ccc: float,
) -> tuple[float, float]:
    """:func:`measure`, refusing a calibration that cannot be trusted: a trace that never moves
    (SD below :data:`affect4k.labels.fusion.MIN_TRACE_SD`; every shift scores CCC 0), one that
    follows the signal inverted (the shift with the largest |Pearson r| has r < 0: the best CCC is
    then at a shift that lines a trough up with a peak, and would be taken as a lag), and one whose
    CCC at its lag is below ``min_ccc`` (``annotation.min_calibration_ccc``). The message says what
    to do; the caller names the annotator and file."""
    trace = resample_trace(times, values, FRAMES, max_gap_s=max_gap_s)
    if not np.nanstd(trace) >= MIN_TRACE_SD:
        raise Affect4kError(
            f"the {dimension} calibration trace never moves (SD {np.nanstd(trace):.3f}): "
            "follow the clip's curve with the bar and save again"
        )
    known = truth_frames(dimension)
    r = [
        pearson(shift_earlier(trace, lag), known) for lag in range(round(max_lag_s * CLIP_FPS) + 1)
    ]
    strongest = r[int(np.nanargmax(np.abs(r)))]
    if strongest < 0:
        raise Affect4kError(
            f"the {dimension} calibration trace follows the clip's curve upside down (r "
            f"{strongest:.2f}): up is positive; trace it again"
        )
    lag_s, agreement = measure(times, values, dimension, max_lag_s, max_gap_s)
    if not agreement >= min_ccc:
        raise Affect4kError(
            f"the {dimension} calibration trace agrees with the clip's curve at CCC "
            f"{agreement:.2f}, below annotation.min_calibration_ccc {min_ccc:g}: trace it again, "
            "following the curve as closely as you can"
        )
    return lag_s, agreement


def calibration_table(
    annotations: Path,
    annotators: Sequence[str],
    out_csv: Path,
    *,
    max_lag_s: float = 5.0,
    max_gap_s: float = 0.5,
    min_ccc: float = 0.7,
) -> None:
    """The ``calibration`` stage: ``CALIBRATION_COLUMNS`` per annotator and dimension that has a
    calibration trace (none, not NaN, for one without; a ``skipped`` trace is refused: a
    calibration is traced, never skipped; so is one :func:`check_calibration` refuses, naming
    the annotator and file, since its lag would be applied to every video)."""
    check_annotators(annotators)
    rows = []
    for name in annotators:
        for dim in DIMENSIONS:
            path = trace_path(annotations, name, dim)
            if not path.exists():
                continue
            if is_skipped(path):
                raise Affect4kError(f"{path}: a calibration trace cannot be skipped; trace it")
            try:
                lag_s, agreement = check_calibration(
                    *read_trace(path),
                    dim,
                    max_lag_s=max_lag_s,
                    max_gap_s=max_gap_s,
                    min_ccc=min_ccc,
                )
            except Affect4kError as error:
                raise Affect4kError(f"{path} (annotator {name}): {error}") from None
            log.info(f"{name} {dim}: calibration lag {lag_s:.2f} s, CCC {agreement:.3f}")
            rows.append((name, dim, lag_s, agreement))
    table = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    write_atomic(out_csv, lambda tmp: table.to_csv(tmp, index=False))


def read_calibration(path: Path, max_lag_s: float) -> pd.DataFrame:
    """The calibration stage's table, refused naming ``path`` if unreadable or malformed, or if
    a lag is not a finite number in ``[0, max_lag_s]`` or an accuracy not a finite CCC (a
    hand-edited ``nan`` or ``-2`` would otherwise shift every trace by it)."""
    try:
        table = pd.read_csv(path, dtype={"annotator": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise Affect4kError(f"cannot read the calibration table {path} ({exc})") from None
    if list(table.columns) != list(CALIBRATION_COLUMNS):
        raise Affect4kError(f"{path}: columns must be {', '.join(CALIBRATION_COLUMNS)}")
    lags = pd.to_numeric(table["lag_s"], errors="coerce").to_numpy(np.float64)
    accuracy = pd.to_numeric(table["ccc"], errors="coerce").to_numpy(np.float64)
    bad = ~(np.isfinite(lags) & (lags >= 0) & (lags <= max_lag_s))
    bad |= ~(np.isfinite(accuracy) & (np.abs(accuracy) <= 1))
    if bad.any():
        row = table.iloc[int(np.flatnonzero(bad)[0])]
        raise Affect4kError(
            f"{path}: annotator {row['annotator']}, {row['dimension']}: lag_s {row['lag_s']} "
            f"and ccc {row['ccc']} must be finite, the lag within [0, {max_lag_s:g}] s "
            "(annotation.max_lag_s) and the CCC within [-1, 1]; run the calibration stage "
            "again instead of editing the table"
        )
    return table.assign(lag_s=lags, ccc=accuracy)


def missing_traces(annotations: Path, annotators: Sequence[str]) -> list[Path]:
    """The calibration traces ``annotation.lag: measured`` needs and does not find."""
    paths = [trace_path(annotations, a, d) for a in annotators for d in DIMENSIONS]
    return [path for path in paths if not path.exists()]
