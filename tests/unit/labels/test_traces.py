"""Reading an annotator's trace file and resampling it onto the 25 fps frame grid
(affect4k.labels.traces)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.traces import GOOD, MAX_GAP_S, joystick_times, write_trace

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.labels.traces import read_trace, resample_trace


def test_read_trace_returns_file_values(tmp_path):
    times = np.array([0.013, 0.041, 0.09])
    values = np.array([-1.0, 0.25, 1.0])
    got_times, got_values = read_trace(write_trace(tmp_path / "a.valence.csv", times, values))
    np.testing.assert_allclose(got_times, times)
    np.testing.assert_allclose(got_values, values)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("t,value\n0,0\n0.04,0\n", 1, "header"),
        ("", 1, "header"),
        (GOOD + "0.08,abc\n", 4, "'abc'"),
        (GOOD + "0.08,nan\n", 4, "'nan'"),
        (GOOD + "0.08,\n", 4, "empty value"),
        (GOOD + "0.08\n", 4, "empty value"),
        ("time_s,value\n0.00,0.1\n\n0.08,0.3\n", 3, "empty value"),
        (GOOD + "0.08,0.3,7\n", 4, "got 3"),
        (GOOD + "0.08,1.5\n", 4, "outside [-1, 1]"),
        (GOOD + "0.08,-1.01\n", 4, "outside [-1, 1]"),
        (GOOD + "0.04,0.3\n", 4, "does not increase"),
        (GOOD + "0.02,0.3\n", 4, "does not increase"),
        ("time_s,value\n-0.02,0.1\n0.04,0.2\n", 2, "negative"),
        ("time_s,value\ninf,0.1\n", 2, "not a finite number"),
        # A frame grid up to 1e9 s would be 186 GiB (the lags stage's).
        (GOOD + "1e9,0.3\n", 4, "time 1e+09 s is beyond a day"),
    ],
)
def test_read_trace_names_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "ann7.arousal.csv"
    path.write_text(text)
    with pytest.raises(Affect4kError) as caught:
        read_trace(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert fragment in message


def test_read_trace_refuses_single_sample_and_missing_file(tmp_path):
    path = tmp_path / "one.valence.csv"
    path.write_text("time_s,value\n0.0,0.5\n")
    with pytest.raises(Affect4kError, match="at least 2") as caught:
        read_trace(path)
    assert str(path) in str(caught.value)
    missing = tmp_path / "nobody.valence.csv"
    with pytest.raises(Affect4kError, match="does not exist") as caught:
        read_trace(missing)
    assert str(missing) in str(caught.value)


# --- resample_trace ---------------------------------------------------------------------------


def test_resample_matches_smooth_function_within_interpolation_bound():
    rng = np.random.default_rng(1)
    times = joystick_times(rng, 12.0)

    def signal(t):
        return 0.8 * np.sin(2 * np.pi * 0.5 * t)

    got = resample_trace(times, signal(times), 12 * CLIP_FPS - 10, max_gap_s=MAX_GAP_S)
    frame_times = np.arange(len(got)) / CLIP_FPS
    # Linear interpolation error <= max|f''| * h^2 / 8 with h the largest sample step.
    bound = 0.8 * (2 * np.pi * 0.5) ** 2 * np.diff(times).max() ** 2 / 8
    inside = frame_times >= times[0]
    assert np.isfinite(got).all()
    assert np.abs(got[inside] - signal(frame_times[inside])).max() <= bound
    assert got[0] == pytest.approx(signal(times[0]))  # held back to t=0 within max_gap_s


def test_resample_is_exact_for_a_linear_trace():
    times = np.array([0.0, 0.013, 0.5, 0.77, 1.7])
    got = resample_trace(times, 0.9 * times - 0.8, 43, max_gap_s=1.0)
    np.testing.assert_allclose(got, 0.9 * np.arange(43) / CLIP_FPS - 0.8, atol=1e-12)


def test_resample_masks_long_gaps_and_uncovered_edges():
    times = np.array([0.7, 1.0, 2.2, 2.4])  # starts 0.7 s late, 1.2 s gap, ends at 2.4 s
    values = np.array([0.1, 0.2, 0.3, 0.4])
    got = resample_trace(times, values, 100, max_gap_s=0.5)
    t = np.arange(100) / CLIP_FPS
    expected_nan = (t < 0.2) | ((t > 1.0) & (t < 2.2)) | (t > 2.9)
    np.testing.assert_array_equal(np.isnan(got), expected_nan)
    assert got[5] == pytest.approx(0.1)  # t = 0.2: within max_gap_s of the first sample
    assert got[25] == pytest.approx(0.2)  # t = 1.0: on the sample before the gap
    assert got[55] == pytest.approx(0.3)  # t = 2.2: on the sample after the gap
    assert got[72] == pytest.approx(0.4)  # t = 2.88: held until last sample + max_gap_s


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_frames": -1}, "n_frames"), ({"fps": 0}, "fps"), ({"max_gap_s": -0.1}, "max_gap_s")],
)
def test_resample_refuses_bad_parameters(kwargs, name):
    args = {"n_frames": 10, "max_gap_s": MAX_GAP_S} | kwargs
    with pytest.raises(Affect4kError, match=name):
        resample_trace(np.array([0.0, 1.0]), np.array([0.0, 1.0]), **args)
