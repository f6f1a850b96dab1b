"""The ``annotate`` stage: one video's raw traces -> per-frame labels on its 25 fps grid, and
the ``lags`` stage before it: every annotator's reaction lag, estimated from all raw traces.

Each annotator's trace (:mod:`affect4k.labels.traces`) is shifted earlier by the annotator's lag
(``annotation.lag``: none, a fixed number of seconds, the ``lags`` stage's estimate, or the
lag measured on the calibration clip, :mod:`affect4k.labels.calibration`),
resampled onto the clip's frames, and the annotators are averaged there, frame by frame, only
where enough of them cover the frame. The database stage may fuse them otherwise
(:mod:`affect4k.labels.fusion`); it finds both the shifted and the unshifted traces in the table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.labels.calibration import read_calibration
from affect4k.labels.fusion import (
    MIN_TRACE_SD,
    Screen,
    agreement_with_others,
    fuse,
    screen_annotators,
    shift_earlier,
)
from affect4k.labels.traces import (
    SKIPPED_MARKER,
    check_annotators,
    is_skipped,
    read_trace,
    resample_trace,
)

log = logging.getLogger(__name__)

#: Prefix of the per-annotator columns before lag compensation (``raw.valence_a1``): a dot
#: cannot be part of an annotator's name, so it never clashes with ``{dimension}_{annotator}``.
RAW_PREFIX = "raw."
LAG_COLUMNS = ("video", "annotator", "dimension", "lag_s")
#: Sweeps of the lag estimate before it gives up settling (it settles in a handful).
MAX_SWEEPS = 50
#: Per-video lags need this many times ``max_lag_s`` of frames two annotators cover: a shift
#: of ``max_lag_s`` on a shorter video compares a sliver of it.
MIN_OVERLAP_LAGS = 3
#: Folds of videos for the cross-fitted agreement: each fold's lags are fitted on the others.
CROSS_FOLDS = 5
#: Columns of the lags stage's agreement table: per dimension and fit (``in_sample``: the
#: lags applied, fitted on every video; ``cross_fitted``: each video under lags fitted on the
#: other folds), the mean over reliable annotators of their Pearson r with the others' mean.
LAG_AGREEMENT_COLUMNS = ("dimension", "fit", "pearson_r", "videos")
#: Share of a video's frames that the reaction lags may leave unlabelled (at its end, where the
#: most-delayed annotator's shifted trace stops) before the build output says so: on a 3-minute
#: clip a 2 s lag costs about 1 %, on a 10 s clip 20 %.
LAG_LOSS_WARNING = 0.05


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
    path: Path,
    n_frames: int,
    max_gap_s: float,
    video_id: str,
    source_start_s: float | None,
    lag_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample one trace file as it is and shifted ``lag_s`` earlier, warning about every frame
    the shifted one leaves unlabelled; all NaN for an annotator who skipped the video
    (:data:`SKIPPED_MARKER`). The shifted trace holds no value past its last sample: the frames
    its lag uncovers at the end stay NaN.

    A trace timed against the clip that runs past the clip's end by more than ``max_gap_s`` was
    timed against something else (the untrimmed source, or written in milliseconds): refused,
    since its labels would land on the wrong frames. A trace timed against the source
    (``source_start_s``, the clip's start in it) is shifted by that start and may run on past
    the clip's end, where the source was trimmed. Since the source's length is not known here,
    a source-timed trace written in milliseconds shows by its samples instead: a median interval
    longer than ``max_gap_s`` would leave most frames unlabelled, and is refused.
    """
    if is_skipped(path):
        log.warning(f"{path} (video {video_id}): marked {SKIPPED_MARKER}, no labels from it")
        return np.full(n_frames, np.nan), np.full(n_frames, np.nan)
    times, values = read_trace(path)
    clip_s = n_frames / CLIP_FPS
    if source_start_s is not None:
        times = times - source_start_s
        step = float(np.median(np.diff(times)))
        if step > max_gap_s:
            raise Affect4kError(
                f"{path} (video {video_id}): its samples are a median {step:g} s apart, more "
                f"than annotation.max_gap_s ({max_gap_s:g} s), so most frames would stay "
                "unlabelled; written in milliseconds? times must be seconds"
            )
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
    raw = resample_trace(times, values, n_frames, max_gap_s=max_gap_s)
    if lag_s:
        times = times - lag_s
        trace = resample_trace(times, values, n_frames, max_gap_s=max_gap_s, hold_end=False)
    else:
        trace = raw
    masked = int(np.isnan(trace).sum())
    if lag_s and masked == n_frames and not np.isnan(raw).all():
        log.warning(
            f"{path} (video {video_id}): the lag of {lag_s:g} s leaves this annotator no frame "
            f"of the video ({n_frames / CLIP_FPS:.2f} s, the trace ends at {times[-1]:.2f} s "
            "after the shift): no label from it here"
        )
    elif masked:
        end = times[-1] + (0.0 if lag_s else max_gap_s)
        tail = int((np.arange(n_frames) / CLIP_FPS > end).sum())
        shifted = f" shifted {lag_s:g} s earlier," if lag_s else ""
        # Frames only a lag uncovers at the end are expected: logged, not warned about.
        expected = lag_s and tail == masked and not np.isnan(raw).any()
        report = log.info if expected else log.warning
        report(
            f"{path} (video {video_id}): masked {masked} of {n_frames} frames: {tail} after the "
            f"trace{shifted} ends at {times[-1]:.2f} s (the clip lasts {clip_s:.2f} s), "
            f"{masked - tail} in gaps longer than {max_gap_s} s or before its first sample"
        )
    return raw, trace


