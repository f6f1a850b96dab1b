"""Tests for the annotation stage: trace reading, resampling, per-video labels, the database."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affect4k import CLIP_FPS
from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.evaluation.affwild import read_affwild2_va
from affect4k.labels.annotate import annotate_video, estimate_annotation_lags, lag_table
from affect4k.labels.calibration import (
    DURATION_S,
    calibration_table,
    check_calibration,
    measure,
    read_calibration,
    trace_path,
    truth,
)
from affect4k.labels.database import build_database
from affect4k.labels.fusion import (
    agreement_with_others,
    estimate_lags,
    ewe_weights,
    fuse,
    krippendorff_alpha,
    lag_against_truth,
    shift_earlier,
)
from affect4k.labels.split import assign_split
from affect4k.labels.traces import is_skipped, read_trace, resample_trace

ANNOTATORS = ("ann1", "ann2", "ann3")
#: What the workflow passes for ``annotation.max_gap_s`` unless a config sets it.
MAX_GAP_S = schema_default("annotation.max_gap_s")
#: ... and for how the annotators' traces are fused.
FUSION = {key: schema_default(f"annotation.{key}") for key in ("fusion", "per_video")}


def joystick_times(rng: np.random.Generator, duration_s: float, start_s: float = 0.01):
    """Irregular sample times like a joystick logger: every 20-60 ms from ``start_s``."""
    steps = rng.uniform(0.02, 0.06, size=int(duration_s / 0.02) + 2)
    times = start_s + np.concatenate([[0.0], np.cumsum(steps)])
    return times[times <= duration_s]


def write_trace(path: Path, times, values) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{t:.6f},{v:.6f}\n" for t, v in zip(times, values, strict=True))
    path.write_text("time_s,value\n" + rows)
    return path


def write_faces(path: Path, n_frames: int) -> Path:
    frames = np.arange(n_frames)
    faces = pd.DataFrame({"frame": frames, "time_s": frames / CLIP_FPS, "face": True})
    faces.to_parquet(path, index=False)
    return path


# --- read_trace -------------------------------------------------------------------------------

GOOD = "time_s,value\n0.00,0.1\n0.04,0.2\n"


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


# --- annotate_video ---------------------------------------------------------------------------


@pytest.fixture
def video(tmp_path):
    """A 4 s clip with three annotators' traces of one signal; ann3's arousal stops at 2.5 s."""
    rng = np.random.default_rng(7)
    n_frames = 4 * CLIP_FPS
    trace_dir = tmp_path / "annotations" / "vid1"
    for name, dim in itertools.product(ANNOTATORS, ("valence", "arousal")):
        end = 2.5 if (name, dim) == ("ann3", "arousal") else 4.0
        times = joystick_times(rng, end)
        values = np.clip(0.5 * np.sin(times) + rng.normal(0, 0.05, times.size), -1, 1)
        write_trace(trace_dir / f"{name}.{dim}.csv", times, values)
    faces = write_faces(tmp_path / "vid1.faces.parquet", n_frames)
    return faces, trace_dir, n_frames


def test_annotate_video_writes_per_frame_labels_and_warns_on_masked_tail(tmp_path, video, caplog):
    faces, trace_dir, n_frames = video
    out = tmp_path / "out" / "vid1.parquet"
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        annotate_video("vid1", faces, trace_dir, ANNOTATORS, out, max_gap_s=MAX_GAP_S)
    table = pd.read_parquet(out)
    assert list(table.columns[:6]) == ["video", "frame", "time_s", "face", "valence", "arousal"]
    assert len(table) == n_frames
    np.testing.assert_array_equal(table["frame"], np.arange(n_frames))
    for dim in ("valence", "arousal"):
        per_annotator = table[[f"{dim}_{name}" for name in ANNOTATORS]].to_numpy()
        complete = np.isfinite(per_annotator).all(axis=1)
        np.testing.assert_allclose(table[dim][complete], per_annotator[complete].mean(axis=1))
        assert table[dim][~complete].isna().all()
    expected = resample_trace(
        *read_trace(trace_dir / "ann1.valence.csv"), n_frames, max_gap_s=MAX_GAP_S
    )
    np.testing.assert_allclose(table["valence_ann1"], expected)
    tail = np.arange(n_frames) / CLIP_FPS > read_trace(trace_dir / "ann3.arousal.csv")[0][-1] + 0.5
    assert tail.sum() > 0
    assert table["arousal"][tail].isna().all() and table["arousal"][~tail].notna().all()
    warnings = [r.getMessage() for r in caplog.records if "ann3.arousal.csv" in r.getMessage()]
    assert len(warnings) == 1
    assert f"masked {tail.sum()} of {n_frames} frames: {tail.sum()} after the trace" in warnings[0]
    assert [p.name for p in out.parent.iterdir()] == ["vid1.parquet"]  # no temp file left


@pytest.mark.parametrize(
    ("scale", "shift", "hint"),
    [(1000.0, 0.0, "milliseconds"), (1.0, 30.0, "annotation.time_origin: source")],
)
def test_a_trace_that_overruns_the_clip_is_refused_with_a_hint(tmp_path, video, scale, shift, hint):
    """Milliseconds, or times counted from the untrimmed source (a clip cut at 30 s)."""
    faces, trace_dir, _ = video
    path = trace_dir / "ann2.valence.csv"
    times, values = read_trace(path)
    write_trace(path, times * scale + shift, values)
    with pytest.raises(Affect4kError, match=hint) as refused:
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, tmp_path / "out.parquet", max_gap_s=MAX_GAP_S
        )
    assert "ann2.valence.csv" in str(refused.value) and "the clip lasts 4.00 s" in str(
        refused.value
    )
    assert not (tmp_path / "out.parquet").exists()


def test_traces_timed_against_the_source_are_shifted_by_the_clips_start(tmp_path, video):
    faces, trace_dir, n_frames = video
    annotate_video(
        "vid1", faces, trace_dir, ANNOTATORS, tmp_path / "clip.parquet", max_gap_s=MAX_GAP_S
    )
    for path in trace_dir.glob("*.csv"):
        times, values = read_trace(path)
        write_trace(path, times + 30.0, values)
    for path in trace_dir.glob("*.valence.csv"):  # these valence traces cover the whole clip
        times, values = read_trace(path)
        # The source goes on after the clip's end (the clip was trimmed there): not refused.
        after = np.r_[times[-1] + 0.2, times[-1] + 0.4, 41.0]
        write_trace(path, np.r_[times, after], np.r_[values, np.full(3, values[-1])])
    out = tmp_path / "source.parquet"
    annotate_video(
        "vid1", faces, trace_dir, ANNOTATORS, out, source_start_s=30.0, max_gap_s=MAX_GAP_S
    )
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "clip.parquet"))


def test_a_source_timed_trace_in_milliseconds_is_refused_not_left_almost_unlabelled(
    tmp_path, video
):
    """Its samples land 20-60 'seconds' apart: 1 frame in 100 would keep a label, silently."""
    faces, trace_dir, _ = video
    for path in trace_dir.glob("*.csv"):
        times, values = read_trace(path)
        write_trace(path, times + 30.0, values)
    path = trace_dir / "ann2.valence.csv"
    times, values = read_trace(path)
    write_trace(path, times * 1000.0, values)
    with pytest.raises(Affect4kError, match="written in milliseconds") as refused:
        annotate_video(
            "vid1",
            faces,
            trace_dir,
            ANNOTATORS,
            tmp_path / "out.parquet",
            source_start_s=30.0,
            max_gap_s=MAX_GAP_S,
        )
    assert "ann2.valence.csv" in str(refused.value)
    assert not (tmp_path / "out.parquet").exists()


def test_lags_that_leave_much_of_a_video_unlabelled_are_one_warning_naming_it(
    tmp_path, video, caplog
):
    """A 1 s lag on a 4 s clip: its last second loses the valence label (ann3's arousal stops
    at 2.5 s anyway, so the lag costs arousal nothing)."""
    faces, trace_dir, _ = video
    lags = {("valence", "ann1"): 1.0, ("arousal", "ann1"): 1.0}
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, tmp_path / "a.parquet", max_gap_s=MAX_GAP_S,
            lags=lags,
        )  # fmt: skip
    said = [r.getMessage() for r in caplog.records if "reaction lags leave" in r.getMessage()]
    assert len(said) == 1
    assert (
        said[0].startswith("video vid1: the reaction lags leave 2") and "min_annotators" in said[0]
    )
    assert "of its valence and 0.0 % of its arousal frames unlabelled" in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, tmp_path / "b.parquet", max_gap_s=MAX_GAP_S,
            lags={("valence", "ann1"): 0.08},
        )  # fmt: skip
    assert not [r for r in caplog.records if "reaction lags leave" in r.getMessage()]


def test_annotate_video_min_annotators_fills_the_tail(tmp_path, video):
    faces, trace_dir, n_frames = video
    out = tmp_path / "vid1.parquet"
    annotate_video("vid1", faces, trace_dir, ANNOTATORS, out, min_annotators=2, max_gap_s=MAX_GAP_S)
    table = pd.read_parquet(out)
    assert table["arousal"].notna().all()
    last = table.iloc[-1]
    assert last["arousal"] == pytest.approx((last["arousal_ann1"] + last["arousal_ann2"]) / 2)


def test_annotate_video_names_missing_annotator_file(tmp_path, video):
    faces, trace_dir, _ = video
    out = tmp_path / "vid1.parquet"
    with pytest.raises(Affect4kError) as caught:
        annotate_video("vid1", faces, trace_dir, (*ANNOTATORS, "ann4"), out, max_gap_s=MAX_GAP_S)
    assert str(trace_dir / "ann4.valence.csv") in str(caught.value)
    assert not out.exists()


def test_annotate_video_refuses_a_trace_of_another_clip(tmp_path):
    trace_dir = tmp_path / "vid2"
    for dim in ("valence", "arousal"):  # the trace belongs to a later part of some other clip
        write_trace(trace_dir / f"ann1.{dim}.csv", [10.0, 10.04], [0.1, 0.2])
    faces = write_faces(tmp_path / "faces.parquet", 50)
    out = tmp_path / "vid2.parquet"
    with pytest.raises(Affect4kError, match=r"runs to 10\.04 s but the clip lasts 2\.00 s"):
        annotate_video("vid2", faces, trace_dir, ["ann1"], out, max_gap_s=MAX_GAP_S)
    assert not out.exists()


@pytest.mark.parametrize(
    ("annotators", "min_annotators", "fragment"),
    [
        (ANNOTATORS, 4, "min_annotators"),
        (ANNOTATORS, 0, "min_annotators"),
        (["../ann1"], None, "annotators"),
        (["ann1", "ann1"], None, "duplicate"),
        ([], None, "empty"),
    ],
)
def test_annotate_video_refuses_bad_parameters(
    tmp_path, video, annotators, min_annotators, fragment
):
    faces, trace_dir, _ = video
    with pytest.raises(Affect4kError, match=fragment):
        annotate_video(
            "vid1",
            faces,
            trace_dir,
            annotators,
            tmp_path / "o.parquet",
            min_annotators=min_annotators,
            max_gap_s=MAX_GAP_S,
        )


def test_annotate_video_warns_about_trace_files_of_no_listed_annotator(tmp_path, video, caplog):
    faces, trace_dir, n_frames = video
    (trace_dir / "ann1.valance.csv").write_text(GOOD)  # misspelt dimension
    (trace_dir / "ann9.arousal.csv").write_text(GOOD)  # an annotator the config does not list
    (trace_dir / "notes.txt").write_text("not a trace\n")
    out = tmp_path / "vid1.parquet"
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, out, min_annotators=2, max_gap_s=MAX_GAP_S
        )
    warnings = [r.getMessage() for r in caplog.records if "no listed annotator" in r.getMessage()]
    assert len(warnings) == 1
    assert "video vid1" in warnings[0] and str(trace_dir) in warnings[0]
    assert "ann1.valance.csv, ann9.arousal.csv (" in warnings[0] and "notes.txt" not in warnings[0]
    assert "ann9" not in "".join(pd.read_parquet(out).columns)


def test_annotator_who_skipped_a_video_is_left_out_of_its_labels(tmp_path, video, caplog):
    """An explicit ``skipped`` trace: the others label the video (min_annotators applies)."""
    faces, trace_dir, n_frames = video
    (trace_dir / "ann2.valence.csv").write_text("skipped\nwas away that week\n")
    out = tmp_path / "vid1.parquet"
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        annotate_video("vid1", faces, trace_dir, ANNOTATORS, out, max_gap_s=MAX_GAP_S)
    table = pd.read_parquet(out)
    assert table["valence_ann2"].isna().all()
    both = table[["valence_ann1", "valence_ann3"]].to_numpy()
    np.testing.assert_allclose(table["valence"], both.mean(axis=1))  # all 3 others cover it
    assert any(
        "ann2.valence.csv" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records
    )
    # Asking for all three annotators cannot be met on this video: refused, saying why.
    with pytest.raises(
        Affect4kError,
        match=r"video vid1: no frame has a valence label from at "
        r"least 3 annotator\(s\) .*\(ann2 skipped it\)",
    ):
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, out, min_annotators=3, max_gap_s=MAX_GAP_S
        )
    assert not is_skipped(trace_dir / "ann1.valence.csv")
    with pytest.raises(Affect4kError, match="line 1: header is 'skipped'"):
        read_trace(trace_dir / "ann2.valence.csv")  # never read as samples


def test_a_video_every_annotator_skipped_is_refused(tmp_path, video):
    faces, trace_dir, _ = video
    for name in ANNOTATORS:
        (trace_dir / f"{name}.arousal.csv").write_text("\ufeffskipped\n", encoding="utf-8")
    with pytest.raises(
        Affect4kError,
        match=r"video vid1: every annotator's arousal trace .* "
        r"is marked skipped",
    ):
        annotate_video(
            "vid1", faces, trace_dir, ANNOTATORS, tmp_path / "vid1.parquet", max_gap_s=MAX_GAP_S
        )
    assert not (tmp_path / "vid1.parquet").exists()


# --- build_database: agreement ----------------------------------------------------------------

NOISE = {"ann1": 0.1, "ann2": 0.2, "ann3": 0.4}
SIGNAL_SD = 0.3
STAGES = ("raw", "aligned")


def write_video_labels(path: Path, video: str, n_frames: int, rng: np.random.Generator) -> Path:
    """Annotators = one shared signal + independent noise of known SD, so r is known."""
    table = pd.DataFrame({"video": video, "frame": np.arange(n_frames)})
    table["time_s"] = table["frame"] / CLIP_FPS
    table["face"] = True
    for dim in ("valence", "arousal"):
        signal = rng.normal(0, SIGNAL_SD, n_frames)
        for name, sd in NOISE.items():
            table[f"{dim}_{name}"] = signal + rng.normal(0, sd, n_frames)
        table[dim] = table[[f"{dim}_{name}" for name in NOISE]].mean(axis=1)
    table.loc[: n_frames // 10, "valence_ann3"] = np.nan  # ann3 skipped the start
    for dim in ("valence", "arousal"):
        for name in NOISE:
            table[f"raw.{dim}_{name}"] = table[f"{dim}_{name}"]  # no lag
    table.to_parquet(path, index=False)
    return path


def test_build_database_agreement_and_table(tmp_path):
    rng = np.random.default_rng(3)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 3000, rng) for i in range(3)]
    out, agreement_csv = tmp_path / "db" / "annotations.parquet", tmp_path / "db" / "agreement.csv"
    build_database(paths[::-1], list(NOISE), out, agreement_csv, **FUSION)

    agreement = pd.read_csv(agreement_csv)
    assert list(agreement.columns) == [
        "stage",
        "dimension",
        "annotator_a",
        "annotator_b",
        "pearson_r",
        "ccc",
        "alpha",
        "frames",
    ]
    # No lag: the traces before and after compensation are the same, and so is agreement.
    raw, aligned = (agreement[agreement["stage"] == s].reset_index(drop=True) for s in STAGES)
    pd.testing.assert_frame_equal(raw.drop(columns="stage"), aligned.drop(columns="stage"))
    by_pair = aligned[aligned["annotator_a"] != "*"]
    assert (by_pair["ccc"] <= by_pair["pearson_r"] + 1e-12).all()  # CCC <= r, always
    for dim in ("valence", "arousal"):
        rows = by_pair[by_pair["dimension"] == dim]
        pairs = {frozenset(p) for p in zip(rows["annotator_a"], rows["annotator_b"], strict=True)}
        assert len(rows) == 3 and pairs == {frozenset(p) for p in itertools.combinations(NOISE, 2)}
        for row in rows.itertuples():
            var_s, sd_a, sd_b = SIGNAL_SD**2, NOISE[row.annotator_a], NOISE[row.annotator_b]
            expected = var_s / np.sqrt((var_s + sd_a**2) * (var_s + sd_b**2))
            assert row.pearson_r == pytest.approx(expected, abs=0.03)
            with_ann3 = "ann3" in (row.annotator_a, row.annotator_b) and dim == "valence"
            assert row.frames == 3 * (3000 - (3000 // 10 + 1) * with_ann3)

    database = pd.read_parquet(out)
    assert {"video", "frame", "time_s", "valence", "arousal", "face"} <= set(database)
    assert "split" not in database  # the split stage's, so that any number of videos builds
    assert "valence_ann1" in database  # per-annotator columns are kept
    assert list(database["video"].unique()) == ["v0", "v1", "v2"]
    assert database.groupby("video")["frame"].apply(lambda f: f.is_monotonic_increasing).all()


def test_a_one_video_pilot_builds_its_database(tmp_path):
    """Issue 30 item 10: the database, agreement.csv and annotators.csv of a single video (a
    pilot) build; only the split needs several groups."""
    path = write_video_labels(tmp_path / "pilot.parquet", "pilot", 500, np.random.default_rng(1))
    out = tmp_path / "db"
    build_database(
        [path],
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        out_annotators=out / "annotators.csv",
        **FUSION,
    )
    assert set(pd.read_parquet(out / "annotations.parquet")["video"]) == {"pilot"}
    agreement = pd.read_csv(out / "agreement.csv")
    assert agreement["pearson_r"].notna().all() and len(agreement) == 2 * 2 * 4
    assert len(pd.read_csv(out / "annotators.csv")) == 2 * len(NOISE)


def test_build_database_refuses_duplicate_video_and_missing_columns(tmp_path):
    rng = np.random.default_rng(0)
    first = write_video_labels(tmp_path / "a.parquet", "same", 20, rng)
    second = write_video_labels(tmp_path / "b.parquet", "same", 20, rng)
    with pytest.raises(Affect4kError, match="video same appears in both"):
        build_database(
            [first, second],
            list(NOISE),
            tmp_path / "db.parquet",
            tmp_path / "a.csv",
            **FUSION,
        )
    with pytest.raises(Affect4kError, match="arousal_ann9") as caught:
        build_database(
            [first],
            [*NOISE, "ann9"],
            tmp_path / "db.parquet",
            tmp_path / "a.csv",
            **FUSION,
        )
    assert str(first) in str(caught.value)
    assert not (tmp_path / "db.parquet").exists()


# --- splits -----------------------------------------------------------------------------------


def frames_of(videos, n_frames=10) -> pd.DataFrame:
    return pd.DataFrame(
        [(video, frame) for video in videos for frame in range(n_frames)],
        columns=["video", "frame"],
    )


def video_sides(table: pd.DataFrame, split: np.ndarray) -> dict[str, str]:
    sides = pd.Series(split).groupby(table["video"].to_numpy()).unique()
    assert (sides.apply(len) == 1).all(), "a video is on both sides"
    return {video: values[0] for video, values in sides.items()}


def test_video_split_is_disjoint_two_to_one_and_order_independent():
    videos = [f"yt_{i:02d}" for i in range(9)]
    table = frames_of(videos)
    sides = video_sides(table, assign_split(table, "group", 1 / 3, 0, 80))
    assert sum(side == "test" for side in sides.values()) == 3
    shuffled = table.sample(frac=1, random_state=5).reset_index(drop=True)
    assert video_sides(shuffled, assign_split(shuffled, "group", 1 / 3, 0, 80)) == sides
    assert video_sides(table, assign_split(table, "group", 1 / 3, 0, 80)) == sides
    other_seeds = [
        video_sides(table, assign_split(table, "group", 1 / 3, s, 80)) for s in (1, 2, 3)
    ]
    assert any(other != sides for other in other_seeds)


def test_video_split_adding_a_video_moves_at_most_one_other():
    videos = [f"yt_{i:02d}" for i in range(12)]
    before = video_sides(frames_of(videos), assign_split(frames_of(videos), "group", 1 / 3, 4, 80))
    for extra in ("new_a", "new_b", "new_c"):
        grown = frames_of([*videos, extra])
        after = video_sides(grown, assign_split(grown, "group", 1 / 3, 4, 80))
        assert sum(after[video] != before[video] for video in videos) <= 1


def test_video_split_needs_two_videos_and_keeps_both_sides():
    two = frames_of(["a", "b"])
    assert sorted(video_sides(two, assign_split(two, "group", 0.1, 0, 80)).values()) == [
        "test",
        "train",
    ]
    with pytest.raises(Affect4kError, match="at least 2 groups"):
        assign_split(frames_of(["only"]), "group", 1 / 3, 0, 80)


def test_too_few_groups_names_the_videos_each_group_holds():
    """Three videos but two people: the refusal says which videos became one group, since the
    user listed three and would otherwise not see why three are not enough."""
    videos = ["clip_a", "clip_b", "late"]
    groups = {"clip_a": "clip_a", "late": "clip_a", "clip_b": "clip_b"}
    with pytest.raises(Affect4kError, match="at least 3 groups") as error:
        assign_split(frames_of(videos), "group", 1 / 3, 0, 80, groups, validation_fraction=0.2)
    assert "clip_a (clip_a, late); clip_b (clip_b)" in str(error.value)


def test_parts_of_one_source_never_straddle_the_split():
    """Twelve sources cut into two parts each (the study's case): each pair stays together."""
    videos = [f"src{i:02d}_part{part}" for i in range(12) for part in (1, 2)]
    groups = {video: video.split("_")[0] for video in videos}
    for seed in range(5):
        sides = video_sides(
            frames_of(videos), assign_split(frames_of(videos), "group", 1 / 3, seed, 80, groups)
        )
        for i in range(12):
            assert sides[f"src{i:02d}_part1"] == sides[f"src{i:02d}_part2"], (seed, i)
        assert sorted(set(sides.values())) == ["test", "train"]


def test_validation_is_carved_from_the_train_side_and_leaves_test_alone():
    """The study's 2:1 train:test plus 15 % of the train side's groups for validation."""
    videos = [f"src{i:02d}_part{part}" for i in range(30) for part in (1, 2)]
    groups = {video: video.split("_")[0] for video in videos}
    table = frames_of(videos)
    for seed in range(3):
        without = video_sides(table, assign_split(table, "group", 1 / 3, seed, 80, groups))
        with_validation = video_sides(
            table,
            assign_split(table, "group", 1 / 3, seed, 80, groups, validation_fraction=0.15),
        )
        per_group = {groups[video]: side for video, side in with_validation.items()}
        assert all(with_validation[video] == per_group[groups[video]] for video in videos)
        counts = pd.Series(per_group).value_counts()
        assert (counts["test"], counts["validation"], counts["train"]) == (10, 3, 17)
        test = {video for video, side in without.items() if side == "test"}
        assert {video for video, side in with_validation.items() if side == "test"} == test
        assert all(
            without[video] == "train"
            for video, side in with_validation.items()
            if side == "validation"
        )


def test_sequence_split_can_carve_validation_chunks():
    table = frames_of(["a", "b", "c"], n_frames=250)
    split = pd.Series(assign_split(table, "sequence", 1 / 3, 0, 80, validation_fraction=0.25))
    chunk = table["video"] + "/" + (table["frame"] // 80).astype(str)
    per_chunk = split.groupby(chunk).unique()
    assert (per_chunk.apply(len) == 1).all()
    assert sorted(values[0] for values in per_chunk).count("validation") == 2


def test_three_sides_need_three_groups():
    two = frames_of(["a", "b"])
    with pytest.raises(Affect4kError, match="at least 3 groups"):
        assign_split(two, "group", 1 / 3, 0, 80, validation_fraction=0.15)
    three = frames_of(["a", "b", "c"])
    sides = video_sides(three, assign_split(three, "group", 0.1, 0, 80, validation_fraction=0.1))
    assert sorted(sides.values()) == ["test", "train", "validation"]
    with pytest.raises(Affect4kError, match="validation_fraction"):
        assign_split(three, "group", 1 / 3, 0, 80, validation_fraction=1.0)


@pytest.mark.parametrize(
    ("split", "fraction", "fragment"), [("random", 1 / 3, "split"), ("group", 1.0, "test_fraction")]
)
def test_split_refuses_bad_parameters(split, fraction, fragment):
    with pytest.raises(Affect4kError, match=fragment):
        assign_split(frames_of(["a", "b"]), split, fraction, 0, 80)


def test_sequence_split_assigns_whole_chunks_two_to_one():
    table = frames_of(["a", "b", "c"], n_frames=250)  # chunks of 80: 4 per video, last has 10
    split = pd.Series(assign_split(table, "sequence", 1 / 3, 0, 80))
    chunk = table["video"] + "/" + (table["frame"] // 80).astype(str)
    per_chunk = split.groupby(chunk).unique()
    assert len(per_chunk) == 12 and (per_chunk.apply(len) == 1).all()
    assert sum(values[0] == "test" for values in per_chunk) == 4
    again = pd.Series(assign_split(table, "sequence", 1 / 3, 0, 80))
    pd.testing.assert_series_equal(split, again)
    with pytest.raises(Affect4kError, match="sequence_length"):
        assign_split(table, "sequence", 1 / 3, 0, 0)


# --- Aff-Wild2 --------------------------------------------------------------------------------


def test_read_affwild2_va_maps_marker_to_nan(tmp_path):
    path = tmp_path / "video1.txt"
    path.write_text("valence,arousal\n0.5,-0.25\n-5,-5\n-5,0.1\n-1,1\n")
    table = read_affwild2_va(path)
    assert list(table.columns) == ["frame", "valence", "arousal"]
    np.testing.assert_array_equal(table["frame"], [0, 1, 2, 3])
    np.testing.assert_array_equal(table["valence"], [0.5, np.nan, np.nan, -1.0])
    np.testing.assert_array_equal(table["arousal"], [-0.25, np.nan, 0.1, 1.0])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("arousal,valence\n0,0\n", 1, "header"),
        ("valence,arousal\n0,0\n0.2,1.5\n", 3, "arousal 1.5 is outside"),
        ("valence,arousal\n0,0\n-4,0\n", 3, "valence -4.0 is outside"),
        ("valence,arousal\n0,nan\n", 2, "'nan'"),
        ("valence,arousal\n0,0\n0,x\n", 3, "'x'"),
    ],
)
def test_read_affwild2_va_names_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "video2.txt"
    path.write_text(text)
    with pytest.raises(Affect4kError) as caught:
        read_affwild2_va(path)
    assert str(path) in str(caught.value)
    assert f"line {line}:" in str(caught.value)
    assert fragment in str(caught.value)


def test_read_affwild2_va_refuses_header_only(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("valence,arousal\n")
    with pytest.raises(Affect4kError, match="no frame lines"):
        read_affwild2_va(path)


# --- lags, fusion, reliability (affect4k.labels.fusion and the stages around it)
# --------------------


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


def test_a_lag_shifts_the_trace_and_leaves_its_end_unlabelled(tmp_path, video, caplog):
    faces, trace_dir, n_frames = video
    plain, late = tmp_path / "plain.parquet", tmp_path / "late.parquet"
    annotate_video(
        "vid1", faces, trace_dir, ANNOTATORS, plain, min_annotators=1, max_gap_s=MAX_GAP_S
    )
    lags = {("valence", "ann2"): 0.4}  # 10 frames
    with caplog.at_level(logging.INFO, logger="affect4k.labels.annotate"):
        annotate_video(
            "vid1",
            faces,
            trace_dir,
            ANNOTATORS,
            late,
            min_annotators=1,
            lags=lags,
            max_gap_s=MAX_GAP_S,
        )
    about = [r for r in caplog.records if "ann2.valence.csv" in r.getMessage()]
    assert [r.levelno for r in about] == [logging.INFO]  # expected: not a warning
    assert "shifted 0.4 s earlier" in about[0].getMessage()
    before, after = pd.read_parquet(plain), pd.read_parquet(late)
    np.testing.assert_allclose(after["valence_ann2"][:-10], before["valence_ann2"][10:])
    times, _ = read_trace(trace_dir / "ann2.valence.csv")
    uncovered = np.arange(n_frames) / CLIP_FPS > times[-1] - 0.4  # no hold past the last sample
    assert uncovered.sum() >= 10 and after["valence_ann2"][uncovered].isna().all()
    np.testing.assert_allclose(after["raw.valence_ann2"], before["valence_ann2"])
    pd.testing.assert_series_equal(after["arousal"], before["arousal"])  # no lag given there


def write_lagged_video(root: Path, video: str, lags_s: dict, rng) -> Path:
    """Traces of three annotators following one signal ``lags_s`` late (joystick-timed)."""
    trace_dir = root / video
    periods, phases = rng.uniform(2, 6, 3), rng.uniform(0, 2 * np.pi, 3)
    for dim, (name, lag) in itertools.product(("valence", "arousal"), lags_s.items()):
        times = joystick_times(rng, 12.0, start_s=0.0)
        late = times[:, None] - lag
        values = 0.3 * np.sin(2 * np.pi * late / periods + phases).sum(axis=1)
        write_trace(
            trace_dir / f"{name}.{dim}.csv", times, values + rng.normal(0, 0.03, len(times))
        )
    return trace_dir


def test_the_lags_stage_writes_every_videos_lags(tmp_path, caplog):
    rng = np.random.default_rng(4)
    truth = {"ann1": 0.4, "ann2": 1.2, "ann3": 0.0}
    dirs = {f"v{i}": write_lagged_video(tmp_path, f"v{i}", truth, rng) for i in range(3)}
    (dirs["v1"] / "ann2.arousal.csv").write_text("skipped\n")
    out = tmp_path / "lags.csv"
    with caplog.at_level(logging.INFO, logger="affect4k.labels.annotate"):
        estimate_annotation_lags(
            dirs, list(truth), out, max_lag_s=3.0, max_gap_s=MAX_GAP_S, per_video=False
        )
    table = pd.read_csv(out)
    assert list(table.columns) == ["video", "annotator", "dimension", "lag_s"]
    assert len(table) == 3 * 3 * 2
    for row in table.itertuples():
        assert row.lag_s == pytest.approx(truth[row.annotator], abs=1 / CLIP_FPS), row
    assert any("valence lags over 3 video(s)" in r.getMessage() for r in caplog.records)
    lags = lag_table("estimate", out, ["v2"], list(truth))
    assert lags.set_index("annotator").loc["ann2", "lag_s"].tolist() == pytest.approx([1.2] * 2)
    # Per video: each video's own estimate, on its own rows; none for a skipped trace.
    estimate_annotation_lags(
        dirs, list(truth), out, max_lag_s=3.0, per_video=True, max_gap_s=MAX_GAP_S
    )
    own = pd.read_csv(out).set_index(["video", "annotator", "dimension"])["lag_s"]
    assert own.pop(("v1", "ann2", "arousal")) == 0
    for (_, name, _), lag in own.items():
        assert lag == pytest.approx(truth[name], abs=1 / CLIP_FPS)


@pytest.mark.parametrize(
    ("setting", "text", "fragment"),
    [
        ("estimate", None, "needs the lags table"),
        ("estimate", "video,annotator,lag_s\n", "columns must be"),
        ("estimate", "video,annotator,dimension,lag_s\nv1,ann1,valence,0.4\n", "has no lag"),
    ],
)
def test_lag_table_refuses_what_it_cannot_use(tmp_path, setting, text, fragment):
    path = None
    if text is not None:
        path = tmp_path / "lags.csv"
        path.write_text(text)
    with pytest.raises(Affect4kError, match=fragment):
        lag_table(setting, path, ["v1"], ["ann1"])
    assert lag_table(0.5, None, ["v1"], ["ann1"])["lag_s"].tolist() == [0.5, 0.5]
    assert lag_table("none", None, ["v1"], ["ann1"])["lag_s"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("fusion", "per_video"), [("mean", False), ("ewe", False), ("ewe", True), ("median", False)]
)
def test_the_database_fuses_the_annotators_and_reports_each(tmp_path, fusion, per_video):
    rng = np.random.default_rng(5)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 2000, rng) for i in range(3)]
    out = tmp_path / "db"
    build_database(
        paths,
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        fusion=fusion,
        per_video=per_video,
        out_annotators=out / "annotators.csv",
    )
    database = pd.read_parquet(out / "annotations.parquet")
    assert not [column for column in database if column.startswith("raw.")]
    for written in ("annotators.csv", "agreement.csv"):  # 0.44, not 0.44000000000000006
        assert not re.search(r"\d\.\d{5,}", (out / written).read_text()), written
    table = pd.read_csv(out / "annotators.csv")
    assert list(table.columns) == [
        "annotator",
        "dimension",
        "lag_s",
        "weight",
        "pearson_r_raw",
        "ccc_raw",
        "pearson_r",
        "ccc",
        "ccc_label",
        "frames",
        "calibration_lag_s",
        "calibration_ccc",
    ]
    assert len(table) == 6 and (table["lag_s"] == 0).all()
    assert table["calibration_lag_s"].isna().all()  # no calibration given
    stack = database[[f"arousal_{name}" for name in NOISE]].to_numpy().T
    labelled = database["arousal"].notna()
    if fusion == "ewe":
        weights = table[table["dimension"] == "arousal"]["weight"].to_numpy()
        assert list(np.argsort(-weights)) == [0, 1, 2]  # by noise: ann1 < ann2 < ann3
        videos = database["video"].to_numpy()
        expected = np.concatenate(  # each video's own weights, or the pooled ones
            [
                fuse(
                    stack[:, videos == video],
                    "ewe",
                    ewe_weights(agreement_with_others([stack[:, videos == video]])[0])
                    if per_video
                    else weights,
                )
                for video in ("v0", "v1", "v2")
            ]
        )
    else:
        expected = fuse(stack, fusion)
    # The weights read back are rounded to CSV_DECIMALS; the labels used them unrounded.
    np.testing.assert_allclose(database.loc[labelled, "arousal"], expected[labelled], atol=1e-3)
    # Frames the annotate stage left unlabelled stay unlabelled, whatever the fusion.
    source = pd.concat(pd.read_parquet(path) for path in paths)
    assert database["valence"].isna().sum() == source["valence"].isna().sum()


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


