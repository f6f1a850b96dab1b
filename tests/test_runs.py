"""Run entries of the config -> one settings dict per training job."""

import pytest

from affect4k.errors import Affect4kError
from affect4k.runs import NATIVE, expand_runs, source_height


def test_defaults_are_overlaid_by_the_entry():
    runs = expand_runs({"a": {"model": "vgg16_gru", "epochs": 3}}, {"epochs": 50, "width": 0.5})
    assert runs == {
        "a": {
            "model": "vgg16_gru",
            "epochs": 3,
            "width": 0.5,
            "resolution": NATIVE,
            "ablation_of": None,
            "entry": "a",
            "config": "a",
        }
    }


def test_list_options_form_the_seeds_grid():
    grid = {"model": "vgg16_gru", "batch_size": [2, 4, 6], "sequence_length": [60, 80, 100]}
    runs = expand_runs({"vgg": grid})
    assert len(runs) == 9
    run = runs["vgg-batch_size4-sequence_length80"]
    assert (run["batch_size"], run["sequence_length"]) == (4, 80)


def test_ablation_is_a_grid_of_source_heights_and_input_sizes():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru", "batch_size": [2, 4]}, "cnn": {"model": "vgg16_cnn"}},
        ablation={"runs": ["vgg"], "heights": [NATIVE, 360], "input_sizes": [96, 112]},
    )
    cells = {name: run for name, run in runs.items() if run["ablation_of"]}
    # Per grid run: 2 heights x 2 sizes, less the native x 96 cell, which is the run itself.
    assert sorted(cells) == [
        "vgg-batch_size2-h360-in112",
        "vgg-batch_size2-h360-in96",
        "vgg-batch_size2-native-in112",
        "vgg-batch_size4-h360-in112",
        "vgg-batch_size4-h360-in96",
        "vgg-batch_size4-native-in112",
    ]
    cell = runs["vgg-batch_size4-h360-in112"]
    assert (cell["resolution"], cell["input_size"], cell["batch_size"]) == ("h360", 112, 4)
    assert cell["ablation_of"] == "vgg-batch_size4"
    assert runs["vgg-batch_size2"]["resolution"] == NATIVE


def test_ablation_of_an_unknown_run_names_it():
    with pytest.raises(Affect4kError, match="'nope'"):
        expand_runs({"a": {"model": "vgg16_gru"}}, ablation={"runs": ["nope"]})


def test_source_height():
    assert source_height("h360") == 360
    assert source_height(NATIVE) is None


def test_seeds_repeat_each_configuration_and_are_no_grid():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru", "batch_size": [2, 4], "seeds": [0, 7]}},
        ablation={"runs": ["vgg"], "heights": [NATIVE, 360], "input_sizes": [96]},
    )
    assert sorted(runs) == [
        "vgg-batch_size2-h360-in96-seed0",
        "vgg-batch_size2-h360-in96-seed7",
        "vgg-batch_size2-seed0",
        "vgg-batch_size2-seed7",
        "vgg-batch_size4-h360-in96-seed0",
        "vgg-batch_size4-h360-in96-seed7",
        "vgg-batch_size4-seed0",
        "vgg-batch_size4-seed7",
    ]
    run = runs["vgg-batch_size4-h360-in96-seed7"]
    assert (run["seed"], run["config"], run["entry"]) == (7, "vgg-batch_size4-h360-in96", "vgg")
    assert run["ablation_of"] == "vgg-batch_size4" and "seeds" not in run
    single = expand_runs({"a": {"model": "vgg16_cnn", "seeds": [3]}})
    assert list(single) == ["a"] and single["a"]["seed"] == 3
