"""Run entries of the config -> one settings dict per training job."""

import pytest

from affect4k.config.runs import NATIVE, cell_resolution, expand_runs, parse_resolution
from affect4k.core.errors import Affect4kError


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


def test_ablation_is_a_grid_of_heights_crop_sizes_and_input_sizes_no_larger_than_the_crop():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru", "batch_size": [2, 4]}, "cnn": {"model": "vgg16_cnn"}},
        ablation={
            "runs": ["vgg"],
            "heights": [NATIVE, 360],
            "crop_sizes": [112, 224],
            "input_sizes": [96, 224],
        },
    )
    cells = {name: run for name, run in runs.items() if run["ablation_of"]}
    # Per grid run: 2 heights x (crop 112: input 96; crop 224: 96, 224), less the native x
    # 112 x 96 cell, which is the run itself.
    assert sorted(cells) == sorted(
        f"vgg-batch_size{batch}-{cell}"
        for batch in (2, 4)
        for cell in (
            "h360-c112-in96",
            "h360-c224-in96",
            "h360-c224-in224",
            "native-c224-in96",
            "native-c224-in224",
        )
    )
    cell = runs["vgg-batch_size4-h360-c224-in96"]
    assert (cell["resolution"], cell["input_size"], cell["batch_size"]) == ("h360-c224", 96, 4)
    assert cell["ablation_of"] == "vgg-batch_size4"
    assert runs["vgg-batch_size2"]["resolution"] == NATIVE
    assert runs["vgg-batch_size2-native-c224-in96"]["resolution"] == "native-c224"


def test_ablation_seeds_repeat_every_cell_and_the_run_itself():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru"}},
        ablation={
            "runs": ["vgg"],
            "heights": [NATIVE, 360],
            "crop_sizes": [112],
            "input_sizes": [96],
            "seeds": [0, 1],
        },
    )
    assert sorted(runs) == [
        "vgg-h360-c112-in96-seed0",
        "vgg-h360-c112-in96-seed1",
        "vgg-seed0",
        "vgg-seed1",
    ]


def test_resolution_names_round_trip():
    assert cell_resolution(NATIVE, 112) == NATIVE
    for height, crop in ((NATIVE, 224), (720, 112), (2160, 448)):
        resolution = cell_resolution(height, crop)
        assert parse_resolution(resolution) == (None if height == NATIVE else height, crop)
    assert parse_resolution(NATIVE) == (None, 112)


def test_ablation_of_an_unknown_run_names_it():
    with pytest.raises(Affect4kError, match="'nope'"):
        expand_runs({"a": {"model": "vgg16_gru"}}, ablation={"runs": ["nope"]})


def test_seeds_repeat_each_configuration_and_are_no_grid():
    runs = expand_runs(
        {"vgg": {"model": "vgg16_gru", "batch_size": [2, 4], "seeds": [0, 7]}},
        ablation={
            "runs": ["vgg"],
            "heights": [NATIVE, 360],
            "crop_sizes": [112],
            "input_sizes": [96],
        },
    )
    assert sorted(runs) == [
        "vgg-batch_size2-h360-c112-in96-seed0",
        "vgg-batch_size2-h360-c112-in96-seed7",
        "vgg-batch_size2-seed0",
        "vgg-batch_size2-seed7",
        "vgg-batch_size4-h360-c112-in96-seed0",
        "vgg-batch_size4-h360-c112-in96-seed7",
        "vgg-batch_size4-seed0",
        "vgg-batch_size4-seed7",
    ]
    run = runs["vgg-batch_size4-h360-c112-in96-seed7"]
    config = "vgg-batch_size4-h360-c112-in96"
    assert (run["seed"], run["config"], run["entry"]) == (7, config, "vgg")
    assert run["ablation_of"] == "vgg-batch_size4" and "seeds" not in run
    single = expand_runs({"a": {"model": "vgg16_cnn", "seeds": [3]}})
    assert list(single) == ["a"] and single["a"]["seed"] == 3