def test_the_annotators_table_reports_the_calibration(tmp_path):
    rng = np.random.default_rng(9)
    paths = [write_video_labels(tmp_path / f"v{i}.parquet", f"v{i}", 500, rng) for i in range(3)]
    calibration = pd.DataFrame(
        [("ann1", "valence", 0.4, 0.9), ("ann2", "arousal", 1.2, 0.7)],
        columns=["annotator", "dimension", "lag_s", "ccc"],
    )
    out = tmp_path / "db"
    build_database(
        paths,
        list(NOISE),
        out / "annotations.parquet",
        out / "agreement.csv",
        out_annotators=out / "annotators.csv",
        calibration=calibration,
        **FUSION,
    )
    table = pd.read_csv(out / "annotators.csv").set_index(["annotator", "dimension"])
    assert table.loc[("ann1", "valence"), "calibration_lag_s"] == 0.4
    assert table.loc[("ann2", "arousal"), "calibration_ccc"] == 0.7
    assert table["calibration_lag_s"].isna().sum() == len(table) - 2


# --- annotators who would break the lags: flat, noise, inverted -------------------------------

#: Three good annotators' true lags (s), and three bad ones: a bar never moved, pure noise, and
#: a good lag with the scale upside down.
GOOD_LAGS = {"ann1": 0.4, "ann2": 1.2, "ann3": 0.0}
BAD = ("flat", "noise", "upside")


