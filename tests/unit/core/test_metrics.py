import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from affect4k.core.errors import Affect4kError
from affect4k.core.metrics import ccc, va_metrics
from affect4k.model.loss import ccc_loss


def reference_ccc(t: np.ndarray, p: np.ndarray) -> float:
    """The Aff-Wild2 evaluation script's form: via Pearson's rho and population stds."""
    rho = np.corrcoef(t, p)[0, 1]
    return 2 * rho * t.std() * p.std() / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_ccc_matches_the_reference_formula(rng):
    t = rng.normal(size=500)
    p = 0.6 * t + rng.normal(0.3, 0.5, size=500)
    assert ccc(t, p) == pytest.approx(reference_ccc(t, p), rel=1e-12)


def test_ccc_identities(rng):
    x = rng.normal(size=200)
    centred = x - x.mean()
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(centred, -centred) == pytest.approx(-1.0)
    assert 1.0 > ccc(x, x + 0.5) > ccc(x, x + 1.0)


def test_ccc_drops_nan_frames_and_needs_two(rng):
    t, p = rng.normal(size=50), rng.normal(size=50)
    t_nan, p_nan = t.copy(), p.copy()
    t_nan[3], p_nan[10] = np.nan, np.nan
    keep = np.ones(50, bool)
    keep[[3, 10]] = False
    assert ccc(t_nan, p_nan) == pytest.approx(ccc(t[keep], p[keep]))
    assert np.isnan(ccc(np.array([1.0, np.nan]), np.array([0.5, 0.2])))


def test_ccc_rejects_mismatched_shapes():
    with pytest.raises(Affect4kError, match=r"\(3,\).*\(4,\)"):
        ccc(np.zeros(3), np.zeros(4))


def test_va_metrics_excludes_partially_labelled_rows(rng):
    t = rng.uniform(-1, 1, size=(100, 2))
    p = t + rng.normal(0, 0.3, size=(100, 2))
    t[5, 1] = np.nan  # arousal missing: the row must leave valence's numbers too
    p[8, 0] = np.nan
    result = va_metrics(t, p)
    keep = np.setdiff1d(np.arange(100), [5, 8])
    assert result["frames"] == 98
    assert result["valence_ccc"] == pytest.approx(ccc(t[keep, 0], p[keep, 0]))
    assert result["arousal_ccc"] == pytest.approx(ccc(t[keep, 1], p[keep, 1]))
    assert result["mean_ccc"] == pytest.approx((result["valence_ccc"] + result["arousal_ccc"]) / 2)
    assert result["arousal_mse"] == pytest.approx(np.mean((t[keep, 1] - p[keep, 1]) ** 2))


def test_va_metrics_rejects_wrong_shape():
    with pytest.raises(Affect4kError, match="valence, arousal"):
        va_metrics(np.zeros((4, 3)), np.zeros((4, 3)))


def labelled_batch(rng, b=4, t=10):
    """A (B, T, 2) batch with some frames unlabelled (NaN), as the sequence loader writes them."""
    y_true = rng.uniform(-1, 1, size=(b, t, 2)).astype("float32")
    y_pred = np.tanh(y_true + rng.normal(0, 0.5, size=(b, t, 2))).astype("float32")
    y_true[0, :3] = np.nan
    y_true[2, 7] = np.nan
    return y_true, y_pred


def test_ccc_loss_pools_every_labelled_frame_of_the_batch(rng):
    y_true, y_pred = labelled_batch(rng)
    loss = float(ccc_loss(y_true, y_pred))
    t, p = y_true.reshape(-1, 2), y_pred.reshape(-1, 2)
    valid = np.isfinite(t).all(axis=1)
    expected = 1 - np.mean([ccc(t[valid, d], p[valid, d]) for d in range(2)])
    assert loss == pytest.approx(expected, abs=1e-5)


def test_masked_frames_do_not_influence_the_loss(rng):
    y_true, y_pred = labelled_batch(rng)
    y_true[1, 4, 0] = np.nan  # only valence missing: the whole frame is out
    base = float(ccc_loss(y_true, y_pred))
    other_pred = y_pred.copy()
    other_pred[0, :3] = rng.uniform(-1, 1, size=(3, 2))
    other_pred[1, 4] = [0.9, -0.9]
    other_true = y_true.copy()
    other_true[1, 4, 1] = -5.0
    assert float(ccc_loss(other_true, other_pred)) == pytest.approx(base, abs=1e-6)


def test_ccc_loss_gradient_is_finite_with_nan_labels(rng):
    y_true, y_pred = labelled_batch(rng)
    prediction = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        loss = ccc_loss(tf.constant(y_true), prediction)
    gradient = tape.gradient(loss, prediction).numpy()
    assert np.isfinite(float(loss))
    assert np.isfinite(gradient).all()
    assert np.all(gradient[0, :3] == 0)
    assert np.any(gradient[1] != 0)


def test_ccc_loss_is_float32_for_bfloat16_predictions(rng):
    y_true, y_pred = labelled_batch(rng)
    loss = ccc_loss(y_true, ops.cast(y_pred, "bfloat16"))
    assert ops.dtype(loss) == "float32"
    assert float(loss) == pytest.approx(float(ccc_loss(y_true, y_pred)), abs=0.02)


def test_ccc_loss_of_an_unlabelled_batch_is_finite():
    loss = ccc_loss(np.full((2, 3, 2), np.nan, "float32"), np.zeros((2, 3, 2), "float32"))
    assert float(loss) == pytest.approx(1.0)
