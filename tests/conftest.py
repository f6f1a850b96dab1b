"""Shared fixtures: running the real workflow in a scratch directory; the test markers."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
#: Headless Chromium as root on a machine without network: no sandbox, no GPU, and none of the
#: background connections a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def headless_chromium(*flags: str, console_log: bool = False):
    """A Selenium driver of Debian's Chromium through its own ChromeDriver (nothing is
    downloaded); skips the test where either is not installed (.ci/install-chromium)."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/install-chromium)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *flags):
        options.add_argument(flag)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


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


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace where the workflow built ``results/tables.csv`` from three 4 s demo videos
    and one tiny run (``tiny``), for the tests that read trained models and predictions."""
    work = tmp_path_factory.mktemp("tiny_study")
    videos = {"tiny_a": (30, "astronaut"), "tiny_b": (25, "tom_hanks"), "tiny_c": (24, "t1:0")}
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in videos]
    (work / "videos.tsv").write_text("\n".join(rows) + "\n")
    # Everything the default config would add beyond this is switched off explicitly.
    training = {"runs": {"tiny": TINY_RUN}, "pretrain": {}, "ablation": {"runs": []}}
    config = demo_config(videos, seconds=4, training=training, evaluation={"corpora": {}})
    config["demo"]["corpora"] = {}
    write_config(work, config)
    run_snakemake(work, "results/tables.csv")
    return work


#: Marker -> the calls that put a test under it (pyproject.toml registers the markers). A test
#: gets the marker when it makes such a call itself, in a fixture it uses (directly or through
#: other fixtures) or in a function of its own module that it calls, so a new test in any file
#: is marked without a decorator: `pytest -m "not workflow and not browser and not slurm"`
#: is the fast subset (README).
MARKED_CALLS = {
    "workflow": {"run_snakemake", "copy_workflow"},
    "browser": {"headless_chromium"},
    "slurm": {"LoopbackSlurm"},
}

_CALLS: dict[Callable, frozenset[str]] = {}


def _calls(function: Callable, visiting: frozenset[Callable] = frozenset()) -> frozenset[str]:
    """Names ``function`` calls, with those of the functions of its module that it calls."""
    function = inspect.unwrap(function)
    if function in _CALLS:
        return _CALLS[function]
    if function in visiting:  # recursion: its names are being collected further up
        return frozenset()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):  # no source: a builtin or a function made at run time
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name is None:
            continue
        names.add(name)
        callee = getattr(function, "__globals__", {}).get(name)
        if inspect.isfunction(callee) and callee.__module__ == function.__module__:
            names |= _calls(callee, visiting | {function})
    _CALLS[function] = frozenset(names)
    return _CALLS[function]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test ``workflow``, ``browser`` and ``slurm`` by what it calls (MARKED_CALLS)."""
    for item in items:
        functions = [item.function] if isinstance(item, pytest.Function) else []
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is not None:
            for name in item.fixturenames:
                functions += [d.func for d in fixtures.name2fixturedefs.get(name, ())]
        names = frozenset().union(*(_calls(function) for function in functions))
        for marker, calls in MARKED_CALLS.items():
            if names & calls:
                item.add_marker(marker)
