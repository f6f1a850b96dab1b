"""The config checked and resolved at parse time (affect4k.config.settings), without Snakemake
jobs.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import yaml
from helpers import REPO
from helpers.hostile import BILLION_LAUGHS
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from affect4k.config.run_settings import TrainConfig
from affect4k.config.schema import SCHEMA_PATH
from affect4k.config.settings import (
    MAX_CONFIG_VALUES,
    check_backend,
    check_calibration,
    check_clips,
    check_config,
    check_trained_on,
    check_values,
    job_settings,
    resolve_training,
    scored_parts,
    seen_frames,
)
from affect4k.core.errors import Affect4kError


def validated(**keys: object) -> dict:
    """A config as the workflow sees it: the schema fills in every default."""
    config = copy.deepcopy({"videos": "videos.tsv", "annotations": "annotations", **keys})
    validate(config, str(SCHEMA_PATH))
    return config


def test_a_config_naming_only_its_data_plans_the_studys_models_at_the_studys_settings():
    training = resolve_training(validated())
    assert sorted(training.runs) == [
        "alexnet_gru",
        "resnet50_gru",
        "vgg16_cnn",
        "vgg16_gru",
        "vgg16_imagenet_gru",
    ]
    assert training.pretrain == {}
    for name, settings in training.runs.items():
        config = TrainConfig.from_settings(job_settings(settings))
        assert config.epochs == (60 if name == "resnet50_gru" else 50), name
        assert (config.sequence_length, config.batch_size) == (80, 4)
        assert (config.learning_rate, config.width, config.input_size) == (1e-5, 1.0, 96)
        assert settings["resolution"] == "native"
    assert training.runs["vgg16_imagenet_gru"]["pretrained"] == "imagenet"
    # The Aff-Wild model needs a file nobody named: left out, and the warning names the key.
    assert len(training.warnings) == 1
    assert "training.runs.vgg16_affwild_gru.pretrained" in training.warnings[0]


def test_runs_given_replace_the_default_list_and_an_empty_list_trains_nothing():
    runs = resolve_training(validated(training={"runs": {"mine": {"model": "alexnet_gru"}}})).runs
    assert list(runs) == ["mine"]
    assert resolve_training(validated(training={"runs": {}})).runs == {}


def test_defaults_override_the_models_own_but_a_run_entry_overrides_both():
    training = {
        "defaults": {"epochs": 3},
        "runs": {"r": {"model": "resnet50_gru"}, "s": {"model": "resnet50_gru", "epochs": 7}},
    }
    runs = resolve_training(validated(training=training)).runs
    assert (runs["r"]["epochs"], runs["s"]["epochs"]) == (3, 7)


def with_pretraining(runs: dict) -> dict:
    """A validated config with a pretraining ``p`` on the corpus ``aw``, and ``runs``."""
    return validated(
        evaluation={"corpora": {"aw": {"format": "affwild2", "root": "aw"}}},
        training={"pretrain": {"p": {"model": "vgg16_cnn", "corpus": "aw"}}, "runs": runs},
    )


def test_pretrain_references_resolve_to_the_pretraining_runs_model_file(tmp_path):
    weights = tmp_path / "affwild_vgg16.weights.h5"
    weights.write_bytes(b"")
    config = with_pretraining(
        {
            "a": {"model": "vgg16_imagenet_gru", "pretrained": "pretrain:p"},
            "b": {"model": "vgg16_affwild_gru", "pretrained": str(weights)},
        }
    )
    training = resolve_training(config)
    assert training.runs["a"]["pretrained"] == "results/pretrained/p/model.keras"
    assert training.runs["b"]["pretrained"] == str(weights)
    assert training.pretrain["p"]["corpus"] == "aw"
    # A weights file of the Aff-Wild model that does not say what it saw is named.
    (warning,) = training.warnings
    assert warning.startswith("training.runs.b.trained_on: not given")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"faces": {"detector": "insightface"}}, "faces.model"),
        ({"annotators": ["a1", "a2"], "annotation": {"min_annotators": 3}}, "min_annotators"),
    ],
)
def test_settings_that_cannot_work_together_name_the_key(keys, message):
    with pytest.raises(Affect4kError, match=message):
        check_config(validated(**keys))


@pytest.mark.parametrize(
    ("training", "message"),
    [
        (
            {"runs": {"x": {"model": "vgg16_imagenet_gru", "pretrained": "pretrain:nope"}}},
            r"training\.runs\.x\.pretrained: 'pretrain:nope' names no entry",
        ),
        (
            {"runs": {"x": {"model": "vgg16_affwild_gru", "pretrained": "missing.h5"}}},
            r"training\.runs\.x\.pretrained: weights file missing\.h5 does not exist",
        ),
        (
            {"pretrain": {"p": {"model": "vgg16_cnn", "corpus": "nowhere"}}},
            r"training\.pretrain\.p\.corpus",
        ),
        ({"ablation": {"runs": ["nope"]}}, r"training\.ablation\.runs names 'nope'"),
    ],
)
def test_bad_training_references_name_the_key(training, message):
    with pytest.raises(Affect4kError, match=message):
        resolve_training(validated(training=training))


def pretraining(model: str, **keys: object) -> dict:
    """A training section with a pretraining ``p`` of ``model`` on the corpus ``aw``."""
    return {"pretrain": {"p": {"model": model, "corpus": "aw"}}, **keys}


@pytest.mark.parametrize(
    ("training", "message"),
    [
        # The issue's case: a CPU user shrinks every run; the default ImageNet run cannot be.
        (
            {"defaults": {"width": 0.125}},
            r"training\.runs\.vgg16_imagenet_gru\.width: ImageNet's VGG16 weights need width 1"
            r".*got 0\.125",
        ),
        (
            {"runs": {"x": {"model": "alexnet_gru", "input_size": 32}}},
            r"training\.runs\.x\.input_size: alexnet_gru needs an input of at least 35",
        ),
        (
            {
                "runs": {"x": {"model": "alexnet_gru"}},
                "ablation": {"runs": ["x"], "input_sizes": [32]},
            },
            r"training\.ablation\.input_sizes: alexnet_gru needs an input of at least 35",
        ),
        (
            {"runs": {"x": {"model": "vgg16_gru", "pretrained": "imagenet"}}},
            r"training\.runs\.x\.pretrained: vgg16_gru trains from scratch",
        ),
        (
            pretraining(
                "alexnet_gru",
                runs={"x": {"model": "vgg16_affwild_gru", "pretrained": "pretrain:p"}},
            ),
            r"training\.runs\.x\.pretrained: training\.pretrain\.p trains alexnet_gru, which "
            r"has no VGG16 conv layers",
        ),
        (
            pretraining(
                "vgg16_cnn",
                defaults={"width": 0.125},
                runs={"x": {"model": "vgg16_affwild_gru", "pretrained": "pretrain:p", "width": 1}},
            ),
            r"training\.runs\.x\.width: 1 differs from training\.pretrain\.p's width 0\.125",
        ),
    ],
)
def test_what_a_training_job_would_refuse_is_refused_at_parse_time_naming_the_key(
    training, message
):
    corpora = {"aw": {"format": "affwild2", "root": "aw"}}
    with pytest.raises(Affect4kError, match=message):
        resolve_training(validated(training=training, evaluation={"corpora": corpora}))


@pytest.mark.parametrize(
    ("run", "where"),
    [
        ({"model": "vgg19_gru"}, "['x']['model']"),
        ({"model": "alexnet_gru", "sequence_length": 0}, "['x']['sequence_length']"),
        # A grid's values too, each one: a bad cell is refused before any run expands.
        ({"model": "alexnet_gru", "batch_size": [2, 0]}, "['x']['batch_size'][1]"),
        ({"model": "alexnet_gru", "learning_rate": [1e-4, 0]}, "['x']['learning_rate'][1]"),
        ({"model": "alexnet_gru", "width": ["wide"]}, "['x']['width'][0]"),
        # An empty grid would expand to no run at all, silently.
        ({"model": "alexnet_gru", "batch_size": []}, "['x']['batch_size']"),
        ({"model": "alexnet_gru", "seed": []}, "['x']['seed']"),
        ({"model": "alexnet_gru", "input_size": 16}, "['x']['input_size']"),
        ({"model": "alexnet_gru", "input_convention": "bgr"}, "['x']['input_convention']"),
        # A typo never falls back to the default.
        ({"model": "alexnet_gru", "epoch": 4}, "['x']"),
    ],
)
def test_a_run_option_out_of_range_is_refused_by_the_schema_naming_the_key(run, where):
    """The one check of each option's value; jobs and the modules they run only assert it."""
    with pytest.raises(WorkflowError, match=re.escape(f"On instance['training']['runs']{where}")):
        validated(training={"runs": {"x": run}})


