"""Web copies of the clips a workflow built, and the app's traces on a workspace built under
either time origin."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.annotation_app import app_of, curve
from helpers.sources import framemd5
from helpers.workflow import demo_config, run_snakemake, write_config

from affect4k import CLIP_FPS
from affect4k.config.schema import from_schema
from affect4k.core.errors import Affect4kError
from affect4k.core.media import probe_video
from affect4k.labels.traces import read_trace
from affect4k.video.clip import ClipEncoding, make_clip
from affect4k.video.web_copy import make_web_copy


def test_web_copy_of_an_h264_clip_is_the_clips_own_frames(workspace, tmp_path):
    """An H.264 clip (clips.codec: libx264) is stream-copied: the very same frames and pts."""
    encoding = replace(from_schema(ClipEncoding, "clips"), codec="libx264")
    source = workspace / "resources/demo/sources/clip_a.mp4"
    clip, web = tmp_path / "clip_a.avi", tmp_path / "clip_a.mp4"
    make_clip(source, clip, video_id="clip_a", start=None, end=None, encoding=encoding)
    written = make_web_copy(clip, web, video_id="clip_a", encoding=encoding)
    assert written == len(framemd5(clip)) and probe_video(web).codec == "h264"
    assert framemd5(web) == framemd5(clip)


def test_web_copy_refuses_a_clip_that_is_not_25_fps(workspace, tmp_path):
    source = workspace / "resources/demo/sources/clip_a.mp4"  # 30 fps
    with pytest.raises(Affect4kError, match="clip_a.*30.*25 fps"):
        make_web_copy(
            source,
            tmp_path / "clip_a.mp4",
            video_id="clip_a",
            encoding=from_schema(ClipEncoding, "clips"),
        )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def offset_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 25 fps demo video whose clip starts 1 s into its 3 s source (50 frames)."""
    work = tmp_path_factory.mktemp("offset")
    rows = "video_id\turl\tstart\tend\nramp\tresources/demo/sources/ramp.mp4\t1\t\n"
    (work / "videos.tsv").write_text(rows)
    write_config(work, demo_config({"ramp": (25, "astronaut")}, seconds=3))
    run_snakemake(work, "results/web/ramp.mp4", "results/faces/ramp.parquet")
    return work


@pytest.mark.parametrize(("origin", "offset"), [("source", 1.0), ("clip", 0.0)])
def test_app_traces_land_on_their_frames_under_either_time_origin(offset_workspace, origin, offset):
    work, n_frames = offset_workspace, 50
    config = demo_config({"ramp": (25, "astronaut")}, seconds=3)
    config |= {"annotations": f"traces-{origin}", "annotators": ["a1", "a2"]}
    config["annotation"] = {"time_origin": origin}
    (work / f"{origin}.yaml").write_text(yaml.safe_dump(config))
    app = app_of(work, work / f"{origin}.yaml", annotator="a1")
    assert app.copies.frames("ramp") == n_frames
    values = curve(n_frames)
    clip_times = [f / CLIP_FPS for f in range(n_frames)]
    folder = work / f"traces-{origin}/ramp"
    folder.mkdir(parents=True)
    for dimension in ("valence", "arousal"):
        # a2's trace from another tool, in the config's origin: the same values on the same frames.
        lines = [f"{t + offset:.4f},{v}" for t, v in zip(clip_times, values, strict=True)]
        (folder / f"a2.{dimension}.csv").write_text("time_s,value\n" + "\n".join(lines) + "\n")
        version = app.files("ramp", dimension).version()
        payload = {"time_s": clip_times, "value": values, "done": True, "version": version}
        state = app.save("ramp", dimension, payload)
        times, _ = read_trace(folder / f"a1.{dimension}.csv")
        np.testing.assert_allclose(times, np.array(clip_times) + offset, atol=1e-9)
        # The page gets it back in clip time, frame for frame, and compares like with like.
        assert state["values"] == values
        assert state["agreement"]["video"]["pairs"] == [
            {"annotator": "a2", "pearson_r": 1.0, "frames": n_frames}
        ]
    run_snakemake(work, "results/annotations/ramp.parquet", config=work / f"{origin}.yaml")
    labels = pd.read_parquet(work / "results/annotations/ramp.parquet")
    for dimension in ("valence", "arousal"):
        np.testing.assert_allclose(labels[f"{dimension}_a1"], values, atol=1e-6)
        np.testing.assert_allclose(labels[dimension], values, atol=1e-6)
