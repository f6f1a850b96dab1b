"""The workflow end to end on a small demo corpus: contracts, bad input and caching.

One scratch workspace is built once (module fixture) with a reduced demo config (3 small clips
plus one video whose URL cannot be fetched) and every test reads it.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import demo_config, planned_jobs, run_snakemake, write_config

from affect4k import CLIP_FPS
from affect4k.core.media import count_frames, probe_video
from affect4k.labels.calibration import CALIBRATION_ID, DURATION_S, truth
from affect4k.labels.calibration import trace_path as calibration_trace

DEMO = {"clip_a": (30, "astronaut"), "clip_b": (29.97, "tom_hanks"), "clip_c": (50, "t1:0")}
TRIM = {"clip_b": (0.5, 3.5)}
BROKEN_URL = "http://127.0.0.1:9/unavailable.mp4"
ANNOTATORS = ["a1", "a2", "a3", "a4"]
STAGES = ("raw", "aligned")


def _videos_tsv(include_broken: bool) -> str:
    rows = ["video_id\turl\tstart\tend"]
    for video in DEMO:
        start, end = TRIM.get(video, ("", ""))
        rows.append(f"{video}\tresources/demo/sources/{video}.mp4\t{start}\t{end}")
    if include_broken:
        rows.append(f"broken\t{BROKEN_URL}\t\t")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Build the database with --keep-going while one URL is broken, then drop it and rerun."""
    work = tmp_path_factory.mktemp("workflow")
    (work / "videos.tsv").write_text(_videos_tsv(include_broken=True))
    broken_traces = work / "resources/demo/annotations/broken"
    broken_traces.mkdir(parents=True)
    for annotator in ANNOTATORS:
        for dimension in ("valence", "arousal"):
            (broken_traces / f"{annotator}.{dimension}.csv").write_text("time_s,value\n0,0\n9,0\n")
    write_config(work, demo_config(DEMO, seconds=4, annotators=ANNOTATORS))
    failed = run_snakemake(work, "--keep-going", "results/annotations.parquet", check=False)
    (work / "videos.tsv").write_text(_videos_tsv(include_broken=False))
    plan = run_snakemake(work, "--dry-run", "results/annotations.parquet")
    run_snakemake(work, "results/annotations.parquet")
    return {"dir": work, "failed": failed, "plan_after_fix": plan}


def test_unavailable_url_fails_only_its_video(workspace):
    failed = workspace["failed"]
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "rule download" in output and "video=broken" in output
    assert BROKEN_URL in output, "the error must name the URL"
    assert "logs/download/broken.log" in output


def test_rerun_after_dropping_the_broken_video_only_builds_the_database(workspace):
    assert planned_jobs(workspace["plan_after_fix"].stdout) == {"database": 1}


def test_second_run_does_nothing(workspace):
    result = run_snakemake(workspace["dir"], "--dry-run", "results/annotations.parquet")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_one_trace_reruns_only_that_video(workspace):
    work = workspace["dir"]
    trace = work / "resources/demo/annotations/clip_a/a2.valence.csv"
    original = trace.read_text()
    try:
        lines = original.splitlines()
        lines[1] = lines[1].split(",")[0] + ",0.5"
        trace.write_text("\n".join(lines) + "\n")
        result = run_snakemake(work, "--dry-run", "results/annotations.parquet")
        assert planned_jobs(result.stdout) == {"annotate": 1, "database": 1}
        assert "video=clip_a" in result.stdout
    finally:
        trace.write_text(original)
        run_snakemake(work, "--touch", "results/annotations.parquet")