def test_a_model_that_starts_from_imagenet_by_default_gets_its_input_convention():
    runs = resolve_training(validated(training={"runs": {"x": {"model": "vgg16_imagenet_gru"}}}))
    assert (runs.runs["x"]["pretrained"], runs.runs["x"]["input_convention"]) == (
        "imagenet",
        "caffe",
    )
    study = {"model": "vgg16_imagenet_gru", "input_convention": "study"}
    with pytest.raises(Affect4kError, match=r"training\.runs\.x\.input_convention: .*caffe"):
        resolve_training(validated(training={"runs": {"x": study}}))


def test_an_exported_keras_backend_naming_another_is_refused_at_parse_time(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(Affect4kError, match="training.backend: tensorflow, but KERAS_BACKEND=jax"):
        resolve_training(validated(training={"runs": {"x": {"model": "alexnet_gru"}}}))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert list(
        resolve_training(validated(training={"runs": {"x": {"model": "alexnet_gru"}}})).runs
    ) == ["x"]


def test_ablation_copies_exactly_the_named_entry():
    training = {
        "runs": {"vgg16_gru": {"model": "vgg16_gru"}, "vgg16_gru-wide": {"model": "vgg16_gru"}},
        "ablation": {"runs": ["vgg16_gru"]},
    }
    runs = resolve_training(validated(training=training)).runs
    cells = sorted(name for name in runs if runs[name]["ablation_of"])
    # The default grid: 5 heights x (crop 112: inputs 96, 112; 224: three; 448: four), less the
    # native x 112 x 96 cell, which is vgg16_gru itself.
    assert len(cells) == 5 * 9 - 1
    assert {runs[name]["ablation_of"] for name in cells} == {"vgg16_gru"}
    assert "vgg16_gru-h720-c448-in224" in cells and "vgg16_gru-native-c112-in112" in cells
    assert "vgg16_gru-native-c112-in96" not in cells and "vgg16_gru-h720-c112-in224" not in cells
    assert set(runs) - set(cells) == {"vgg16_gru", "vgg16_gru-wide"}


def test_a_backend_that_is_not_installed_is_refused(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(Affect4kError, match="training.backend: jax is not installed"):
        check_backend("jax")


def test_each_initialisation_brings_its_input_convention(tmp_path):
    weights = tmp_path / "imagenet_vgg16.h5"
    weights.write_bytes(b"")
    config = with_pretraining(
        {
            "scratch": {"model": "vgg16_gru"},
            "imagenet": {"model": "vgg16_imagenet_gru", "pretrained": "imagenet"},
            "from_p": {"model": "vgg16_imagenet_gru", "pretrained": "pretrain:p"},
            "file": {"model": "vgg16_imagenet_gru", "pretrained": str(weights)},
            "declared": {
                "model": "vgg16_imagenet_gru",
                "pretrained": str(weights),
                "input_convention": "caffe",
            },
        }
    )
    runs = resolve_training(config).runs
    conventions = {name: settings["input_convention"] for name, settings in runs.items()}
    assert conventions == {
        "scratch": "study",
        "imagenet": "caffe",
        "from_p": "study",
        "file": "study",
        "declared": "caffe",
    }
    clash = {"runs": {"x": {"model": "vgg16_imagenet_gru", "input_convention": "study"}}}
    clash["runs"]["x"]["pretrained"] = "imagenet"
    with pytest.raises(Affect4kError, match=r"training\.runs\.x\.input_convention"):
        resolve_training(validated(training=clash))


def test_still_images_pretrain_one_labelled_image_per_sequence():
    config = validated(
        evaluation={
            "corpora": {
                "an": {"format": "affectnet", "root": "an"},
                "aw": {"format": "affwild2", "root": "aw"},
            }
        },
        training={
            "defaults": {"sequence_length": 20, "batch_size": 4},
            "pretrain": {
                "still": {"model": "vgg16_cnn", "corpus": "an"},
                "tuned": {"model": "vgg16_cnn", "corpus": "an", "batch_size": 32},
                "video": {"model": "vgg16_cnn", "corpus": "aw"},
            },
        },
    )
    pretrain = resolve_training(config).pretrain
    assert (pretrain["still"]["sequence_length"], pretrain["still"]["batch_size"]) == (1, 64)
    assert pretrain["tuned"]["batch_size"] == 32
    assert (pretrain["video"]["sequence_length"], pretrain["video"]["batch_size"]) == (20, 4)


def test_a_corpus_is_scored_on_its_held_out_part_only_where_a_pretraining_trains_on_it():
    corpora = {
        "an": {"format": "affectnet", "root": "an"},
        "aw": {"format": "affwild2", "root": "aw"},
    }
    config = validated(
        evaluation={"corpora": corpora},
        training={"pretrain": {"p": {"model": "vgg16_cnn", "corpus": "aw"}}},
    )
    assert scored_parts(config) == {
        "validation": "validation",
        "test": "test",
        "an": "all",
        "aw": "held_out",
    }


def test_weights_declare_what_they_saw_and_runs_inherit_it(tmp_path):
    weights = tmp_path / "affwild_vgg16.weights.h5"
    weights.touch()
    corpora = {"aw": {"format": "affwild2", "root": "aw"}}
    aw_vgg = {"model": "vgg16_cnn", "pretrained": str(weights), "trained_on": ["aw", "elsewhere"]}
    config = validated(
        evaluation={"corpora": corpora},
        training={
            # A frame-level VGG16 takes no weights; its declaration is what runs inherit.
            "pretrain": {
                "p": {"model": "vgg16_cnn", "trained_on": aw_vgg["trained_on"], "corpus": "aw"}
            },
            "runs": {
                "direct": {**aw_vgg, "model": "vgg16_affwild_gru", "trained_on": ["aw/v1"]},
                "via": {"model": "vgg16_affwild_gru", "pretrained": "pretrain:p"},
                "scratch": {"model": "vgg16_gru", "trained_on": ["database/clip_b"]},
            },
        },
    )
    training = resolve_training(config)
    assert training.runs["via"]["trained_on"] == ["aw", "elsewhere"]
    assert "trained_on" not in job_settings(training.runs["via"])
    assert seen_frames(training.runs["direct"]["trained_on"], "aw") == (("v1",), False)
    assert seen_frames(training.runs["via"]["trained_on"], "aw") == ((), True)
    assert seen_frames(training.runs["via"]["trained_on"], "test") == ((), False)
    assert seen_frames(training.runs["scratch"]["trained_on"], "validation") == (("clip_b",), False)
    assert any("elsewhere is no evaluation set" in warning for warning in training.warnings)
    check_trained_on(training.runs, {"clip_a", "clip_b"})
    with pytest.raises(Affect4kError, match=r"training.runs.scratch.trained_on: 'database/clip_b'"):
        check_trained_on(training.runs, {"clip_a"})


def test_study_config_declares_that_the_affwild_vgg16_saw_affwild():
    import yaml

    study = yaml.safe_load((REPO / "config/study.yaml").read_text())
    assert study["training"]["runs"]["vgg16_affwild_gru"]["trained_on"] == ["affwild2"]
    assert study["database"]["validation_fraction"] == 0.15
    assert study["database"]["test_fraction"] == pytest.approx(1 / 3)
    config = validated(training=study["training"])
    assert config["training"]["runs"] == validated()["training"]["runs"], "the study's defaults"


def test_a_pretraining_cannot_have_seeds():
    corpora = {"aw": {"format": "affwild2", "root": "aw"}}
    config = validated(
        evaluation={"corpora": corpora},
        training={"pretrain": {"p": {"model": "vgg16_cnn", "corpus": "aw", "seeds": [0, 1]}}},
    )
    with pytest.raises(Affect4kError, match=r"training.pretrain.p.seeds"):
        resolve_training(config)


def test_lag_measured_needs_every_calibration_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {"annotations": "ann", "annotators": ["a1", "a2"], "annotation": {"lag": "none"}}
    check_calibration(config, ["v1"])  # no calibration asked for: nothing needed
    config["annotation"]["lag"] = "measured"
    with pytest.raises(
        Affect4kError,
        match=r"lag: measured .*ann/_calibration/a1\.valence\.csv is missing \(4 in all\)",
    ):
        check_calibration(config, ["v1"])
    for name in ("a1", "a2"):
        for dim in ("valence", "arousal"):
            path = tmp_path / "ann/_calibration" / f"{name}.{dim}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("time_s,value\n0,0\n24,0\n")
    check_calibration(config, ["v1"])
    with pytest.raises(Affect4kError, match="videos: the id _calibration"):
        check_calibration(config, ["v1", "_calibration"])


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"crf": 23}, r"clips\.crf: only codec libx264 .* clips\.codec is mpeg4 \(the default\)"),
        ({"codec": "mpeg4", "preset": "veryfast"}, r"clips\.preset: .*clips\.codec is mpeg4;"),
        ({"codec": "libx264", "qscale": 3}, r"clips\.qscale: only codec mpeg4 .* is libx264"),
    ],
)
def test_a_clips_key_the_chosen_codec_ignores_is_refused(given, message):
    """A setting that would change nothing (a crf kept from an H.264 config) is not silent."""
    with pytest.raises(Affect4kError, match=message):
        check_clips(given)
    codec = given.get("codec", "mpeg4")
    own = {"mpeg4": {"qscale": 3}, "libx264": {"crf": 23, "tune": None, "x264_options": None}}
    check_clips({"codec": codec, **own[codec]})  # each codec's own keys are fine
    check_clips({})