def _warn_lag_loss(video_id: str, lost: Mapping[str, float], min_annotators: int | None) -> None:
    """One warning naming the video when the lags leave more than :data:`LAG_LOSS_WARNING` of
    its frames unlabelled that the unshifted traces label (``lost``: share per dimension)."""
    if max(lost.values()) <= LAG_LOSS_WARNING:
        return
    shares = " and ".join(f"{100 * share:.1f} % of its {dim}" for dim, share in lost.items())
    hint = (
        "annotation.min_annotators: null needs every annotator on a frame, a lower number "
        "keeps the frames the others cover"
        if min_annotators is None
        else "longer clips lose a smaller share"
    )
    log.warning(
        f"video {video_id}: the reaction lags leave {shares} frames unlabelled (the end, where "
        f"the most-delayed annotator's shifted trace stops); {hint}"
    )


def annotate_video(
    video_id: str,
    faces_parquet: Path,
    trace_dir: Path,
    annotators: Sequence[str],
    out_path: Path,
    *,
    max_gap_s: float,
    min_annotators: int | None = None,
    source_start_s: float | None = None,
    lags: Mapping[tuple[str, str], float] | None = None,
) -> None:
    """Write one video's per-frame labels: one row per row of its faces table.

    Trace times are seconds from the clip's start, or, given ``source_start_s`` (the clip's
    start in its source), seconds from the untrimmed source's start. ``lags`` maps
    ``(dimension, annotator)`` to the seconds that annotator's trace is shifted earlier by
    (0 where it is not given).

    Columns: ``video, frame, time_s, face, valence, arousal``, each annotator's resampled,
    lag-compensated trace as ``valence_<annotator>`` / ``arousal_<annotator>`` and the same
    before the shift as ``raw.valence_<annotator>`` / ``raw.arousal_<annotator>``. ``valence``
    and ``arousal`` are the mean over the annotators that cover the frame, NaN where fewer than
    ``min_annotators`` do, so the label of a frame never silently rests on a minority. By
    default that is every annotator who did not skip the video: a trace file whose first line
    is ``skipped`` says so explicitly (its column is all NaN), and a video skipped by everyone
    is refused, as is a video with no labelled frame in either dimension.
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
    lags = lags or {}
    both = {
        key: _annotator_trace(
            path, n_frames, max_gap_s, video_id, source_start_s, lags.get(key, 0.0)
        )
        for key, path in files.items()
    }
    traces = {key: shifted for key, (_, shifted) in both.items()}
    lost: dict[str, float] = {}
    for dim in DIMENSIONS:
        skipped = [name for name in annotators if is_skipped(files[dim, name])]
        if len(skipped) == len(annotators):
            raise Affect4kError(
                f"video {video_id}: every annotator's {dim} trace in {trace_dir} is marked "
                f"{SKIPPED_MARKER}; drop the video or annotate it"
            )
        needed = min_annotators or len(annotators) - len(skipped)
        stack = np.stack([traces[dim, name] for name in annotators])
        count = np.isfinite(stack).sum(axis=0)
        table[dim] = np.where(count >= needed, fuse(stack, "mean"), np.nan)
        unshifted = np.stack([both[dim, name][0] for name in annotators])
        lost[dim] = float(
            ((np.isfinite(unshifted).sum(axis=0) >= needed) & (count < needed)).mean()
        )
        if not np.isfinite(table[dim]).any():
            note = f" ({', '.join(skipped)} skipped it)" if skipped else ""
            raise Affect4kError(
                f"video {video_id}: no frame has a {dim} label from at least "
                f"{needed} annotator(s) in {trace_dir}{note}"
            )
    _warn_lag_loss(video_id, lost, min_annotators)
    for (dim, name), trace in traces.items():
        table[f"{dim}_{name}"] = trace
    for (dim, name), (raw, _) in both.items():
        table[f"{RAW_PREFIX}{dim}_{name}"] = raw
    write_atomic(out_path, lambda tmp: table.to_parquet(tmp, index=False))


def lag_table(
    setting: str | float,
    lags_csv: Path | None,
    videos: Sequence[str],
    annotators: Sequence[str],
    calibration_csv: Path | None = None,
    *,
    max_lag_s: float | None = None,
) -> pd.DataFrame:
    """The lag applied to each ``(video, annotator, dimension)``: ``LAG_COLUMNS`` rows.

    ``setting`` is ``annotation.lag``: ``none`` (0 s), a number of seconds for everyone,
    ``estimate``, whose lags are read from ``lags_csv`` (the ``lags`` stage's output), or
    ``measured``, whose lags are each annotator's on the calibration clip, read from
    ``calibration_csv`` (the ``calibration`` stage's output, its lags checked against
    ``max_lag_s``) and the same on every video. The table read must hold every row asked for.
    """
    keys = [(v, a, d) for v in videos for a in annotators for d in DIMENSIONS]
    if setting not in ("estimate", "measured"):
        lag = 0.0 if setting == "none" else float(setting)
        return pd.DataFrame([(*key, lag) for key in keys], columns=list(LAG_COLUMNS))
    if setting == "measured":
        if calibration_csv is None:
            raise Affect4kError(
                "annotation.lag: measured needs the calibration table (results/calibration.csv)"
            )
        if max_lag_s is None:
            raise Affect4kError("annotation.lag: measured needs annotation.max_lag_s")
        measured = read_calibration(calibration_csv, max_lag_s)
        measured = measured.set_index(["annotator", "dimension"])
        missing = [key for key in keys if key[1:] not in measured.index]
        if missing:
            raise Affect4kError(
                f"{calibration_csv} has no calibration lag for annotator, dimension "
                f"{missing[0][1:]}: trace the calibration clip in affect4k annotate"
            )
        return pd.DataFrame(
            [(*key, float(measured.loc[key[1:], "lag_s"])) for key in keys],
            columns=list(LAG_COLUMNS),
        )
    if lags_csv is None:
        raise Affect4kError("annotation.lag: estimate needs the lags table (results/lags.csv)")
    try:
        table = pd.read_csv(lags_csv, dtype={"video": str, "annotator": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise Affect4kError(f"cannot read the lags table {lags_csv} ({exc})") from None
    if list(table.columns) != list(LAG_COLUMNS):
        raise Affect4kError(f"{lags_csv}: columns must be {', '.join(LAG_COLUMNS)}")
    indexed = table.set_index(["video", "annotator", "dimension"])["lag_s"]
    missing = [key for key in keys if key not in indexed.index]
    if missing:
        raise Affect4kError(f"{lags_csv} has no lag for video, annotator, dimension {missing[0]}")
    return pd.DataFrame([(*key, float(indexed[key])) for key in keys], columns=list(LAG_COLUMNS))


def _trace_grid(path: Path, max_gap_s: float) -> np.ndarray | None:
    """A raw trace on the 25 fps grid of its own time axis (None for a skipped one)."""
    if is_skipped(path):
        return None
    times, values = read_trace(path)
    return resample_trace(times, values, int(times[-1] * CLIP_FPS) + 1, max_gap_s=max_gap_s)


def _warn_screen(screen: Screen, annotators: Sequence[str], where: str, min_r: float) -> None:
    """Name the annotators the lag screen left out
    (:func:`affect4k.labels.fusion.screen_annotators`).
    """
    constant = screen.named("constant", annotators)
    if constant:
        log.warning(
            f"{where}: {', '.join(constant)} never moved the bar (SD < {MIN_TRACE_SD}): left "
            "out of the lags and of fusion"
        )
    unreliable = screen.named("unreliable", annotators)
    if unreliable:
        log.warning(
            f"{where}: {', '.join(unreliable)} correlate at or below 0, or below "
            f"annotation.min_annotator_r {min_r:g}, with the others' mean at every lag: left "
            "out of the reference and the zero anchor, and of fusion unless "
            "annotation.keep_unreliable"
        )


def _log_lags(fit: Screen, annotators: Sequence[str], dim: str, where: str) -> None:
    """Log one estimate's lags, warning if its sweeps did not settle."""
    if fit.sweeps > MAX_SWEEPS:
        log.warning(f"{dim} lags over {where} did not settle; the last estimate is kept")
    lags = ", ".join(
        f"{a} {lag / CLIP_FPS:.2f}" for a, lag in zip(annotators, fit.lags, strict=True)
    )
    log.info(f"{dim} lags over {where} (s): {lags}")


def _agreement(stacks: Sequence[np.ndarray], lags: Sequence[np.ndarray], kept: np.ndarray) -> float:
    """Mean over the ``kept`` annotators of their Pearson r with the others' mean (kept ones
    only), pooled over videos, each video's traces shifted by its own ``lags``."""
    aligned = [
        np.stack([shift_earlier(stack[row], int(lag[row])) for row in np.flatnonzero(kept)])
        for stack, lag in zip(stacks, lags, strict=True)
    ]
    return float(np.nanmean(agreement_with_others(aligned)[0])) if kept.sum() >= 2 else np.nan


def _cross_fitted(stacks: Sequence[np.ndarray], pooled: Screen, max_lag: int) -> list:
    """Each video's lags fitted on the other folds of videos (:data:`CROSS_FOLDS`), with the
    pooled reference: what agreement after compensation is worth on data the lags never saw."""
    folds = np.arange(len(stacks)) % min(CROSS_FOLDS, len(stacks))
    lags: list = [None] * len(stacks)
    for fold in np.unique(folds):
        rest = [stack for stack, f in zip(stacks, folds, strict=True) if f != fold]
        fit = screen_annotators(
            rest, max_lag, 0.0, max_sweeps=MAX_SWEEPS, reference=pooled.reference
        )
        for index in np.flatnonzero(folds == fold):
            lags[index] = fit.lags
    return lags


def estimate_annotation_lags(
    trace_dirs: Mapping[str, Path],
    annotators: Sequence[str],
    out_csv: Path,
    *,
    max_lag_s: float,
    max_gap_s: float,
    per_video: bool,
    min_r: float = 0.2,
    out_agreement: Path | None = None,
) -> None:
    """The ``lags`` stage: each annotator's reaction lag per dimension, from the raw traces.

    ``trace_dirs`` maps each video to its folder of traces. The traces are put on the 25 fps
    grid of their own time axis (a lag is relative, so where they count from does not matter)
    and :func:`affect4k.labels.fusion.screen_annotators` finds the lags in whole frames, relative to
    the least-delayed reliable annotator (Pearson r with the others' mean above ``min_r``) and
    at most ``max_lag_s``, pooled over all videos or, with ``per_video``, for each video alone
    (the reliable annotators judged pooled, the others keeping their pooled lag). Constant
    traces and unreliable annotators are named in a warning. A video on which fewer
    than :data:`MIN_OVERLAP_LAGS` times ``max_lag_s`` of frames are covered by two annotators
    cannot show a lag of ``max_lag_s``: with ``per_video`` it gets the pooled lags, with a
    warning. Writes ``video, annotator, dimension, lag_s`` per video (pooled lags repeat on
    every video's rows), and to ``out_agreement`` (:data:`LAG_AGREEMENT_COLUMNS`) the
    agreement after compensation twice: under the lags applied, fitted to maximise it, which
    is optimistic, and cross-fitted, each video under lags fitted on the other videos.
    """
    check_annotators(annotators)
    if not trace_dirs:
        raise Affect4kError("lags: no video given")
    max_lag = int(round(max_lag_s * CLIP_FPS))
    rows, agreement = [], []
    for dim in DIMENSIONS:
        stacks = {}
        for video, trace_dir in trace_dirs.items():
            grids = [_trace_grid(Path(trace_dir) / f"{a}.{dim}.csv", max_gap_s) for a in annotators]
            length = max((len(g) for g in grids if g is not None), default=0)
            stack = np.full((len(annotators), length), np.nan)
            for row, grid in enumerate(grids):
                if grid is not None:
                    stack[row, : len(grid)] = grid
            stacks[video] = stack
        pooled = screen_annotators(list(stacks.values()), max_lag, min_r, max_sweeps=MAX_SWEEPS)
        _warn_screen(pooled, annotators, f"{dim} lags over {len(stacks)} video(s)", min_r)
        for video, flat in zip(stacks, pooled.constant, strict=True):
            partly = [
                a
                for a, f, s in zip(annotators, flat, pooled.status, strict=True)
                if f and s != "constant"
            ]
            if partly:
                log.warning(
                    f"video {video}: the {dim} trace of {', '.join(partly)} never moves there "
                    f"(SD < {MIN_TRACE_SD}): left out of its lags and its fusion"
                )
        _log_lags(pooled, annotators, dim, f"{len(stacks)} video(s)")
        fits = {video: pooled for video in stacks}
        if per_video:
            for video, stack in stacks.items():
                overlap = int((np.isfinite(stack).sum(axis=0) >= 2).sum())
                if overlap < MIN_OVERLAP_LAGS * max_lag:
                    log.warning(
                        f"video {video}: {dim} lags per video need {MIN_OVERLAP_LAGS} x "
                        f"max_lag_s ({MIN_OVERLAP_LAGS * max_lag_s:g} s) of frames two "
                        f"annotators cover, it has {overlap / CLIP_FPS:.1f} s: the lags pooled "
                        "over all videos are used there"
                    )
                    continue
                own = screen_annotators(
                    [stack], max_lag, min_r, max_sweeps=MAX_SWEEPS, reference=pooled.reference
                )
                # Only the pooled reference gets a lag of its own: who is reliable is judged
                # pooled, and the others are left out or barely count.
                lags = np.where(pooled.reference, own.lags, pooled.lags)
                fits[video] = dataclasses.replace(own, lags=lags)
                _log_lags(fits[video], annotators, dim, f"video {video}")
        for video, fit in fits.items():
            for name, lag in zip(annotators, fit.lags, strict=True):
                rows.append((video, name, dim, lag / CLIP_FPS))
        if out_agreement is not None:
            # Constant traces left out, as the lags left them out.
            cleaned = [
                np.where(flat[:, None], np.nan, stack)
                for flat, stack in zip(pooled.constant, stacks.values(), strict=True)
            ]
            kept = pooled.kept()
            applied = _agreement(cleaned, [fit.lags for fit in fits.values()], kept)
            crossed = (
                _agreement(cleaned, _cross_fitted(cleaned, pooled, max_lag), kept)
                if len(stacks) > 1
                else np.nan
            )
            log.info(
                f"{dim} agreement after lag compensation (mean r with the others' mean): "
                f"{applied:.3f} under the lags applied, {crossed:.3f} cross-fitted (lags "
                "fitted on the other videos)"
            )
            agreement += [(dim, "in_sample", applied, len(stacks))]
            agreement += [(dim, "cross_fitted", crossed, len(stacks))]
    table = pd.DataFrame(rows, columns=list(LAG_COLUMNS))
    write_atomic(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    if out_agreement is not None:
        scores = pd.DataFrame(agreement, columns=list(LAG_AGREEMENT_COLUMNS))
        write_atomic(out_agreement, lambda tmp: scores.to_csv(tmp, index=False))
