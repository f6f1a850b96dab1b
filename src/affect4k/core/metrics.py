"""Concordance correlation coefficient (CCC): the study's evaluation metric, in NumPy.

CCC rewards predictions that are both correlated with the labels and on their scale and offset,
which is why the study trains on ``1 - CCC`` (:mod:`affect4k.model.loss`) instead of MSE. It follows
the Aff-Wild / ABAW evaluation scripts (all frames pooled, population statistics) so numbers are
comparable with published ones. Frames without a label (no annotation, or no face) are NaN in the
data and are left out of every statistic, never counted as zeros.
"""

from __future__ import annotations

import math

import numpy as np

from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """CCC of two 1-D series over all their frames: ``2 cov / (var_t + var_p + (mu_t - mu_p)^2)``.

    Population (ddof=0) statistics, as in the ABAW scripts. Frames where either value is NaN are
    dropped; with fewer than two frames left (or zero denominator) the CCC is undefined: NaN.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise Affect4kError(
            f"ccc needs two 1-D arrays of equal length, got shapes {y_true.shape} and "
            f"{y_pred.shape}"
        )
    valid = np.isfinite(y_true) & np.isfinite(y_pred)
    if valid.sum() < 2:
        return float("nan")
    t, p = y_true[valid], y_pred[valid]
    mean_t, mean_p = t.mean(), p.mean()
    covariance = np.mean((t - mean_t) * (p - mean_p))
    denominator = t.var() + p.var() + (mean_t - mean_p) ** 2
    if denominator == 0:
        return float("nan")
    return float(2 * covariance / denominator)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two 1-D series over the frames both define (NaN dropped, as in :func:`ccc`);
    NaN with fewer than two such frames or a constant series."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    valid = np.isfinite(x) & np.isfinite(y)
    x, y = x[valid], y[valid]
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def va_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """CCC and MSE per dimension of (N, 2) [valence, arousal] arrays, plus their mean CCC.

    A frame counts only if all four of its values are finite, so both dimensions (and the MSEs)
    are computed over exactly the same frames; ``frames`` says how many that was.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape[1] != len(DIMENSIONS) or y_true.shape != y_pred.shape:
        raise Affect4kError(
            f"va_metrics needs two (N, 2) [valence, arousal] arrays, got shapes {y_true.shape} "
            f"and {y_pred.shape}"
        )
    valid = np.isfinite(y_true).all(axis=1) & np.isfinite(y_pred).all(axis=1)
    t, p = y_true[valid], y_pred[valid]
    result: dict[str, float] = {}
    for column, dimension in enumerate(DIMENSIONS):
        result[f"{dimension}_ccc"] = ccc(t[:, column], p[:, column])
        result[f"{dimension}_mse"] = (
            float(np.mean((t[:, column] - p[:, column]) ** 2)) if len(t) else float("nan")
        )
    result["mean_ccc"] = (result["valence_ccc"] + result["arousal_ccc"]) / 2
    result["frames"] = int(valid.sum())
    return result


#: Per group and dimension: frames, sum of label, of prediction, of their squares, of their
#: product and of the squared error. CCC and MSE of any union of groups follow from their sums.
_STATS = 7


