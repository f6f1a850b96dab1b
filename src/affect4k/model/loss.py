"""The study's training loss, ``1 - CCC``, in Keras (the metric itself:
``affect4k.core.metrics``).
"""

from __future__ import annotations

import keras
from keras import ops

#: Keeps the loss finite when labels and predictions are both constant over a batch.
_LOSS_EPSILON = 1e-8


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