def test_a_download_is_deleted_once_clipped_and_a_changed_trim_fetches_it_again(workspace):
    """download.keep_source is false by default: the sources are temp(). Nothing reruns for
    their absence (test_second_run_does_nothing); a new start/end cuts the clip again from a
    fresh download of that video alone."""
    work = workspace["dir"]
    assert sorted((work / "results/clips").glob("*.avi"))
    assert list(work.glob("resources/downloads/*.mkv")) == []
    videos = work / "videos.tsv"
    original = videos.read_text()
    try:
        videos.write_text(original.replace("clip_b.mp4\t0.5\t3.5", "clip_b.mp4\t1.0\t3.5"))
        result = run_snakemake(work, "--dry-run", "results/annotations.parquet")
        plan = planned_jobs(result.stdout)
        assert {rule: plan.pop(rule) for rule in ("download", "clip", "faces")} == {
            "download": 1,
            "clip": 1,
            "faces": 1,
        }
        assert set(plan) <= {"annotate", "database"}
        assert "video=clip_b" in result.stdout and "video=clip_a" not in result.stdout
    finally:
        videos.write_text(original)
    result = run_snakemake(work, "--dry-run", "results/annotations.parquet")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_clips_are_25_fps_with_the_trimmed_length(workspace):
    for video in DEMO:
        clip = workspace["dir"] / f"results/clips/{video}.avi"
        info = probe_video(clip)
        assert info.fps == CLIP_FPS
        start, end = TRIM.get(video, (0.0, 4.0))
        assert abs(count_frames(clip) - round((end - start) * CLIP_FPS)) <= 1


def test_every_frame_is_in_sync_from_clip_to_crop_to_label(workspace):
    work = workspace["dir"]
    database = pd.read_parquet(work / "results/annotations.parquet")
    assert {"video", "frame", "time_s", "valence", "arousal", "face"} <= set(database)
    assert sorted(database["video"].unique()) == sorted(DEMO)
    for video, rows in database.groupby("video"):
        frames = count_frames(work / f"results/clips/{video}.avi")
        faces = pd.read_parquet(work / f"results/faces/{video}.parquet")
        crops = np.load(work / f"results/faces/{video}.npy", mmap_mode="r")
        assert len(rows) == len(faces) == crops.shape[0] == frames
        assert rows["frame"].tolist() == list(range(frames))
        np.testing.assert_allclose(rows["time_s"], np.arange(frames) / CLIP_FPS)
        assert rows["face"].tolist() == faces["face"].tolist()
        assert crops.shape[1:] == (112, 112, 3) and crops.dtype == np.uint8
        assert not crops[~faces["face"].to_numpy()].any(), "no-face rows must be zero crops"
        assert faces["face"].mean() > 0.5, f"faces found in too few frames of {video}"


def test_agreement_annotators_and_split(workspace):
    work = workspace["dir"]
    agreement = pd.read_csv(work / "results/agreement.csv")
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
    assert len(agreement) == 2 * 2 * (6 + 1)  # stages x dimensions x (pairs + everyone)
    assert agreement["pearson_r"].between(-1, 1).all() and agreement["alpha"].le(1).all()
    # No lag is set: before and after compensation are the same traces.
    raw, aligned = (agreement[agreement["stage"] == s].drop(columns="stage") for s in STAGES)
    pd.testing.assert_frame_equal(raw.reset_index(drop=True), aligned.reset_index(drop=True))
    annotators = pd.read_csv(work / "results/annotators.csv")
    assert sorted(annotators["annotator"].unique()) == ANNOTATORS
    assert (annotators["lag_s"] == 0).all() and annotators["weight"].eq(0.25).all()
    assert annotators["ccc"].between(0, 1).all()
    # The database has no sides: the split stage gives them, from the faces of its people.
    assert "split" not in pd.read_parquet(work / "results/annotations.parquet")
    assert not (work / "results/split.csv").exists()
    run_snakemake(work, "results/split.csv")
    sides = pd.read_parquet(work / "results/split.parquet")
    assert (sides.groupby("video")["split"].nunique() == 1).all(), "the split is video-disjoint"
    assert set(sides["split"]) == {"train", "validation", "test"}
    split = pd.read_csv(work / "results/split.csv").set_index("video")
    assert list(split.columns) == ["person", "group", "split", "frames"]
    assert split["person"].nunique() == len(DEMO), "three faces, three people"
    assert (split["split"] == sides.groupby("video")["split"].first()).all()


