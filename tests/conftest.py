"""The tiny study every kind of test may read, and the markers: a test is marked by the folder it
sits in (tests/README.md), and a test whose calls need a marker it does not carry fails,
naming the folder it belongs in."""

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


#: tests/<folder>/ -> the marker each test under it gets (pyproject.toml registers them). What is
#: left, tests/unit/ and tests/project/, is the fast subset:
#: `pytest -m "not workflow and not browser and not slurm"` (README).
FOLDER_MARKERS = {"workflow": "workflow", "browser": "browser", "slurm": "slurm"}

#: Marker -> the calls that need it: a test needs the marker when it makes such a call itself, in
#: a fixture it uses (directly or through other fixtures) or in a function of its own module that
#: it calls. The folder gives the marker; this only checks that the folder is right, so a test
#: that runs Snakemake cannot slip into the fast subset from tests/unit/. A browser or cluster
#: test that also runs Snakemake says so in its file: ``pytestmark = pytest.mark.workflow``.
MARKED_CALLS = {
    "workflow": {"run_snakemake", "copy_workflow"},
    "browser": {"headless_chromium"},
    "slurm": {"LoopbackSlurm"},
}
TESTS = Path(__file__).resolve().parent

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


def needed_markers(item: pytest.Item) -> dict[str, set[str]]:
    """Marker -> the calls of ``item`` (its function, its fixtures, their module helpers) that
    need it."""
    functions = [item.function] if isinstance(item, pytest.Function) else []
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is not None:
        for name in item.fixturenames:
            functions += [d.func for d in fixtures.name2fixturedefs.get(name, ())]
    names = frozenset().union(*(_calls(function) for function in functions))
    return {marker: names & calls for marker, calls in MARKED_CALLS.items() if names & calls}


def folder_of(item: pytest.Item) -> str | None:
    """The folder directly under tests/ that holds ``item``'s file."""
    try:
        return Path(item.path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None


def misplaced(item: pytest.Item) -> str | None:
    """Why ``item`` is in the wrong folder and where it belongs, if its calls need a marker it
    does not carry."""
    carried = {marker.name for marker in item.iter_markers()}
    missing = {m: calls for m, calls in needed_markers(item).items() if m not in carried}
    if not missing:
        return None
    calls = ", ".join(sorted(set().union(*missing.values())))
    folder = next(m for m in ("slurm", "browser", "workflow") if m in missing)
    if folder == "workflow" and folder_of(item) in ("browser", "slurm"):
        where = "add `pytestmark = pytest.mark.workflow` to its file, it runs Snakemake too"
    else:
        where = f"it belongs in tests/{folder}/"
    return f"{item.nodeid} calls {calls} (marker {', '.join(sorted(missing))}): {where}"


_MISPLACED = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (FOLDER_MARKERS), and note each test whose calls need a
    marker it lacks (MARKED_CALLS): the fast subset would run it."""
    for item in items:
        marker = FOLDER_MARKERS.get(folder_of(item) or "")
        if marker:
            item.add_marker(marker)
        why = misplaced(item)
        if why:
            item.stash[_MISPLACED] = why


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test in the wrong folder fails before its fixtures start anything (with or without
    pytest-xdist, whose workers collect on their own)."""
    if _MISPLACED in item.stash:
        pytest.fail(f"in the wrong folder: {item.stash[_MISPLACED]}", pytrace=False)
