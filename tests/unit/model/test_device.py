"""Tests of the backend and device rules, the compilation cache, the config keys behind them
and the install's onnxruntime layout.

Anything that must choose a Keras backend runs in a subprocess (the backend is fixed once keras
is imported), through the same ``workflow.job`` every training and prediction job runs in.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from helpers import REPO
from packaging.requirements import Requirement
from snakemake.utils import validate

from affect4k.config.run_settings import TrainConfig
from affect4k.config.schema import SCHEMA_PATH
from affect4k.config.settings import WORKFLOW_KEYS
from affect4k.core.errors import Affect4kError
from affect4k.model.device import BACKENDS, onnxruntime_builds, select_backend

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')"
)

# A model job as the workflow runs it: job(setup=model_setup(...)), then a tiny Keras model predicts
# once (which compiles with JAX). Prints what the job saw as JSON on stdout.
JOB = """
import json, os, sys, types

sys.stderr = open(sys.argv[2], "w", buffering=1)  # as workflow/scripts do: the job's log
from affect4k.model.device import model_setup
from affect4k.core.workflow import job

training = json.loads(sys.argv[1])
snakemake = types.SimpleNamespace(
    config={"ffmpeg": None, "training": training}, rule="train", wildcards={"run": "r1"}
)
with job(snakemake, setup=model_setup(training)):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.predict(np.ones((4, 3), dtype="float32"), verbose=0)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "policy": keras.mixed_precision.global_policy().name,
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }))
"""


def _job(training: dict, log: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run JOB with ``training`` config keys; its ``stderr`` is replaced by the job's log."""
    settings = {"backend": "jax", "device": "auto", "compile_cache": None, **training}
    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environ.update(PYTHONPATH=str(REPO / "src"), **env)
    result = subprocess.run(
        [sys.executable, "-c", JOB, json.dumps(settings), str(log)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result.stderr = log.read_text() + result.stderr
    return result


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.splitlines()[0]


def _gpu_visible() -> bool:
    return Path("/dev/nvidia0").exists()


def test_an_exported_keras_backend_that_differs_is_an_error() -> None:
    environ = {"KERAS_BACKEND": "torch"}
    with pytest.raises(Affect4kError, match="KERAS_BACKEND=torch.*training.backend is tensorflow"):
        select_backend("tensorflow", environ)
    assert environ == {"KERAS_BACKEND": "torch"}, "nothing was overridden"


def test_the_config_sets_the_backend_and_refuses_unknown_ones() -> None:
    environ: dict[str, str] = {}
    select_backend("tensorflow", environ)
    assert environ == {"KERAS_BACKEND": "tensorflow"}
    with pytest.raises(Affect4kError, match="training.backend: 'torch'"):
        select_backend("torch", {})


@needs_jax
@pytest.mark.parametrize("backend", BACKENDS)
def test_first_log_line_names_backend_devices_and_precision(backend: str, tmp_path: Path) -> None:
    result = _job({"backend": backend}, tmp_path / "job.log")
    assert result.returncode == 0, result.stderr[-2000:]
    first = _first_line(result)
    assert "train run=r1: started on backend " + backend in first
    assert "device(s) cpu:0" in first and "precision float32" in first
    if not _gpu_visible():
        # auto on a machine without a GPU says so, and why.
        assert "no GPU: " in first
    assert json.loads(result.stdout)["backend"] == backend


@needs_jax
def test_a_conflicting_keras_backend_fails_the_job_before_anything_runs(tmp_path: Path) -> None:
    result = _job({"backend": "jax"}, tmp_path / "job.log", KERAS_BACKEND="tensorflow")
    assert result.returncode == 1
    assert _first_line(result).startswith("error: train run=r1: KERAS_BACKEND=tensorflow")
    assert result.stdout == "", "the job's body did not run"


@needs_jax
@pytest.mark.skipif(_gpu_visible(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    ("backend", "missing"), [("jax", "jax-cuda12-plugin"), ("tensorflow", "tensorflow-cpu")]
)
def test_device_gpu_without_one_fails_at_once_naming_the_plugin(
    backend: str, missing: str, tmp_path: Path
) -> None:
    result = _job({"backend": backend, "device": "gpu"}, tmp_path / "job.log")
    assert result.returncode == 1
    first = _first_line(result)
    assert first.startswith("error: train run=r1: config key training.device is gpu")
    assert missing in first
    assert result.stdout == ""


@needs_jax
def test_device_cpu_hides_gpus_from_the_job(tmp_path: Path) -> None:
    result = _job({"backend": "jax", "device": "cpu"}, tmp_path / "job.log")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "device(s) cpu:0" in _first_line(result) and "training.device: cpu" in result.stderr
    assert json.loads(result.stdout)["cuda_visible"] == ""


@needs_jax
def test_second_job_of_the_same_shape_compiles_nothing_new(tmp_path: Path) -> None:
    cache = tmp_path / "xla"

    def entries() -> set[str]:
        return {path.name for path in cache.iterdir() if path.name.endswith("-cache")}

    assert _job({"compile_cache": str(cache)}, tmp_path / "job.log").returncode == 0
    first = entries()
    assert first, "the first job wrote compiled programs"
    assert _job({"compile_cache": str(cache)}, tmp_path / "job.log").returncode == 0
    assert entries() == first, "the second job found every program in the cache"


def _validated(training: dict) -> dict:
    config = {"videos": "videos.tsv", "annotations": "annotations", "training": training}
    validate(config, str(SCHEMA_PATH))
    return config["training"]


def test_schema_defaults_and_refuses_unknown_device() -> None:
    training = _validated({})
    assert training["backend"] == "tensorflow"
    assert training["device"] == "auto"
    assert training["compile_cache"] == ".cache/xla"
    with pytest.raises(Exception, match="tpu"):
        _validated({"device": "tpu"})


def test_schema_offers_only_backends_this_package_installs() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    offered = schema["properties"]["training"]["properties"]["backend"]["enum"]
    assert tuple(offered) == BACKENDS
    requirements = [*PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        requirements += extra
    installable = {Requirement(text).name for text in requirements}
    for backend in offered:
        assert {backend, f"{backend}-cpu"} & installable, f"{backend} is in no requirement"


def test_every_run_option_is_a_training_setting() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    options = schema["$defs"]["run_options"]["properties"]
    for key in ("eval_every", "eval_train_every", "eval_batch_size", "gru_unroll"):
        assert key in options
    settings = {"model": "vgg16_gru", "eval_every": 2, "eval_train_every": 5, "gru_unroll": 8}
    training = _validated({"runs": {"r": settings}})
    config = TrainConfig.from_settings(training["runs"]["r"])
    assert (config.eval_every, config.eval_train_every, config.gru_unroll) == (2, 5, 8)
    # Every documented option is a TrainConfig field, but the workflow's own: `seeds` expands
    # into one run per `seed`, and WORKFLOW_KEYS such as `trained_on` steer evaluation and
    # never reach a job.
    for_jobs = [key for key in options if key not in (*WORKFLOW_KEYS, "seeds")]
    assert "seed" in for_jobs and "trained_on" not in for_jobs
    assert set(for_jobs) <= {field.name for field in dataclasses.fields(TrainConfig)}
    TrainConfig.from_settings({"model": "vgg16_gru", **dict.fromkeys(for_jobs, 1)})


def test_installed_environment_has_one_onnxruntime_build() -> None:
    builds = onnxruntime_builds()
    assert len(builds) == 1, f"several distributions install onnxruntime/: {builds}"


def _fake_distribution(root: Path, name: str, files: list[str]) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{file},,\n" for file in files))


def test_a_clash_of_onnxruntime_builds_is_read_from_metadata(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "onnxruntime", ["onnxruntime/__init__.py"])
    _fake_distribution(tmp_path, "onnxruntime-gpu", ["onnxruntime/__init__.py"])
    _fake_distribution(tmp_path, "insightface", ["insightface/__init__.py"])
    found = onnxruntime_builds(importlib.metadata.distributions(path=[str(tmp_path)]))
    assert found == ["onnxruntime", "onnxruntime-gpu"]


def test_gpu_extra_adds_no_second_onnxruntime_build() -> None:
    base = {Requirement(text).name for text in PYPROJECT["project"]["dependencies"]}
    for extra in ("gpu", "jax"):
        names = base | {
            Requirement(text).name for text in PYPROJECT["project"]["optional-dependencies"][extra]
        }
        assert len({name for name in names if name.startswith("onnxruntime")}) == 1, extra