def group_sums(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_groups: int
) -> np.ndarray:
    """``(n_groups, 2, 7)`` sufficient statistics of each group's frames (see :data:`_STATS`).

    ``groups`` holds each frame's group index in ``[0, n_groups)``. A frame counts only where
    all four values are finite, as in :func:`va_metrics`.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    valid = np.isfinite(y_true).all(axis=1) & np.isfinite(y_pred).all(axis=1)
    t, p, g = y_true[valid], y_pred[valid], np.asarray(groups)[valid]
    sums = np.zeros((n_groups, len(DIMENSIONS), _STATS))
    for column in range(len(DIMENSIONS)):
        a, b = t[:, column], p[:, column]
        for stat, values in enumerate((np.ones_like(a), a, b, a * a, b * b, a * b, (a - b) ** 2)):
            sums[:, column, stat] = np.bincount(g, weights=values, minlength=n_groups)
    return sums


def metrics_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """CCC and MSE per dimension and mean CCC of pooled sums ``(..., 2, 7)``: arrays ``(...)``,
    NaN where fewer than two frames (or a zero denominator) leave the CCC undefined."""
    n, s_t, s_p, s_tt, s_pp, s_tp, s_e = np.moveaxis(sums, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_t, mean_p = s_t / n, s_p / n
        var_t, var_p = s_tt / n - mean_t**2, s_pp / n - mean_p**2
        covariance = s_tp / n - mean_t * mean_p
        denominator = var_t + var_p + (mean_t - mean_p) ** 2
        ccc_values = np.where((n >= 2) & (denominator > 0), 2 * covariance / denominator, np.nan)
        mse = np.where(n >= 1, s_e / n, np.nan)
    result = {}
    for column, dimension in enumerate(DIMENSIONS):
        result[f"{dimension}_ccc"] = ccc_values[..., column]
        result[f"{dimension}_mse"] = mse[..., column]
    result["mean_ccc"] = (result["valence_ccc"] + result["arousal_ccc"]) / 2
    return result


#: Largest resamples x groups block drawn at once (memory stays near 80 MB for 400k groups).
_BLOCK = 10_000_000


def resampled_totals(arrays: list[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """Totals of ``resamples`` bootstrap resamples of the groups, for each of ``arrays``.

    Every array of ``arrays`` is ``(G, ...)``, additive over the same G groups, and all of them
    see the same resamples (the same draws for every run scored on one set): replicates of two
    runs are paired, so their difference, or their mean over seeds, has an interval too. A
    resample draws G groups with replacement; its totals are the count-weighted group rows,
    one matrix product for a block of resamples, so no frame is touched again: the cost is
    ``resamples x G``, whatever the frame count. Returns per input ``(resamples, ...)``.
    """
    if resamples < 1:
        raise Affect4kError(f"bootstrap needs at least one resample, got {resamples}")
    n_groups = arrays[0].shape[0] if arrays else 0
    if any(array.shape[0] != n_groups for array in arrays):
        raise Affect4kError("bootstrap: the sums are not over the same groups")
    rng = np.random.default_rng(seed)
    flat = [np.asarray(array, np.float64).reshape(n_groups, -1) for array in arrays]
    totals: list[list[np.ndarray]] = [[] for _ in arrays]
    block = max(1, _BLOCK // max(n_groups, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        drawn = rng.integers(0, n_groups, size=(size, n_groups))
        offsets = (np.arange(size) * n_groups)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * n_groups)
        counts = counts.reshape(size, n_groups).astype(np.float64)
        for index, array in enumerate(flat):
            totals[index].append(counts @ array)
    return [
        np.concatenate(blocks).reshape(resamples, *array.shape[1:])
        for blocks, array in zip(totals, arrays, strict=True)
    ]


def bootstrap(sums: list[np.ndarray], resamples: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Metrics of ``resamples`` paired bootstrap resamples of the groups
    (:func:`resampled_totals`) for each ``(G, 2, 7)`` array of ``sums``: per input
    ``{metric: (resamples,)}``."""
    return [metrics_of_sums(total) for total in resampled_totals(sums, resamples, seed)]


