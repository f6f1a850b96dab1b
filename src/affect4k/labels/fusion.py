"""Annotator lags, label fusion and reliability: the maths of the ``lags``, ``annotate`` and
``database`` stages, NumPy only.

Everything works on one dimension's traces already on the 25 fps frame grid: a *stack* is an
``(annotators, frames)`` array of one video, NaN where an annotator does not cover a frame (or
skipped the video), and pooled statistics take a sequence of stacks, one per video, so that no
statistic ever pairs the end of one video with the start of the next.

- **Lags** (:func:`estimate_lags`): annotators react late, each by their own delay (1-6 s are
  reported; Mariooryad & Busso, IEEE TAC 2015). A delay is found per annotator as the shift, in
  whole frames within ``[0, max_lag]``, that maximises the CCC of their trace with the mean of
  the *other* annotators (each shifted by their current estimate), repeated over all annotators
  until no estimate changes. Traces alone fix only relative delays, so the least-delayed
  annotator is put at 0. One bad annotator must not move everyone else's lag
  (:func:`screen_annotators`): a trace that never moves (a flat bar) is left out, and the
  reference each annotator is aligned to and the zero anchor come only from annotators whose
  correlation with the others' mean, at the lag that maximises its magnitude, passes
  ``annotation.min_annotator_r`` (a shift never turns an inverted annotator into a good one,
  since its best magnitude is at its true lag, with r < 0). Against a known truth (the
  annotation app's calibration clip) the absolute delay is the shift that maximises the CCC
  with it (:func:`lag_against_truth`).
- **Fusion** (:func:`fuse`): the plain mean (the study), the median, or an evaluator weighted
  estimator (:func:`ewe_weights`): each annotator weighted by the leave-one-out Pearson r of
  their trace with the mean of the others, clipped at 0. Grimm & Kroschel (ASRU 2005) weight by
  the correlation with the mean of *all* annotators (the annotator included) and do not clip;
  MuSe-Toolbox's EWE weights by each annotator's mean inter-rater agreement. Annotators the
  screen finds unreliable get no weight in any fusion unless ``annotation.keep_unreliable``.
- **Reliability**: Pearson r and CCC with the others' mean (:func:`agreement_with_others`) and
  Krippendorff's alpha for interval data (:func:`krippendorff_alpha`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affect4k.core.errors import Affect4kError
from affect4k.core.metrics import ccc, pearson

FUSIONS = ("mean", "ewe", "median")
#: A trace whose SD over a video is below this (values span [-1, 1]) never moved the bar
#: there: it says nothing about the signal, and every shift of it scores CCC 0 alike.
MIN_TRACE_SD = 0.02


def shift_earlier(trace: np.ndarray, frames: int) -> np.ndarray:
    """``trace`` moved ``frames`` frames earlier: frame ``f`` takes frame ``f + frames``; the
    frames at the end that nothing moves into are NaN, never extrapolated."""
    if frames < 0:
        raise Affect4kError(f"a lag must be >= 0 frames, got {frames}")
    shifted = np.full(trace.shape, np.nan)
    if frames < trace.shape[-1]:
        shifted[..., : trace.shape[-1] - frames] = trace[..., frames:]
    return shifted


def lag_against_truth(trace: np.ndarray, truth: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The shift in ``[0, max_lag]`` frames that maximises the CCC of ``trace`` shifted earlier
    (:func:`shift_earlier`) with ``truth``, and that CCC: an annotator's absolute reaction lag
    and accuracy on a clip whose signal is known. The earliest shift wins a tie."""
    if max_lag < 0:
        raise Affect4kError(f"max_lag must be >= 0 frames, got {max_lag}")
    trace, truth = np.asarray(trace, np.float64), np.asarray(truth, np.float64)
    scores = np.array([ccc(shift_earlier(trace, lag), truth) for lag in range(max_lag + 1)])
    if not np.isfinite(scores).any():
        raise Affect4kError("no shift of the trace has a defined CCC with the truth")
    best = int(np.nanargmax(scores))
    return best, float(scores[best])


