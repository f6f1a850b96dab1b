"""Shared fixtures: running the real workflow in a scratch directory; the test markers."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.workflow import TINY_RUN, demo_config, run_snakemake, write_config

#: Fixtures that tests of different kinds share (unit, workflow, browser: tests/README.md);
#: the plain helpers of those modules are imported by name.
pytest_plugins = (
    "helpers.annotation_app",
    "helpers.download",
    "helpers.predict",
    "helpers.report",
)


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