def write_bad_annotator_videos(root: Path, n_videos: int, duration_s: float, rng) -> dict:
    """Per video, trace files of the good annotators following one signal late and of the
    three bad ones; returns the trace folders."""
    dirs = {}
    for index in range(n_videos):
        trace_dir = root / f"v{index}"
        periods, phases = rng.uniform(2, 6, 3), rng.uniform(0, 2 * np.pi, 3)
        for dim in ("valence", "arousal"):
            for name in (*GOOD_LAGS, *BAD):
                times = joystick_times(rng, duration_s, start_s=0.0)
                lag = GOOD_LAGS.get(name, 0.8)
                signal = 0.3 * np.sin(2 * np.pi * (times[:, None] - lag) / periods + phases)
                values = signal.sum(axis=1) + rng.normal(0, 0.03, len(times))
                if name == "flat":
                    values = np.full(len(times), 0.3)
                elif name == "noise":
                    values = rng.uniform(-0.9, 0.9, len(times))
                elif name == "upside":
                    values = -values
                write_trace(trace_dir / f"{name}.{dim}.csv", times, values)
        dirs[f"v{index}"] = trace_dir
    return dirs


def test_bad_annotators_are_named_and_leave_the_good_lags_and_labels_alone(tmp_path, caplog):
    rng = np.random.default_rng(21)
    annotators = [*GOOD_LAGS, *BAD]
    dirs = write_bad_annotator_videos(tmp_path / "traces", 3, 20.0, rng)
    out, agreement = tmp_path / "lags.csv", tmp_path / "lag_agreement.csv"
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        estimate_annotation_lags(
            dirs,
            annotators,
            out,
            max_lag_s=5.0,
            max_gap_s=MAX_GAP_S,
            per_video=False,
            out_agreement=agreement,
        )
    # Agreement after compensation, under the lags applied and cross-fitted (lags fitted on
    # the other videos): both high here, where the good annotators' lags are the same
    # everywhere, and the cross-fitted one never above the in-sample one by more than noise.
    scores = pd.read_csv(agreement).set_index(["dimension", "fit"])["pearson_r"]
    assert list(pd.read_csv(agreement).columns) == ["dimension", "fit", "pearson_r", "videos"]
    for dim in ("valence", "arousal"):
        assert 0.9 < scores[dim, "cross_fitted"] <= scores[dim, "in_sample"] + 0.01
    table = pd.read_csv(out)
    for row in table[table["annotator"].isin(list(GOOD_LAGS))].itertuples():
        assert row.lag_s == pytest.approx(GOOD_LAGS[row.annotator], abs=2 / CLIP_FPS), row
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "flat never moved the bar" in warned
    assert "noise (r" in warned and "upside (r -" in warned
    # The database stage leaves them out of the label: the mean of the good ones alone.
    parquets = []
    lags = lag_table("estimate", out, list(dirs), annotators)
    for video, trace_dir in dirs.items():
        faces = write_faces(tmp_path / f"{video}.faces.parquet", 500)
        parquets.append(tmp_path / f"{video}.parquet")
        mine = lags[lags["video"] == video]
        annotate_video(
            video,
            faces,
            trace_dir,
            annotators,
            parquets[-1],
            max_gap_s=MAX_GAP_S,
            min_annotators=3,
            lags={(r.dimension, r.annotator): r.lag_s for r in mine.itertuples()},
        )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.database"):
        build_database(
            parquets,
            annotators,
            tmp_path / "db/annotations.parquet",
            tmp_path / "db/agreement.csv",
            out_annotators=tmp_path / "db/annotators.csv",
            lags=lags,
            **FUSION,
        )
    assert "flat, noise (r" in caplog.text and "upside (r -" in caplog.text
    weights = pd.read_csv(tmp_path / "db/annotators.csv").set_index("annotator")["weight"]
    assert (weights[list(BAD)] == 0).all() and weights[list(GOOD_LAGS)].tolist() == pytest.approx(
        [1 / 3] * 6, abs=1e-4
    )  # annotators.csv is rounded to 4 decimals
    database = pd.read_parquet(tmp_path / "db/annotations.parquet")
    good = database[[f"valence_{name}" for name in GOOD_LAGS]].mean(axis=1)
    labelled = database["valence"].notna()
    assert labelled.sum() > 1000
    np.testing.assert_allclose(database.loc[labelled, "valence"], good[labelled])
    for fusion in ("median", "ewe"):  # every fusion leaves them out, unless kept
        build_database(
            parquets,
            annotators,
            tmp_path / "db/annotations.parquet",
            tmp_path / "db/agreement.csv",
            out_annotators=tmp_path / "db/annotators.csv",
            lags=lags,
            **{**FUSION, "fusion": fusion},
        )
        table = pd.read_csv(tmp_path / "db/annotators.csv").set_index("annotator")
        if fusion == "ewe":
            assert (table.loc[list(BAD), "weight"] == 0).all()
        fused = pd.read_parquet(tmp_path / "db/annotations.parquet")["valence"]
        stack = database[[f"valence_{name}" for name in GOOD_LAGS]].to_numpy().T
        if fusion == "median":
            np.testing.assert_allclose(fused[labelled], fuse(stack, "median")[labelled])


