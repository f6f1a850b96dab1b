"""The train/validation/test split by person and source (affect4k.labels.split)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affect4k.core.errors import Affect4kError
from affect4k.labels.split import assign_split


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
