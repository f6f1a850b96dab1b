"""A normal install works: the wheel holds every file the package reads at run time.

The wheel is built as ``pip wheel .`` builds it, installed into a fresh virtual environment
outside the checkout (with the system's site-packages, so TensorFlow and the rest are not
installed again), and its commands run from a folder that is no clone of the workflow. The
affect4k that runs there must be the wheel's, never the editable install of a clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import pandas as pd
import pytest
import skimage.data
from helpers import REPO
from helpers.workflow import TINY_RUN

import affect4k
from affect4k.model.architectures import build_model

#: What the wheel must hold beyond the modules: read at run time through the package's path.
PACKAGE_DATA = (
    "affect4k/config/config.schema.yaml",
    "affect4k/commands/annotation_app/static/annotate.html",
    "affect4k/commands/annotation_app/static/annotate.js",
)


def run(argv: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` in ``cwd`` without this checkout on PYTHONPATH (tests run with src/ on it)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a venv where the wheel of this checkout is installed."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    built = run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", root], source)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = root.glob("affect4k-*.whl")
    assert wheel.name.startswith(f"affect4k-{affect4k.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names, set(PACKAGE_DATA) - names
    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--system-site-packages", venv], root)
    assert made.returncode == 0, made.stderr
    pip = run([venv / "bin/python", "-m", "pip", "install", "--no-deps", wheel], root)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv / "bin"


def test_the_wheel_is_what_runs_and_it_has_its_schema(installed: Path, tmp_path: Path):
    code = "import affect4k.config.schema as s; print(s.__file__); print(s.SCHEMA_PATH.is_file())"
    found = run([installed / "python", "-c", code], tmp_path)
    assert found.returncode == 0, found.stderr
    module, schema_found = found.stdout.split()
    # The venv's own copy, not the editable install of a clone seen through site-packages.
    assert Path(module).is_relative_to(installed.parent), module
    assert not Path(module).is_relative_to(REPO) and schema_found == "True"
    version = run([installed / "affect4k", "--version"], tmp_path)
    assert version.stdout.strip() == f"affect4k {affect4k.__version__}"


def test_the_installed_command_predicts_a_photo_with_a_tiny_run(installed: Path, tmp_path: Path):
    # A run as training leaves it: the model and the config.json its sequence length comes from.
    run_dir = tmp_path / "tiny"
    run_dir.mkdir()
    settings = {key: value for key, value in TINY_RUN.items() if key != "epochs"}
    build_model(settings["model"], input_size=96, width=settings["width"]).save(
        run_dir / "model.keras"
    )
    (run_dir / "config.json").write_text(json.dumps(settings))
    (tmp_path / "photos").mkdir()
    photo = tmp_path / "photos/astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "astronaut.csv"
    # The face detector's settings come from the schema's defaults: package data.
    result = run(
        [installed / "affect4k", "predict", photo, "--model", run_dir, "-o", out], tmp_path
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "file",
        "faces",
        "face",
        "x1",
        "y1",
        "x2",
        "y2",
        "valence",
        "arousal",
    ]
    assert table["face"].tolist() == [True]
    assert table[["valence", "arousal"]].abs().le(1).all(axis=None)


def test_the_installed_annotate_command_says_how_to_name_a_workflow(
    installed: Path, tmp_path: Path
):
    helped = run([installed / "affect4k", "annotate", "--help"], tmp_path)
    assert helped.returncode == 0 and "--snakefile" in helped.stdout
    # No Snakefile here and none shipped: the error names the flag, without a traceback.
    (tmp_path / "config.yaml").write_text("videos: videos.tsv\nannotations: traces\n")
    refused = run([installed / "affect4k", "annotate", "--annotator", "a1"], tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "--configfile" in refused.stderr
    refused = run(
        [installed / "affect4k", "annotate", "--annotator", "a1", "--configfile", "config.yaml"],
        tmp_path,
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "give --snakefile" in refused.stderr
