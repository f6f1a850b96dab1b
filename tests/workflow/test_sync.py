"""The demo's signal is learnable through the whole chain, and only while frames and labels agree.

A small demo corpus goes through the real workflow (demo sources, yt-dlp, 25 fps clips, MTCNN,
alignment, annotation resampling, split, training, prediction, tables). A model that sees the
labels of its own frames must reach a clearly positive test CCC; the same model trained on
labels shuffled across videos must not. An off-by-N anywhere between a frame and its label
(clip timing, crop rows, resampling, loader, prediction rows) erodes the first number.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.workflow import demo_config, run_snakemake, write_config

from affect4k.demo import DEMO_FACES

RUN = {"model": "alexnet_gru"}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> pd.DataFrame:
    work = tmp_path_factory.mktemp("sync")
    # Every identity the demo has: the test split holds people the model never saw.
    videos = {f"sync{i}": (30, face) for i, face in enumerate(DEMO_FACES)}
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in videos]
    (work / "videos.tsv").write_text("\n".join(rows) + "\n")
    training = {
        "defaults": SYNC_TRAINING,
        "runs": {"learned": RUN, "shuffled": {**RUN, "shuffle_labels": True}},
    }
    # The demo's own labels (config/config.yaml): its annotators react 0-2 s late, so a plain
    # mean of their traces smears the signal that the model must find.
    annotation = {"time_origin": "source", "lag": "estimate", "fusion": "ewe", "min_annotators": 2}
    write_config(work, demo_config(videos, seconds=8, training=training, annotation=annotation))
    run_snakemake(work, "results/tables.csv")
    table = pd.read_csv(work / "results/tables.csv")
    return table[table["eval_set"] == "test"].set_index("run")


SYNC_TRAINING = {
    "epochs": 30,
    "sequence_length": 20,
    "learning_rate": 1.0e-4,
    "width": 0.125,
}


def test_a_model_learns_the_demo_signal(table):
    assert table.loc["learned", "scored"] == "test"
    assert table.loc["learned", "mean_ccc"] >= 0.5


def test_labels_shuffled_across_videos_teach_nothing(table):
    assert table.loc["shuffled", "mean_ccc"] <= 0.15
