"""The calibration clip's traces: each annotator's lag and accuracy against a known signal
(affect4k.labels.calibration)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers.traces import joystick_times, write_trace

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.labels.annotate import lag_table
from affect4k.labels.calibration import (
    DURATION_S,
    calibration_table,
    check_calibration,
    measure,
    read_calibration,
    trace_path,
    truth,
)


def calibration_trace(rng, dimension: str, lag_s: float, noise: float):
    """A joystick-timed trace of the calibration clip, ``lag_s`` late, with ``noise``."""
    times = joystick_times(rng, DURATION_S, start_s=0.0)
    values = truth(dimension, times - lag_s) + rng.normal(0, noise, len(times))
    return times, np.clip(values, -1, 1)


@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_calibration_measures_the_lag_and_accuracy_against_the_known_signal(dimension):
    rng = np.random.default_rng(7)
    found = {}
    for lag_s, noise in ((0.0, 0.05), (1.0, 0.05), (2.36, 0.05), (1.0, 0.3)):
        lag, agreement = measure(
            *calibration_trace(rng, dimension, lag_s, noise), dimension, 5, 0.5
        )
        assert lag == pytest.approx(lag_s, abs=1.5 / CLIP_FPS), (lag_s, noise)  # a frame
        found[lag_s, noise] = agreement
    assert found[1.0, 0.05] > 0.95 and found[1.0, 0.3] < found[1.0, 0.05]  # accuracy: noise
    # The search stops at max_lag_s: a later annotator is put at the bound, never beyond.
    lag, _ = measure(*calibration_trace(rng, dimension, 3.0, 0.05), dimension, 2.0, 0.5)
    assert lag == pytest.approx(2.0)


def test_the_calibration_stage_measures_every_trace_and_feeds_lag_measured(tmp_path):
    rng = np.random.default_rng(8)
    lags = {"ann1": 0.4, "ann2": 1.2}
    annotations = tmp_path / "annotations"
    for (name, lag_s), dim in itertools.product(lags.items(), ("valence", "arousal")):
        write_trace(trace_path(annotations, name, dim), *calibration_trace(rng, dim, lag_s, 0.05))
    out = tmp_path / "calibration.csv"
    calibration_table(annotations, ["ann1", "ann2", "ann3"], out)  # ann3 has not traced it
    table = pd.read_csv(out)
    assert list(table.columns) == ["annotator", "dimension", "lag_s", "ccc"]
    assert sorted(table["annotator"]) == ["ann1", "ann1", "ann2", "ann2"]
    for row in table.itertuples():
        assert row.lag_s == pytest.approx(lags[row.annotator], abs=1 / CLIP_FPS)
        assert row.ccc > 0.9
    applied = lag_table("measured", None, ["v1", "v2"], ["ann1", "ann2"], out, max_lag_s=5)
    assert len(applied) == 2 * 2 * 2
    for row in applied.itertuples():
        assert row.lag_s == pytest.approx(lags[row.annotator], abs=1 / CLIP_FPS)
    with pytest.raises(Affect4kError, match=r"no calibration lag .*ann3"):
        lag_table("measured", None, ["v1"], ["ann1", "ann3"], out, max_lag_s=5)
    with pytest.raises(Affect4kError, match="needs the calibration table"):
        lag_table("measured", None, ["v1"], ["ann1"])
    trace_path(annotations, "ann3", "valence").write_text("skipped\n")
    with pytest.raises(Affect4kError, match="cannot be skipped"):
        calibration_table(annotations, ["ann3"], out)


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("flat", "never moves"),
        ("inverted", "upside down"),
        ("sloppy", "below annotation.min_calibration_ccc 0.7"),
    ],
)
def test_a_calibration_below_the_floor_is_refused(tmp_path, kind, fragment):
    rng = np.random.default_rng(12)
    times, values = calibration_trace(rng, "valence", 1.0, 0.05)
    if kind == "flat":
        values = np.full(len(times), 0.2)
    elif kind == "inverted":
        values = -values
    else:
        values = np.clip(0.4 * values + rng.normal(0, 0.5, len(values)), -1, 1)
    with pytest.raises(Affect4kError, match=fragment):
        check_calibration(times, values, "valence", max_lag_s=5, max_gap_s=0.5, min_ccc=0.7)
    # The calibration stage refuses it too, naming the annotator and file; nothing written.
    annotations, out = tmp_path / "annotations", tmp_path / "calibration.csv"
    write_trace(trace_path(annotations, "ann1", "valence"), times, values)
    with pytest.raises(Affect4kError, match=rf"ann1.valence.csv \(annotator ann1\): .*{fragment}"):
        calibration_table(annotations, ["ann1"], out, min_ccc=0.7)
    assert not out.exists()
    good = calibration_trace(rng, "valence", 1.0, 0.05)
    assert check_calibration(*good, "valence", max_lag_s=5, max_gap_s=0.5, min_ccc=0.7)[1] > 0.9


@pytest.mark.parametrize("lag", ["nan", "-2", "6.5", "soon"])
def test_a_hand_edited_calibration_lag_is_refused_where_it_is_read(tmp_path, lag):
    path = tmp_path / "calibration.csv"
    path.write_text(
        f"annotator,dimension,lag_s,ccc\nann1,valence,0.4,0.9\nann2,valence,{lag},0.8\n"
    )
    with pytest.raises(Affect4kError, match=r"calibration.csv: annotator ann2, valence: lag_s"):
        read_calibration(path, 5.0)
    with pytest.raises(Affect4kError, match=r"within \[0, 5\] s"):
        lag_table("measured", None, ["v1"], ["ann1", "ann2"], path, max_lag_s=5.0)
    path.write_text("annotator,dimension,lag_s,ccc\nann1,valence,0.4,0.9\n")
    assert read_calibration(path, 5.0)["lag_s"].tolist() == [0.4]