def others_mean(stack: np.ndarray, index: int) -> np.ndarray:
    """Per frame, the mean of every annotator but ``index`` that covers it (NaN where none)."""
    others = np.delete(stack, index, axis=0)
    count = np.isfinite(others).sum(axis=0)
    total = np.where(np.isfinite(others), others, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _check_stacks(stacks: Sequence[np.ndarray]) -> int:
    """The number of annotators of ``stacks`` (all must be 2-D with the same first axis)."""
    if not stacks:
        raise Affect4kError("no video given")
    counts = {np.shape(stack)[0] if np.ndim(stack) == 2 else -1 for stack in stacks}
    if len(counts) != 1 or -1 in counts:
        raise Affect4kError("every video must be an (annotators, frames) array, same annotators")
    return counts.pop()


def estimate_lags(
    stacks: Sequence[np.ndarray], max_lag: int, *, max_sweeps: int = 50
) -> tuple[np.ndarray, int]:
    """Each annotator's delay in frames relative to the least-delayed one, pooled over videos.

    Coordinate ascent: annotator by annotator, the shift that maximises the pooled CCC of the
    shifted trace with the mean of the others (each shifted by its current estimate) is taken
    at once, among the shifts that keep every delay within ``max_lag`` frames of every other.
    No annotator is pinned while the sweeps run: pinning one at 0 makes the others creep
    towards it a fraction of a frame per sweep, and the integer search stops them short. After
    each sweep the smallest delay is subtracted; sweeps repeat until none changes, or until they
    come back to an earlier state (then the state of that cycle with the highest summed CCC is
    kept). Returns the delays (0 for an annotator without any trace) and the number of sweeps,
    ``max_sweeps + 1`` if they neither settled nor cycled.
    """
    count = _check_stacks(stacks)
    if max_lag < 0:
        raise Affect4kError(f"max_lag must be >= 0 frames, got {max_lag}")
    # Each video padded with 2 max_lag NaN frames on both sides, then concatenated: a shift by
    # L frames (|L| <= 2 max_lag while searching) is one gather at base + L, never into another
    # video.
    pad = 2 * max_lag
    lengths = [np.shape(stack)[1] for stack in stacks]
    padded = np.concatenate(
        [
            np.pad(np.asarray(s, np.float64), ((0, 0), (pad, pad)), constant_values=np.nan)
            for s in stacks
        ],
        axis=1,
    )
    starts = pad + np.cumsum([0] + [n + 2 * pad for n in lengths[:-1]])
    base = np.concatenate([start + np.arange(n) for start, n in zip(starts, lengths, strict=True)])
    present = np.flatnonzero(np.isfinite(padded).any(axis=1))
    # Whether each annotator traced each video at all, per frame of the layout: the reference
    # is taken only where every other annotator who traced the video covers the frame, so that
    # frames a shift uncovers at the ends do not change who the mean is of.
    traced = np.concatenate(
        [
            np.repeat(np.isfinite(s).any(axis=1)[:, None], n + 2 * pad, axis=1)
            for s, n in zip(stacks, lengths, strict=True)
        ],
        axis=1,
    )
    lags = np.zeros(count, dtype=int)
    if len(present) < 2:
        return lags, 1

    def scores(index: int, lags: np.ndarray, candidates: Sequence[int]) -> np.ndarray:
        """CCC of annotator ``index`` shifted by each candidate with the others' mean."""
        aligned = np.stack([padded[row, base + lags[row]] for row in range(count)])
        reference = others_mean(aligned, index)
        missing = np.delete(traced[:, base] & ~np.isfinite(aligned), index, axis=0)
        reference[missing.any(axis=0)] = np.nan
        return np.array([ccc(padded[index, base + lag], reference) for lag in candidates])

    # Each annotator chases a reference that moves with the others, so sweeps can cycle between
    # a few states instead of settling: then the state of the cycle where the annotators agree
    # best with the others' mean is taken.
    seen: dict[bytes, float] = {}
    for sweep in range(1, max_sweeps + 1):
        previous = lags.copy()
        for index in present:
            others = lags[present[present != index]]
            candidates = range(others.max() - max_lag, others.min() + max_lag + 1)
            found = scores(index, lags, candidates)
            if np.isfinite(found).any():
                lags[index] = candidates[int(np.nanargmax(found))]
            lags[present] -= lags[present].min()
        if np.array_equal(lags, previous):
            return lags, sweep
        key = lags.tobytes()
        if key in seen:
            cycle = list(seen)[list(seen).index(key) :]
            best = max(cycle, key=seen.__getitem__)
            return np.frombuffer(best, dtype=lags.dtype).copy(), sweep
        seen[key] = float(np.nansum([scores(index, lags, [lags[index]]) for index in present]))
    return lags, max_sweeps + 1


@dataclass(frozen=True)
class Screen:
    """What :func:`screen_annotators` found, one entry per annotator.

    ``lags``: delays in frames (0 for one without a usable trace); ``r``: Pearson r with the
    mean of the reference annotators other than itself, at the shift where its magnitude is
    largest (NaN where undefined);
    ``status``: ``ok``, ``constant`` (never moved the bar on any video it traced), ``absent``
    (no trace), or ``unreliable`` (r at or below 0, or below ``min_r``); ``reference``: who the
    reference and zero anchor were taken from; ``constant``: per video, the annotators whose
    trace there was near-constant and so left out; ``sweeps`` as :func:`estimate_lags`.
    """

    lags: np.ndarray
    r: np.ndarray
    status: tuple[str, ...]
    reference: np.ndarray
    constant: tuple[np.ndarray, ...]
    sweeps: int

    def kept(self, keep_unreliable: bool = False) -> np.ndarray:
        """Who takes part in fusion: ``ok`` annotators, and ``unreliable`` ones if kept."""
        allowed = ("ok", "unreliable") if keep_unreliable else ("ok",)
        return np.array([status in allowed for status in self.status])

    def named(self, status: str, annotators: Sequence[str]) -> list[str]:
        """The names of the annotators with ``status``, with their r where it is defined."""
        return [
            f"{name} (r {r:.2f})" if np.isfinite(r) else name
            for name, r, own in zip(annotators, self.r, self.status, strict=True)
            if own == status
        ]


def _reference_mean(stacks: Sequence[np.ndarray], rows: np.ndarray, lags: np.ndarray) -> list:
    """Per video, the frame-wise mean of annotators ``rows`` each shifted by its lag."""
    means = []
    for stack in stacks:
        aligned = np.stack([shift_earlier(stack[row], int(lags[row])) for row in rows])
        count = np.isfinite(aligned).sum(axis=0)
        total = np.where(np.isfinite(aligned), aligned, 0.0).sum(axis=0)
        means.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    return means


def _strongest_r(
    stacks: Sequence[np.ndarray], index: int, reference: list, shifts: range
) -> tuple[int, float]:
    """Among ``shifts`` (frames earlier; negative: later), the one with the largest |Pearson r|
    of annotator ``index`` with ``reference`` (pooled over videos), and that r, sign kept: an
    inverted annotator's strongest shift is its true lag, where r < 0 (its best CCC is at a
    shift that "un-inverts" a periodic signal)."""
    best, best_r = 0, float("nan")
    for shift in shifts:
        own = []
        for stack in stacks:
            trace = stack[index]
            # Later (shift < 0): frame f takes frame f + shift, the first -shift frames NaN.
            later = np.r_[np.full(-shift, np.nan), trace[:shift]] if shift < 0 else None
            own.append(shift_earlier(trace, shift) if later is None else later)
        r = pearson(np.concatenate(own), np.concatenate(reference))
        if np.isfinite(r) and not abs(r) <= abs(best_r):
            best, best_r = shift, r
    return best, best_r


def screen_annotators(
    stacks: Sequence[np.ndarray],
    max_lag: int,
    min_r: float,
    *,
    max_sweeps: int = 50,
    reference: np.ndarray | None = None,
) -> Screen:
    """Lags that survive bad annotators, and who is reliable enough to be fused.

    Per video, a near-constant trace (SD below :data:`MIN_TRACE_SD`) is left out. Then the
    reference set starts as everyone else and :func:`estimate_lags` runs on it alone; each
    annotator's r is taken against the mean of the *other* reference annotators at the shift
    within ``max_lag`` of each of theirs with the largest |r| (:func:`_strongest_r`), and the
    reference member with the lowest r leaves the set if that r is at or below 0 or below
    ``min_r`` (one at a time, since one bad member lowers everyone's r), and an outsider whose
    r passes rejoins,
    until the set is stable or two members are left (two cannot tell which of them is wrong).
    Reference members keep their :func:`estimate_lags` delay (the least-delayed member at 0);
    the others get their strongest shift against the whole reference, clipped to
    ``[0, max_lag]``. ``max_lag`` 0 judges traces as they are (already aligned).

    A given ``reference`` (a mask, e.g. a pooled screen's) is used as it is, never changed:
    on one short video of a near-periodic signal an anti-phase shift can correlate as strongly
    as the true one, so who is reliable is better judged pooled over videos.
    """
    count = _check_stacks(stacks)
    if max_lag < 0:
        raise Affect4kError(f"max_lag must be >= 0 frames, got {max_lag}")
    cleaned, constant = [], []
    for stack in stacks:
        stack = np.array(stack, np.float64)
        covers = np.isfinite(stack).any(axis=1)
        sd = np.array(
            [np.nanstd(row) if any_ else np.nan for row, any_ in zip(stack, covers, strict=True)]
        )
        flat = covers & (sd < MIN_TRACE_SD)
        stack[flat] = np.nan
        cleaned.append(stack)
        constant.append(flat)
    usable = np.array([any(np.isfinite(s[i]).any() for s in cleaned) for i in range(count)])
    traced = np.array([any(np.isfinite(s[i]).any() for s in stacks) for i in range(count)])
    lags, r = np.zeros(count, dtype=int), np.full(count, np.nan)
    fixed = reference is not None
    reference = usable & (np.asarray(reference, bool) if fixed else True)
    sweeps = 1
    for _ in range(2 * count + 1):
        rows = np.flatnonzero(reference)
        lags[:] = 0
        if len(rows):
            found, sweeps = estimate_lags(
                [s[rows] for s in cleaned], max_lag, max_sweeps=max_sweeps
            )
            lags[rows] = found
        r[:] = np.nan
        for index in np.flatnonzero(usable):
            others = rows[rows != index]
            if not len(others):
                continue
            # Every shift that keeps it within max_lag of each of the others, as in
            # estimate_lags: a window fixed at [0, max_lag] could miss the true lag of an
            # annotator quicker than the current anchor and find an anti-phase peak instead.
            shifts = range(lags[others].max() - max_lag, lags[others].min() + max_lag + 1)
            strongest, r[index] = _strongest_r(
                cleaned, index, _reference_mean(cleaned, others, lags), shifts
            )
            if not reference[index]:
                lags[index] = min(max(strongest, 0), max_lag)
        passes = (r > 0) & (r >= min_r)
        failing = [i for i in rows if not passes[i]]
        joining = [i for i in np.flatnonzero(usable & ~reference) if passes[i]]
        if fixed:
            break
        if failing and len(rows) > 2:
            reference[min(failing, key=lambda i: np.nan_to_num(r[i], nan=-np.inf))] = False
        elif joining:
            reference[joining] = True
        else:
            break
    status = tuple(
        "absent"
        if not traced[i]
        else "constant"
        if not usable[i]
        else "ok"
        if (r[i] > 0 and r[i] >= min_r)
        else "unreliable"
        for i in range(count)
    )
    return Screen(lags, r, status, reference, tuple(constant), sweeps)


def agreement_with_others(
    stacks: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per annotator, pooled over videos: Pearson r and CCC of their trace with the others' mean
    and the number of frames both define (NaN r and CCC where undefined)."""
    count = _check_stacks(stacks)
    r, agreement, frames = np.full(count, np.nan), np.full(count, np.nan), np.zeros(count, int)
    for index in range(count):
        own = np.concatenate([np.asarray(stack, np.float64)[index] for stack in stacks])
        rest = np.concatenate([others_mean(np.asarray(s, np.float64), index) for s in stacks])
        both = np.isfinite(own) & np.isfinite(rest)
        r[index], agreement[index], frames[index] = pearson(own, rest), ccc(own, rest), both.sum()
    return r, agreement, frames


def ewe_weights(correlations: np.ndarray) -> np.ndarray:
    """EWE weights from each annotator's correlation with the others' mean: clipped at 0 (an
    annotator who disagrees gets no say; undefined counts as 0) and normalised to sum 1."""
    clipped = np.clip(np.nan_to_num(np.asarray(correlations, np.float64), nan=0.0), 0, None)
    if clipped.sum() <= 0:
        raise Affect4kError(
            "EWE: no annotator correlates positively with the mean of the others, so no weight "
            "can be given; use annotation.fusion: mean or median"
        )
    return clipped / clipped.sum()


def fuse(stack: np.ndarray, method: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the fused label of the annotators that cover it (NaN where none does).

    ``mean``: their mean; ``median``: their median; ``ewe``: their weighted mean, the weights
    renormalised over the annotators present (NaN where only zero-weight annotators are).
    """
    stack = np.asarray(stack, np.float64)
    covered = np.isfinite(stack)
    if method == "median":
        fused = np.full(stack.shape[1], np.nan)
        some = covered.any(axis=0)
        fused[some] = np.nanmedian(stack[:, some], axis=0)
        return fused
    if method == "mean":
        weights = np.ones(stack.shape[0])
    elif method == "ewe":
        if weights is None or len(weights) != stack.shape[0]:
            raise Affect4kError("fusion ewe needs one weight per annotator")
    else:
        raise Affect4kError(f"fusion: unknown method {method!r}, expected one of {FUSIONS}")
    weight = np.where(covered, np.asarray(weights, np.float64)[:, None], 0.0)
    total = weight.sum(axis=0)
    values = (weight * np.where(covered, stack, 0.0)).sum(axis=0)
    return np.where(total > 0, values / np.where(total > 0, total, 1.0), np.nan)


def krippendorff_alpha(stack: np.ndarray) -> float:
    """Krippendorff's alpha for interval data, frames as units, NaN as missing values.

    The closed form of the coincidence-matrix definition for the squared difference metric:
    ``1 - D_o / D_e``, with ``D_o`` the within-frame and ``D_e`` the pooled pairwise squared
    differences, over the values of frames at least two annotators cover. O(frames x
    annotators), where the coincidence matrix of continuous values would be quadratic in the
    number of distinct values. NaN with fewer than two such values or no variation at all.
    """
    stack = np.asarray(stack, np.float64)
    covered = np.isfinite(stack)
    units = covered.sum(axis=0) >= 2
    values, covered = stack[:, units], covered[:, units]
    m = covered.sum(axis=0)
    n = int(m.sum())
    if n < 2:
        return float("nan")
    filled = np.where(covered, values, 0.0)
    unit_mean = filled.sum(axis=0) / m
    within = (np.where(covered, values - unit_mean, 0.0) ** 2).sum(axis=0)
    observed = (2 * m * within / (m - 1)).sum() / n
    pooled = values[covered]
    expected = 2 * n * ((pooled - pooled.mean()) ** 2).sum() / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return float(1 - observed / expected)
