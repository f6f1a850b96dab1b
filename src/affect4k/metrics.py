"""Concordance correlation coefficient (CCC): the study's evaluation metric, in NumPy.

CCC rewards predictions that are both correlated with the labels and on their scale and offset,
which is why the study trains on ``1 - CCC`` (:mod:`affect4k.loss`) instead of MSE. It follows the
Aff-Wild / ABAW evaluation scripts (all frames pooled, population statistics) so numbers are
comparable with published ones. Frames without a label (no annotation, or no face) are NaN in
the data and are left out of every statistic, never counted as zeros.
"""

from __future__ import annotations

import numpy as np

from affect4k.errors import Affect4kError
from affect4k.layout import DIMENSIONS


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


def bootstrap(sums: list[np.ndarray], resamples: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Metrics of ``resamples`` bootstrap resamples of the groups, for each of ``sums``.

    Every ``(G, 2, 7)`` array of ``sums`` is over the same G groups, and all of them see the
    same resamples (the same draws for every run scored on one set): replicates of two runs are
    paired, so their difference, or their mean over seeds, has an interval too. A resample
    draws G groups with replacement; its sums are the count-weighted group sums, one matrix
    product for a block of resamples, so no frame is touched again: the cost is
    ``resamples x G``, whatever the frame count. Returns per input ``{metric: (resamples,)}``.
    """
    if resamples < 1:
        raise Affect4kError(f"bootstrap needs at least one resample, got {resamples}")
    n_groups = sums[0].shape[0] if sums else 0
    if any(array.shape[0] != n_groups for array in sums):
        raise Affect4kError("bootstrap: the sums are not over the same groups")
    rng = np.random.default_rng(seed)
    flat = [array.reshape(n_groups, -1) for array in sums]
    pooled: list[list[np.ndarray]] = [[] for _ in sums]
    block = max(1, _BLOCK // max(n_groups, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        drawn = rng.integers(0, n_groups, size=(size, n_groups))
        offsets = (np.arange(size) * n_groups)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * n_groups)
        counts = counts.reshape(size, n_groups).astype(np.float64)
        for index, array in enumerate(flat):
            pooled[index].append(counts @ array)
    shape = (resamples, len(DIMENSIONS), _STATS)
    return [metrics_of_sums(np.concatenate(blocks).reshape(shape)) for blocks in pooled]


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``replicates`` (NaN replicates left out)."""
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