def video_ccc_sums(video_sums: np.ndarray, video_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``(G, 2)`` per group: the sum of its videos' mean CCC (each video's own CCC, valence
    and arousal averaged; videos where it is undefined left out) and how many videos that is.

    The per-video CCC (the mean over videos of each video's CCC) is their ratio, for the whole
    set or any resample of its groups, so :func:`resampled_totals` bootstraps it by group with
    the same draws as the pooled CCC: unlike the pooled CCC, it does not reward getting the
    differences between videos' means right."""
    per_video = metrics_of_sums(np.asarray(video_sums, np.float64))["mean_ccc"]
    finite = np.isfinite(per_video)
    groups = np.asarray(video_groups)[finite]
    out = np.zeros((n_groups, 2))
    out[:, 0] = np.bincount(groups, weights=per_video[finite], minlength=n_groups)
    out[:, 1] = np.bincount(groups, minlength=n_groups)
    return out


def ratio(totals: np.ndarray) -> np.ndarray:
    """The per-video CCC of :func:`video_ccc_sums` totals ``(..., 2)`` (NaN without a video)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals[..., 1] > 0, totals[..., 0] / totals[..., 1], np.nan)


#: The interval methods :func:`interval` offers: ``t`` ships, ``percentile`` was the earlier
#: one (``bench/coverage.py`` measures both).
INTERVAL_METHODS = ("t", "percentile")


def student_t_cdf(t: float, df: int) -> float:
    """Student's t CDF for integer ``df`` >= 1, in closed form (Abramowitz & Stegun 26.7.3-4):
    NumPy and the standard library only, as every stage of the ``numpy`` environment."""
    if df < 1:
        raise Affect4kError(f"student_t_cdf needs df >= 1, got {df}")
    theta = math.atan(t / math.sqrt(df))
    cos2, term, total = math.cos(theta) ** 2, 1.0, 0.0
    if df % 2:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2.4/3.5 cos^4 + ...))
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:  # even: sin (1 + 1/2 cos^2 + 1.3/2.4 cos^4 + ...)
        for k in range(1, df // 2 + 1):
            total += term
            term *= cos2 * (2 * k - 1) / (2 * k)
        inside = math.sin(theta) * total
    return 0.5 + 0.5 * inside


def student_t_quantile(p: float, df: int) -> float:
    """Student's t quantile (integer ``df`` >= 1), by bisection on :func:`student_t_cdf`."""
    if df < 1 or not 0 < p < 1:
        raise Affect4kError(f"student_t_quantile needs df >= 1 and 0 < p < 1, got {df}, {p}")
    low, high = -1e6, 1e6
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def _t_spread(replicates: np.ndarray, groups: int) -> float:
    """The bootstrap standard error inflated by ``sqrt(G / (G - 1))`` (see :func:`interval`)."""
    finite = replicates[np.isfinite(replicates)]
    return float(finite.std(ddof=1) * math.sqrt(groups / (groups - 1)))


def p_value(replicates: np.ndarray, estimate: float, groups: int) -> float:
    """Two-sided p of "the statistic is 0" under the :func:`interval` ``t`` model: ``estimate``
    over the inflated bootstrap standard error, against Student's t with ``groups - 1``
    degrees of freedom (NaN with fewer than 2 groups or replicates)."""
    if groups < 2 or np.isfinite(replicates).sum() < 2 or not np.isfinite(estimate):
        return float("nan")
    spread = _t_spread(replicates, groups)
    if spread == 0:
        return 0.0 if estimate != 0 else 1.0
    return 2 * (1 - student_t_cdf(abs(estimate) / spread, groups - 1))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stay NaN and do not count in the family):
    the family-wise error rate is held whatever the dependence between the tests."""
    p_values = np.asarray(p_values, np.float64)
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    order = finite[np.argsort(p_values[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def interval(
    replicates: np.ndarray,
    level: float = 0.95,
    *,
    estimate: float | None = None,
    groups: int | None = None,
    method: str = "t",
) -> tuple[float, float]:
    """A ``level`` interval from group-bootstrap ``replicates`` of a statistic (NaN replicates
    left out).

    ``t`` (shipped): ``estimate`` plus or minus Student's t with ``groups - 1`` degrees of
    freedom times the bootstrap standard error inflated by ``sqrt(G / (G - 1))``. With few
    groups the bootstrap's spread underestimates the sampling spread (a resample of G groups
    has on average G (1 - 1/e) distinct ones) and a CCC's bootstrap distribution is skewed, so
    ``percentile`` (the replicates' quantiles) covered 30 % with 2 groups, 76 % with 6 and 86 %
    with 12 in ``bench/coverage.py``; ``t`` covers 92 % or more from 2 groups on there
    (docs/performance.md). NaN, NaN with fewer than 2 groups.
    """
    if method not in INTERVAL_METHODS:
        raise Affect4kError(f"interval: unknown method {method!r}, expected {INTERVAL_METHODS}")
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    if method == "percentile":
        low, high = np.percentile(finite, [100 * tail, 100 - 100 * tail])
        return float(low), float(high)
    if estimate is None or groups is None:
        raise Affect4kError("interval: the t interval needs the estimate and the groups")
    if groups < 2 or len(finite) < 2 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    half = student_t_quantile(1 - tail, groups - 1) * _t_spread(replicates, groups)
    return float(estimate - half), float(estimate + half)
