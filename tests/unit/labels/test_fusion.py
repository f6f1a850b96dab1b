"""Lags, fusion rules and reliability across annotators (affect4k.labels.fusion)."""

from __future__ import annotations

import numpy as np
import pytest

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.labels.fusion import (
    agreement_with_others,
    estimate_lags,
    ewe_weights,
    fuse,
    krippendorff_alpha,
    lag_against_truth,
    shift_earlier,
)


def lagged_stacks(lags_frames, noise, n_videos=4, n_frames=500, seed=11):
    """Per video, annotators tracing one smooth signal ``lags_frames`` frames late, with white
    noise of SD ``noise`` (a list per annotator)."""
    rng = np.random.default_rng(seed)
    stacks, signals = [], []
    margin = max(lags_frames)
    for _ in range(n_videos):
        t = np.arange(n_frames + margin) / CLIP_FPS
        periods, phases = rng.uniform(2, 6, 3), rng.uniform(0, 2 * np.pi, 3)
        signal = 0.3 * np.sin(2 * np.pi * t[:, None] / periods + phases).sum(axis=1)
        rows = []
        for lag, sd in zip(lags_frames, noise, strict=True):
            late = np.r_[np.full(lag, signal[0]), signal][:n_frames]  # value at f is s(f - lag)
            rows.append(late + rng.normal(0, sd, n_frames))
        stacks.append(np.stack(rows))
        signals.append(signal[:n_frames])
    return stacks, signals


def test_lags_are_found_relative_to_the_least_delayed_annotator():
    truth = [7, 0, 20, 45]  # the second annotator is the quickest
    stacks, _ = lagged_stacks(truth, [0.05, 0.1, 0.05, 0.1])
    lags, sweeps = estimate_lags(stacks, max_lag=125)
    np.testing.assert_array_equal(lags, np.array(truth) - min(truth))
    assert sweeps <= 10
    # A skipped video (all NaN for one annotator) and a missing annotator change nothing else.
    stacks[0][2] = np.nan
    silent = [np.vstack([stack, np.full(stack.shape[1], np.nan)]) for stack in stacks]
    lags, _ = estimate_lags(silent, max_lag=125)
    np.testing.assert_array_equal(lags, [*(np.array(truth) - min(truth)), 0])


def test_lags_never_exceed_max_lag():
    stacks, _ = lagged_stacks([0, 60], [0.05, 0.05])
    lags, _ = estimate_lags(stacks, max_lag=25)
    assert 0 <= lags.max() <= 25
    with pytest.raises(Affect4kError, match="max_lag"):
        estimate_lags(stacks, max_lag=-1)


def test_shift_earlier_leaves_the_uncovered_end_nan():
    trace = np.arange(6, dtype=float)
    np.testing.assert_array_equal(shift_earlier(trace, 2), [2, 3, 4, 5, np.nan, np.nan])
    assert np.isnan(shift_earlier(trace, 9)).all()


def test_fusion_rules():
    stack = np.array([[0.1, 0.2, np.nan, np.nan], [0.3, 0.4, 0.5, np.nan], [0.8, 0.0, 0.7, 0.9]])
    np.testing.assert_allclose(fuse(stack, "mean"), [0.4, 0.2, 0.6, 0.9])
    np.testing.assert_allclose(fuse(stack, "median"), [0.3, 0.2, 0.6, 0.9])
    weights = np.array([0.5, 0.5, 0.0])
    np.testing.assert_allclose(fuse(stack, "ewe", weights), [0.2, 0.3, 0.5, np.nan])
    with pytest.raises(Affect4kError, match="unknown method"):
        fuse(stack, "max")


def test_ewe_weights_follow_agreement_and_ignore_dissenters():
    stacks, _ = lagged_stacks([0, 0, 0, 0], [0.05, 0.2, 0.4, 0.1])
    r, agreement, frames = agreement_with_others(stacks)
    weights = ewe_weights(r)
    assert list(np.argsort(-weights)) == [0, 3, 1, 2]
    assert weights.sum() == pytest.approx(1) and (agreement <= r + 1e-12).all()
    assert (frames == 4 * 500).all()
    np.testing.assert_allclose(ewe_weights(np.array([0.5, -0.2, np.nan])), [1, 0, 0])
    with pytest.raises(Affect4kError, match="EWE"):
        ewe_weights(np.array([-0.1, np.nan]))


def test_krippendorff_alpha_matches_the_reference_implementation():
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(2)
    for coders, units in ((2, 40), (4, 60)):
        data = rng.normal(0, 1, (1, units)) + rng.normal(0, 0.6, (coders, units))
        data = np.round(data, 2)
        data[rng.random(data.shape) < 0.2] = np.nan
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
        assert krippendorff_alpha(data) == pytest.approx(expected, abs=1e-9)
    assert np.isnan(krippendorff_alpha(np.array([[0.5, np.nan], [np.nan, 0.2]])))


def test_lag_against_truth_is_the_ccc_maximising_shift():
    truth_ = np.sin(np.arange(300) / 9.0) + np.sin(np.arange(300) / 23.0)
    late = np.r_[np.zeros(12), truth_][:300]  # frame f holds truth(f - 12)
    lag, agreement = lag_against_truth(late, truth_, 40)
    assert lag == 12 and agreement == pytest.approx(1.0)
    assert lag_against_truth(late, truth_, 5)[0] == 5
    with pytest.raises(Affect4kError, match="max_lag"):
        lag_against_truth(late, truth_, -1)
    with pytest.raises(Affect4kError, match="no shift"):
        lag_against_truth(np.full(300, np.nan), truth_, 3)
