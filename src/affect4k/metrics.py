"""Concordance correlation coefficient (CCC): the study's evaluation metric and training loss.

CCC rewards predictions that are both correlated with the labels and on their scale and offset,
which is why the study trains on ``1 - CCC`` instead of MSE. The NumPy metric follows the
Aff-Wild / ABAW evaluation scripts (all frames pooled, population statistics) so numbers are
comparable with published ones. Frames without a label (no annotation, or no face) are NaN in
the data and are left out of every statistic, never counted as zeros.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from affect4k.errors import Affect4kError

#: Column order of every (N, 2) label or prediction array.
VA_DIMENSIONS = ("valence", "arousal")

#: Keeps the loss finite when labels and predictions are both constant over a batch.
_LOSS_EPSILON = 1e-8


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


def va_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """CCC and MSE per dimension of (N, 2) [valence, arousal] arrays, plus their mean CCC.

    A frame counts only if all four of its values are finite, so both dimensions (and the MSEs)
    are computed over exactly the same frames; ``frames`` says how many that was.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape[1] != len(VA_DIMENSIONS) or y_true.shape != y_pred.shape:
        raise Affect4kError(
            f"va_metrics needs two (N, 2) [valence, arousal] arrays, got shapes {y_true.shape} "
            f"and {y_pred.shape}"
        )
    valid = np.isfinite(y_true).all(axis=1) & np.isfinite(y_pred).all(axis=1)
    t, p = y_true[valid], y_pred[valid]
    result: dict[str, float] = {}
    for column, dimension in enumerate(VA_DIMENSIONS):
        result[f"{dimension}_ccc"] = ccc(t[:, column], p[:, column])
        result[f"{dimension}_mse"] = (
            float(np.mean((t[:, column] - p[:, column]) ** 2)) if len(t) else float("nan")
        )
    result["mean_ccc"] = (result["valence_ccc"] + result["arousal_ccc"]) / 2
    result["frames"] = int(valid.sum())
    return result


@keras.saving.register_keras_serializable(package="affect4k")
def ccc_loss(y_true, y_pred):
    """Keras loss ``1 - mean CCC`` over the dimensions, every frame of the batch pooled.

    The batch (B, T, D) is flattened to B*T frames before the statistics: one sequence of one
    video barely varies, so a per-sequence CCC is near 0/0 - the study mixes 4 sequences from
    different videos per batch for exactly this reason. A frame whose label has a NaN is given
    weight 0; its values are replaced by 0 *before* any arithmetic so neither the loss nor its
    gradient sees the NaN. Statistics are computed in float32 whatever the mixed-precision
    policy, since bfloat16 variances of values in [-1, 1] lose most of their digits.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    dimensions = y_true.shape[-1]
    y_true = ops.reshape(y_true, (-1, dimensions))
    y_pred = ops.reshape(y_pred, (-1, dimensions))
    labelled = ops.all(ops.isfinite(y_true), axis=-1, keepdims=True)
    weight = ops.cast(labelled, "float32")
    y_true = ops.where(labelled, y_true, 0.0)
    y_pred = ops.where(labelled, y_pred, 0.0)
    frames = ops.maximum(ops.sum(weight), 1.0)
    mean_true = ops.sum(y_true, axis=0) / frames
    mean_pred = ops.sum(y_pred, axis=0) / frames
    centred_true = (y_true - mean_true) * weight
    centred_pred = (y_pred - mean_pred) * weight
    var_true = ops.sum(centred_true**2, axis=0) / frames
    var_pred = ops.sum(centred_pred**2, axis=0) / frames
    covariance = ops.sum(centred_true * centred_pred, axis=0) / frames
    concordance = (
        2 * covariance / (var_true + var_pred + (mean_true - mean_pred) ** 2 + _LOSS_EPSILON)
    )
    return 1.0 - ops.mean(concordance)