@pytest.mark.parametrize(
    ("change", "jobs"),
    [
        ({"lag": 0.5}, {"annotate": 3, "database": 1}),
        ({"lag": "estimate", "max_lag_s": 2.5}, {"lags": 1, "annotate": 3, "database": 1}),
        ({"fusion": "ewe"}, {"database": 1}),
        ({"fusion": "median", "per_video": True}, {"database": 1}),
    ],
)
def test_changing_lag_or_fusion_reruns_the_label_stages_only(workspace, change, jobs):
    """Params: a changed lag reruns annotate and database, a changed fusion database only;
    never download, clip or faces."""
    work = workspace["dir"]
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["annotation"] = {**config["annotation"], **change}
    changed = work / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    plan = run_snakemake(work, "--dry-run", "results/annotations.parquet", config=changed)
    assert planned_jobs(plan.stdout) == jobs, plan.stdout[-3000:]  # no download, clip, faces
    # Rerun for their changed params (with `estimate`, for the new lags table first).
    reasons = plan.stdout.split("Reasons:")[1].lower()
    assert "lags" in jobs or "params have changed since last execution" in reasons


def write_calibration(annotations, annotator: str, dimension: str, lag_s: float) -> None:
    """A noiseless calibration trace ``lag_s`` late, sampled every 40 ms."""
    path = calibration_trace(annotations, annotator, dimension)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = np.arange(0, DURATION_S, 0.04)
    rows = zip(times, truth(dimension, times - lag_s), strict=True)
    path.write_text("time_s,value\n" + "".join(f"{t:.3f},{v:.5f}\n" for t, v in rows))


def test_lag_measured_shifts_each_annotator_by_their_calibration(workspace):
    """Calibration traces are inputs of the calibration stage and, under lag: measured, of
    every annotate job: each annotator's labels are their raw trace shifted by their lag."""
    work = workspace["dir"]
    annotations = work / "resources/demo/annotations"
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["annotation"] = {**config["annotation"], "lag": "measured"}
    changed = work / "measured.yaml"
    changed.write_text(yaml.safe_dump(config))
    missing = run_snakemake(work, "--dry-run", config=changed, check=False)
    assert missing.returncode != 0
    assert "_calibration/a1.valence.csv is missing" in missing.stdout + missing.stderr
    lags = dict(zip(ANNOTATORS, (0.0, 0.4, 1.0, 0.2), strict=True))
    try:
        for (name, lag), dim in itertools.product(lags.items(), ("valence", "arousal")):
            write_calibration(annotations, name, dim, lag)
        plan = run_snakemake(work, "--dry-run", "results/annotations.parquet", config=changed)
        assert planned_jobs(plan.stdout) == {"calibration": 1, "annotate": 3, "database": 1}
        run_snakemake(work, "results/annotations.parquet", config=changed)
        table = pd.read_parquet(work / "results/annotations/clip_a.parquet")
        for name, lag in lags.items():
            frames = round(lag * CLIP_FPS)
            shifted = table[f"valence_{name}"].to_numpy()
            raw = table[f"raw.valence_{name}"].to_numpy()
            # Where the shift left a value (not the raw trace's hold after its last sample).
            kept = np.isfinite(shifted[: len(raw) - frames])
            assert kept.mean() > 0.9
            np.testing.assert_allclose(shifted[: len(raw) - frames][kept], raw[frames:][kept])
        annotators = pd.read_csv(work / "results/annotators.csv")
        for row in annotators.itertuples():
            assert row.calibration_lag_s == pytest.approx(lags[row.annotator]), row
            assert row.lag_s == pytest.approx(lags[row.annotator]) and row.calibration_ccc > 0.99
        # One calibration trace edited: the calibration stage and the label stages rerun.
        write_calibration(annotations, "a2", "arousal", 0.6)
        plan = run_snakemake(work, "--dry-run", "results/annotations.parquet", config=changed)
        assert planned_jobs(plan.stdout) == {"calibration": 1, "annotate": 3, "database": 1}
    finally:
        shutil.rmtree(annotations / CALIBRATION_ID, ignore_errors=True)
        run_snakemake(work, "results/annotations.parquet")


