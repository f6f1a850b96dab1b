"""The annotation app without a browser: its status, drafts and the videos it refuses
(affect4k.commands.annotation_app.app)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.annotation_app import ME, app_of, idle_app, videos_tsv

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.app import AnnotationApp
from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.labels.calibration import CALIBRATION_ID


def test_status_reads_the_trace_and_the_draft(tmp_path):
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"videos": "videos.tsv", "annotations": "traces"}))
    folder = tmp_path / "traces/clip_b"
    folder.mkdir(parents=True)
    (folder / f"{ME}.valence.csv").write_text("time_s,value\n0,0\n1,0\n")
    (folder / f"{ME}.arousal.draft.csv").write_text("time_s,value\n0,0\n1,0\n")
    (folder / "a1.arousal.csv").write_text("time_s,value\n0,0\n1,0\n")
    app = AnnotationApp.from_config(ME, config, workdir=tmp_path, snakefile=REPO / "Snakefile")
    overview = app.overview()
    assert overview["annotator"] == ME
    not_started = {"done": False, "draft": False, "skipped": False}
    assert overview["videos"] == [
        {"video": "clip_a", "valence": not_started, "arousal": not_started},
        {
            "video": "clip_b",
            "valence": {"done": True, "draft": False, "skipped": False},
            "arousal": {"done": False, "draft": True, "skipped": False},
        },
    ]


def test_drafts_are_not_reported_as_traces_of_unlisted_annotators(tmp_path, caplog):
    from affect4k.labels.annotate import annotate_video

    faces = pd.DataFrame({"frame": np.arange(50), "time_s": np.arange(50) / CLIP_FPS, "face": True})
    faces.to_parquet(tmp_path / "faces.parquet")
    folder = tmp_path / "traces"
    folder.mkdir()
    for name in ("a1.valence", "a1.arousal", "a1.valence.draft", "a9.valence"):
        (folder / f"{name}.csv").write_text("time_s,value\n0,0\n2,0\n")
    annotate_video(
        "v",
        tmp_path / "faces.parquet",
        folder,
        ["a1"],
        tmp_path / "out.parquet",
        max_gap_s=schema_default("annotation.max_gap_s"),
    )
    warnings = [r.getMessage() for r in caplog.records if "no listed annotator" in r.getMessage()]
    assert len(warnings) == 1 and "a9.valence.csv" in warnings[0]
    assert "a1.valence.draft.csv" not in warnings[0]


def test_a_video_with_the_calibration_clips_id_is_refused_by_the_app(tmp_path):
    idle_app(tmp_path)
    (tmp_path / "videos.tsv").write_text(videos_tsv() + f"{CALIBRATION_ID}\tx.mp4\t5\t\n")
    with pytest.raises(Affect4kError, match=f"the id {CALIBRATION_ID} is the calibration clip"):
        app_of(tmp_path)