def test_per_video_lags_on_a_short_video_fall_back_to_the_pooled_ones(tmp_path, caplog):
    rng = np.random.default_rng(4)
    truth_ = {"ann1": 0.4, "ann2": 1.2, "ann3": 0.0}
    dirs = {f"v{i}": write_lagged_video(tmp_path, f"v{i}", truth_, rng) for i in range(3)}
    short = tmp_path / "short"
    for path in dirs["v0"].glob("*.csv"):  # 12 s cut to 3 s: shorter than 3 x max_lag_s
        text = path.read_text().splitlines()
        kept = [line for line in text[1:] if float(line.split(",")[0]) <= 3.0]
        (short / path.name).parent.mkdir(exist_ok=True)
        (short / path.name).write_text("\n".join([text[0], *kept]) + "\n")
    dirs["short"] = short
    out = tmp_path / "lags.csv"
    with caplog.at_level(logging.WARNING, logger="affect4k.labels.annotate"):
        estimate_annotation_lags(
            dirs, list(truth_), out, max_lag_s=2.0, max_gap_s=MAX_GAP_S, per_video=True
        )
    assert "video short: valence lags per video need 3 x max_lag_s (6 s)" in caplog.text
    assert "video v1:" not in caplog.text
    table = pd.read_csv(out).set_index(["video", "annotator", "dimension"])["lag_s"]
    for name, lag in truth_.items():  # pooled: right even on the 3 s video
        assert table["short", name, "valence"] == pytest.approx(lag, abs=1 / CLIP_FPS)


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


def test_a_lag_that_leaves_an_annotator_no_frame_is_a_warning_naming_both(tmp_path, video, caplog):
    faces, trace_dir, n_frames = video
    with caplog.at_level(logging.INFO, logger="affect4k.labels.annotate"):
        annotate_video(
            "vid1",
            faces,
            trace_dir,
            ANNOTATORS,
            tmp_path / "late.parquet",
            min_annotators=1,
            lags={("valence", "ann2"): n_frames / CLIP_FPS + 1},
            max_gap_s=MAX_GAP_S,
        )
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "ann2.valence.csv (video vid1)" in m and "leaves this annotator no frame" in m
        for m in warned
    ), warned
