"""The annotate and lags stages: an annotator's traces shifted by their lag and resampled into
one video's per-frame labels (affect4k.labels.annotate)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.traces import (
    ANNOTATORS,
    FUSION,
    GOOD,
    MAX_GAP_S,
    joystick_times,
    write_faces,
    write_trace,
)

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.labels.annotate import annotate_video, estimate_annotation_lags, lag_table
from affect4k.labels.database import build_database
from affect4k.labels.fusion import fuse
from affect4k.labels.traces import is_skipped, read_trace, resample_trace


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
