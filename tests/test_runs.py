"""Run entries of the config -> one settings dict per training job."""

import pytest

from affect4k.errors import Affect4kError
from affect4k.runs import NATIVE, expand_runs, frame_size


def test_defaults_are_overlaid_by_the_entry():
    runs = expand_runs({"a": {"model": "vgg16_gru", "epochs": 3}}, {"epochs": 50, "width": 0.5})
    assert runs == {"a": {"model": "vgg16_gru", "epochs": 3, "width": 0.5, "resolution": NATIVE}}


def test_list_options_form_the_seeds_grid():
    grid = {"model": "vgg16_gru", "batch_size": [2, 4, 6], "sequence_length": [60, 80, 100]}
    runs = expand_runs({"vgg": grid})
    assert len(runs) == 9
    run = runs["vgg-batch_size4-sequence_length80"]
    assert (run["batch_size"], run["sequence_length"]) == (4, 80)


def test_ablation_copies_a_run_at_the_lower_resolution():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru", "batch_size": [2, 4]}, "cnn": {"model": "vgg16_cnn"}},
        ablation_runs=["vgg"],
        ablation_resolution="640x360",
    )
    low = {name: run for name, run in runs.items() if run["resolution"] == "640x360"}
    assert sorted(low) == ["vgg-batch_size2-640x360", "vgg-batch_size4-640x360"]
    assert runs["vgg-batch_size2"]["resolution"] == NATIVE


def test_ablation_of_an_unknown_run_names_it():
    with pytest.raises(Affect4kError, match="'nope'"):
        expand_runs({"a": {"model": "vgg16_gru"}}, ablation_runs=["nope"])


def test_frame_size():
    assert frame_size("640x360") == (640, 360)
    assert frame_size(NATIVE) is None