def test_a_video_cannot_take_the_calibration_folder(tmp_path):
    (tmp_path / "videos.tsv").write_text(
        f"video_id\turl\tstart\tend\n{CALIBRATION_ID}\thttps://example.org/v\t\t\n"
    )
    config = write_config(tmp_path, {"videos": "videos.tsv", "annotations": "annotations"})
    result = run_snakemake(tmp_path, "--dry-run", config=config, check=False)
    assert result.returncode != 0
    assert f"the id {CALIBRATION_ID} is the calibration clip's" in result.stdout + result.stderr


def test_a_clips_key_the_codec_ignores_is_refused_as_written(tmp_path):
    """The workflow checks the clips section as the user wrote it, before the schema's
    defaults fill in every codec's keys."""
    (tmp_path / "videos.tsv").write_text(
        "video_id\turl\tstart\tend\nv1\thttps://example.org/v\t\t\n"
    )
    config = {"videos": "videos.tsv", "annotations": "annotations", "clips": {"crf": 20}}
    result = run_snakemake(
        tmp_path, "--dry-run", config=write_config(tmp_path, config), check=False
    )
    assert result.returncode != 0
    assert "clips.crf: only codec libx264 reads it" in result.stdout + result.stderr
    config["clips"]["codec"] = "libx264"
    plan = run_snakemake(
        tmp_path, "--dry-run", "results/clips/v1.avi", config=write_config(tmp_path, config)
    )
    assert planned_jobs(plan.stdout) == {"download": 1, "clip": 1}


def test_frames_folder_is_an_explicit_target(workspace):
    work = workspace["dir"]
    assert not (work / "results/frames").exists()
    run_snakemake(work, "results/frames/clip_a")
    images = sorted((work / "results/frames/clip_a").glob("*.jpg"))
    assert images[0].name == "000000.jpg"
    assert len(images) == count_frames(work / "results/clips/clip_a.avi")
    shutil.rmtree(work / "results/frames")


@pytest.mark.parametrize(
    ("change", "key"),
    [({"faces": {"detector": "dlib"}}, "detector"), ({"annotators": "a1"}, "annotators")],
)
def test_config_breaking_the_schema_names_the_key(tmp_path, change, key):
    config = {"videos": "videos.tsv", "annotations": "annotations", **change}
    (tmp_path / "videos.tsv").write_text("video_id\turl\tstart\tend\n")
    result = run_snakemake(
        tmp_path, "--dry-run", config=write_config(tmp_path, config), check=False
    )
    assert result.returncode != 0
    assert key in result.stdout + result.stderr


def test_shell_metacharacters_in_an_id_are_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "videos.tsv").write_text(
        f"video_id\turl\tstart\tend\nx$(touch {marker})\thttps://example.org/v\t\t\n"
    )
    config = write_config(tmp_path, {"videos": "videos.tsv", "annotations": "annotations"})
    result = run_snakemake(tmp_path, "--dry-run", config=config, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "videos.tsv:2" in output and "Traceback" not in output
    assert not marker.exists()


def test_a_missing_annotator_file_is_named(tmp_path):
    (tmp_path / "videos.tsv").write_text(
        "video_id\turl\tstart\tend\nv1\thttps://example.org/v\t\t\n"
    )
    (tmp_path / "annotations/v1").mkdir(parents=True)
    config = write_config(
        tmp_path, {"videos": "videos.tsv", "annotations": "annotations", "annotators": ["a1"]}
    )
    result = run_snakemake(tmp_path, "--dry-run", config=config, check=False)
    assert result.returncode != 0
    assert "annotations/v1/a1.valence.csv" in result.stdout + result.stderr


def test_lint_is_clean():
    result = run_snakemake(REPO, "--lint", config=REPO / "config/config.yaml", check=False)
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr
