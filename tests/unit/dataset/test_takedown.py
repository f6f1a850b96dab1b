"""Takedown requests: checked, matched to a video or YouTube id, every file of the video found,
and each takedown a new patch version (affect4k.dataset.takedown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affect4k.config.schema import schema_default
from affect4k.config.video_list import VideoEntry
from affect4k.core.errors import Affect4kError
from affect4k.dataset.metadata import release_version
from affect4k.dataset.takedown import Takedown, read_takedowns, taken_down, video_files

# ---- without the workflow


def test_takedown_requests_are_checked_and_match_video_or_youtube_ids(tmp_path: Path):
    path = tmp_path / "takedown.tsv"
    path.write_text("id\tdate\treason\n# a comment\nclip1\t2026-01-02\tasked\n")
    assert read_takedowns(path) == [Takedown("clip1", "2026-01-02", "asked")]
    for text, message in (
        ("video\tdate\treason\n", "header id date reason"),
        ("id\tdate\treason\nclip1\t2 Jan\tasked\n", ":2: date '2 Jan' is not YYYY-MM-DD"),
        ("id\tdate\treason\nclip1\t2026-01-02\t\n", ":2: a takedown needs its reason"),
        ("id\tdate\treason\nclip1\t2026-01-02\n", ":2: expected 3 tab-separated cells"),
        ("id\tdate\treason\na\t2026-01-02\tx\na\t2026-01-03\ty\n", ":3: a is listed twice"),
    ):
        path.write_text(text)
        with pytest.raises(Affect4kError, match=message):
            read_takedowns(path)
    youtube = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    videos = {
        "part1": VideoEntry("part1", youtube, 0, 10, "g"),
        "part2": VideoEntry("part2", f"{youtube}&t=30", 30, 40, "g"),
        "other": VideoEntry("other", "clips/other.mp4", None, None, "o"),
        "kept": VideoEntry("kept", "clips/kept.mp4", None, None, "k"),
    }
    requests = [Takedown("dQw4w9WgXcQ", "2026-01-02", "a"), Takedown("other", "2026-01-03", "b")]
    assert sorted(taken_down(requests, videos)) == ["other", "part1", "part2"]


def test_a_videos_files_are_found_by_name_in_every_folder(tmp_path: Path):
    made = [
        "results/clips/v1.avi",
        "results/faces/v1.identities.parquet",
        "results/frames/v1/000000.jpg",
        "results/faces/v10.npy",
        "logs/faces/v1.log",
        "resources/downloads/v1.mkv",
        "resources/demo/sources/v1.mp4",
        # Shared outputs whose names a video id may repeat: never a video's own.
        "results/annotations.parquet",
        "results/models/annotations/model.keras",
        "results/models/r1/history.csv",
        "results/predictions/r1/test.parquet",
        "logs/annotations.log",
    ]
    for name in made:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = {str(path.relative_to(tmp_path)) for path in video_files(["v1"], tmp_path)}
    named_like_shared = video_files(["annotations", "models", "history", "test"], tmp_path)
    assert named_like_shared == [], named_like_shared
    # Not another video's (v10), not a source the demo generates outside results/.
    assert found == {
        "results/clips/v1.avi",
        "results/faces/v1.identities.parquet",
        "results/frames/v1",
        "logs/faces/v1.log",
        "resources/downloads/v1.mkv",
    }


def test_each_takedown_raises_the_patch_version():
    assert release_version("1.2.0", 0) == "1.2.0"
    assert release_version("1.2.3", 2) == "1.2.5"
    assert schema_default("release.version") == "1.0.0"
