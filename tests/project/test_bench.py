"""The benchmarks' own measuring helpers (the benchmarks print timings; tests check only what
they measure with)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO

from affect4k.config.schema import SCHEMA_PATH


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_clips_bench_default_candidate_is_the_schemas_clips_settings():
    clips = bench("clips")
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    defaults = {k: v["default"] for k, v in schema["properties"]["clips"]["properties"].items()}
    assert dataclasses.asdict(clips.settings_of("default", 30)) == defaults
    assert dataclasses.asdict(clips.settings_of("veryfast,,cabac=1", 20)) == {
        **defaults,
        "codec": "libx264",
        "crf": 20,
        "preset": "veryfast",
        "tune": None,
        "x264_options": "cabac=1",
    }
    assert dataclasses.asdict(clips.settings_of("mpeg4:3", 20)) == {
        **defaults,
        "codec": "mpeg4",
        "qscale": 3,
    }


def test_clips_bench_times_cpu_of_children():
    clips = bench("clips")
    wall, cpu = clips.timed(
        lambda: subprocess.run(
            [sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True
        )
    )
    assert wall > 0 and cpu > 0.05  # the child's CPU counts, not only this process's


@pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux fincore missing")
def test_study_scale_evicts_crops_from_the_page_cache(tmp_path):
    """The loader's cold epoch starts with no crop in the page cache; reading brings them back."""
    study = bench("study_scale")
    filesystem = subprocess.run(
        ["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True
    ).stdout.strip()
    if filesystem in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is on {filesystem}, whose pages cannot be evicted")
    path = tmp_path / "v000.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (64, 112, 112, 3), np.uint8))
    study.evict([path])
    assert study.resident_fraction([path]) == 0.0
    with open(path, "rb") as file:
        while file.read(1 << 20):
            pass
    assert study.resident_fraction([path]) > 0.9
    assert os.path.getsize(path) > 2_000_000


def test_study_scale_splits_crop_files_as_its_annotations_do(tmp_path):
    study = bench("study_scale")
    annotations, faces_dir = study.crop_database(tmp_path, crops=60, videos=6, size=8)
    split = pd.read_parquet(annotations).groupby("video")["split"].first()
    assert [p.stem for p in study.crop_files(faces_dir, "test")] == list(
        split[split == "test"].index
    )
    assert [p.stem for p in study.crop_files(faces_dir, "train")] == list(
        split[split == "train"].index
    )
    assert len(study.crop_files(faces_dir)) == 6


def test_compare_builds_reads_empty_cells_on_both_sides_as_the_same_row(tmp_path):
    """A tables.csv with an empty text cell (no interval: its reason column, an unchosen
    ``selected_for``) compared with itself is the same, and a changed word is not."""
    compare = bench("compare_builds").compare
    table = pd.DataFrame(
        {"run": ["a", "b"], "selected_for": ["best", None], "mean_ccc": [0.5, 0.25]}
    )
    for build, word in (("one", "best"), ("two", "best"), ("three", "worst")):
        (tmp_path / build / "results").mkdir(parents=True)
        pd.DataFrame({"frame": [0, 1]}).to_parquet(tmp_path / build / "results/annotations.parquet")
        table.assign(selected_for=[word, None]).to_csv(tmp_path / build / "results/tables.csv")
    same = compare(tmp_path / "one", tmp_path / "two")
    assert same["tables.csv_same_rows"] and same["tables.csv_max_abs_difference"] == 0.0
    assert not compare(tmp_path / "one", tmp_path / "three")["tables.csv_same_rows"]