def parsed(**keys: object) -> dict:
    """A config as the Snakefile checks it before any job: :func:`check_values`, then the
    schema."""
    config = copy.deepcopy({"videos": "videos.tsv", "annotations": "annotations", **keys})
    check_values(config)
    validate(config, str(SCHEMA_PATH))
    return config


@pytest.mark.parametrize(
    ("keys", "key"),
    [
        # Not finite: NaN compares false with every bound, and infinity is a number.
        ({"annotation": {"lag": math.nan}}, "annotation.lag: nan"),
        ({"annotation": {"lag": math.inf}}, "annotation.lag: inf"),
        ({"annotation": {"max_lag_s": math.nan}}, "annotation.max_lag_s: nan"),
        ({"annotation": {"max_lag_s": math.inf}}, "annotation.max_lag_s: inf"),
        ({"annotation": {"max_gap_s": math.nan}}, "annotation.max_gap_s: nan"),
        ({"database": {"validation_fraction": math.nan}}, "database.validation_fraction: nan"),
        ({"faces": {"subject_threshold": math.nan}}, "faces.subject_threshold: nan"),
        (
            {
                "training": {
                    "runs": {"x": {"model": "alexnet_gru", "learning_rate": [1e-4, -math.inf]}}
                }
            },
            "training.runs.x.learning_rate[1]: -inf",
        ),
        # Absurd magnitudes: each would exhaust memory or time in a job.
        ({"annotation": {"max_lag_s": 1e9}}, "['annotation']['max_lag_s']"),
        ({"annotation": {"lag": 1e9}}, "['annotation']['lag']"),
        ({"annotation": {"max_gap_s": 1e9}}, "['annotation']['max_gap_s']"),
        ({"evaluation": {"resamples": 10**9}}, "['evaluation']['resamples']"),
        (
            {"training": {"runs": {"x": {"model": "alexnet_gru", "sequence_length": 10**5}}}},
            "['training']['runs']['x']['sequence_length']",
        ),
        ({"training": {"defaults": {"batch_size": 10**9}}}, "['training']['defaults']"),
        # Seeds a job would refuse (NumPy's take [0, 2**32)).
        ({"training": {"defaults": {"seed": -1}}}, "['training']['defaults']"),
        ({"training": {"seeds": [0, 2**32]}}, "['training']['seeds'][1]"),
        (
            {"training": {"runs": {"x": {"model": "alexnet_gru", "seeds": [-1]}}}},
            "['training']['runs']['x']['seeds'][0]",
        ),
        ({"training": {"ablation": {"seeds": [2**32]}}}, "['training']['ablation']['seeds'][0]"),
        ({"database": {"seed": -1}}, "['database']['seed']"),
    ],
)
def test_a_number_that_is_not_finite_or_not_sane_is_refused_at_parse_time_naming_the_key(keys, key):
    with pytest.raises((Affect4kError, WorkflowError), match=re.escape(key)):
        parsed(**keys)


def test_the_ranges_keep_every_shipped_config_and_the_edges_of_seeds():
    for path in sorted((REPO / "config").rglob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        check_values(config)
        validate(config, str(SCHEMA_PATH))
    parsed(training={"seeds": [0, 2**32 - 1]}, annotation={"lag": 60, "max_lag_s": 60})


def test_yaml_aliases_that_expand_to_billions_of_values_are_refused_unexpanded():
    """The schema's error would print the expanded value (10**9 strings): refused before."""
    config = yaml.safe_load(BILLION_LAUGHS)
    with pytest.raises(Affect4kError, match="aliases .* expand to more than 100,000 values"):
        check_values(config)
    # The limit the schema's description states.
    assert f"{MAX_CONFIG_VALUES:,} values" in yaml.safe_load(SCHEMA_PATH.read_text())["description"]
    recursive = yaml.safe_load("videos: &v [*v]\nannotations: a\n")
    with pytest.raises(Affect4kError, match="nested deeper than"):
        check_values(recursive)
