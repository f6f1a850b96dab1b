"""tests/conftest.py marks a test by the folder it sits in, and fails a test whose calls (its own,
its fixtures', their module helpers') need a marker it does not carry, naming where it belongs:
so the fast subset (README) never runs Snakemake, a browser or a cluster.

Checked on a scratch tree of small test files run with this repository's tests/conftest.py,
its tests/helpers/ and its pytest settings: nothing in it builds anything, since a test in the
wrong folder fails before its fixtures start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from helpers import REPO

#: Scratch test files by path under tests/: right and wrong folders for what each one calls.
FILES = {
    "unit/test_plain.py": "def test_plain():\n    assert True\n",
    # copy_workflow through a fixture and a helper of the module: needs `workflow`
    "unit/test_sneaky.py": """
import pytest
from helpers.workflow import copy_workflow


def scratch(path):
    return copy_workflow(path)


@pytest.fixture
def clone(tmp_path):
    return scratch(tmp_path)


def test_sneaky(clone):
    assert clone
""",
    "workflow/test_build.py": """
from helpers.workflow import run_snakemake


def test_build(tmp_path):
    run_snakemake(tmp_path, "all")
""",
    # a browser test that runs Snakemake too, without saying so
    "browser/test_page.py": """
import pytest
from helpers.browser import headless_chromium
from helpers.workflow import run_snakemake


@pytest.fixture
def page(tmp_path):
    run_snakemake(tmp_path, "all")
    return headless_chromium()


def test_page(page):
    assert page
""",
    "slurm/test_cluster.py": """
import pytest
from helpers.workflow import run_snakemake

pytestmark = pytest.mark.workflow


def test_cluster(tmp_path):
    cluster = LoopbackSlurm(tmp_path)  # noqa: F821
    run_snakemake(tmp_path, "all", cluster)
""",
}

#: Prints each collected test's id and markers as JSON, then runs pytest as asked.
COLLECT = """
import json, sys
import pytest

class Report:
    def pytest_collection_finish(self, session):
        for item in session.items:
            print(json.dumps([item.nodeid, sorted(m.name for m in item.iter_markers())]))

sys.exit(pytest.main(sys.argv[1:], plugins=[Report()]))
"""


def scratch_tree(root: Path) -> Path:
    """FILES under ``root/tests`` with this repository's conftest.py, and its pytest settings
    (helpers imported from this repository's tests/)."""
    for name, text in FILES.items():
        path = root / "tests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    (root / "tests/conftest.py").write_text((REPO / "tests/conftest.py").read_text())
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    options = options["ini_options"]
    ini = ["[pytest]", f"addopts = {options['addopts']} -p no:cacheprovider"]
    ini += [f"pythonpath = {REPO / 'tests'}", "markers ="]
    ini += [f"    {marker}" for marker in options["markers"]]
    (root / "pytest.ini").write_text("\n".join(ini) + "\n")
    return root


def pytest_in(root: Path, *args: str) -> tuple[int, str, dict[str, list[str]]]:
    """Exit status, output and ``{test id: markers}`` of pytest run in ``root``."""
    argv = [sys.executable, "-c", COLLECT, "-p", "no:xdist", *args]
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    collected = {}
    for line in result.stdout.splitlines():
        if line.startswith('["'):
            nodeid, markers = json.loads(line)
            collected[nodeid] = markers
    return result.returncode, result.stdout + result.stderr, collected


def test_the_folder_gives_the_marker_and_the_wrong_folder_fails_naming_the_right_one(tmp_path):
    root = scratch_tree(tmp_path)
    status, output, collected = pytest_in(root, "--collect-only", "-q")
    assert status == 0, output[-3000:]
    assert collected == {
        "tests/browser/test_page.py::test_page": ["browser"],
        "tests/slurm/test_cluster.py::test_cluster": ["slurm", "workflow"],
        "tests/unit/test_plain.py::test_plain": [],
        "tests/unit/test_sneaky.py::test_sneaky": [],
        "tests/workflow/test_build.py::test_build": ["workflow"],
    }

    # The unit tests (the fast subset) and the browser test: the unit test that copies the
    # workflow fails, as does the browser test that runs Snakemake without its file saying so.
    status, output, collected = pytest_in(root, "-m", "not workflow and not slurm", "-rA")
    assert status == 1, output[-3000:]
    assert set(collected) == {
        "tests/browser/test_page.py::test_page",
        "tests/unit/test_plain.py::test_plain",
        "tests/unit/test_sneaky.py::test_sneaky",
    }
    assert "PASSED tests/unit/test_plain.py::test_plain" in output
    assert (
        "in the wrong folder: tests/unit/test_sneaky.py::test_sneaky calls copy_workflow "
        "(marker workflow): it belongs in tests/workflow/"
    ) in output
    assert (
        "in the wrong folder: tests/browser/test_page.py::test_page calls run_snakemake "
        "(marker workflow): add `pytestmark = pytest.mark.workflow` to its file"
    ) in output
    # Both fail at setup, before their fixtures build or open anything.
    assert "ERROR tests/unit/test_sneaky.py::test_sneaky - Failed: in the wrong folder" in output
    assert "ERROR tests/browser/test_page.py::test_page - Failed: in the wrong folder" in output
    assert "1 passed, 2 deselected, 2 errors" in output
