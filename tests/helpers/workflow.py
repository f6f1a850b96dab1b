"""Running this repository's workflow in a scratch directory, for the tests in tests/workflow/,
tests/browser/ and tests/slurm/ (a test that calls run_snakemake or copy_workflow runs Snakemake,
so it belongs in one of those folders: tests/conftest.py checks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO


def run_snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    config: Path | None = None,
    snakefile: Path = REPO / "Snakefile",
) -> subprocess.CompletedProcess[str]:
    """Run ``snakefile`` (this repo's) with ``workdir`` as working directory; output as text."""
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile)]
    argv += ["--directory", str(workdir), "--cores", "2"]
    # --configfile takes several values: it goes last so it cannot swallow a target.
    argv += [*args, "--configfile", str(config or workdir / "config.yaml")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def copy_workflow(dest: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, rules, scripts, package, configs, profiles),
    for tests that edit its code or run it as a user's clone; returns its Snakefile."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "src", "config", "profiles", "envs"):
        source = REPO / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest / "Snakefile"


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def demo_config(videos: dict[str, tuple[float, str]], *, seconds: float, **keys: object) -> dict:
    """A config generating ``videos`` ({id: (fps, face)}) as small 640x360 demo sources.

    The demo's annotators watched the whole source, so their traces are timed against it.
    """
    return {
        "videos": "videos.tsv",
        "annotations": "resources/demo/annotations",
        "annotation": {"time_origin": "source"},
        "demo": {
            "width": 640,
            "height": 360,
            "seconds": seconds,
            "videos": {video: {"fps": fps, "face": face} for video, (fps, face) in videos.items()},
        },
        **keys,
    }


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a dry run prints."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return {}
    counts = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


#: A run small enough to train in seconds on two cores; only its plumbing matters.
TINY_RUN = {"model": "alexnet_gru", "width": 0.0625, "epochs": 1, "sequence_length": 10}
