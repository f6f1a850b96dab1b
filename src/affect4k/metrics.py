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
