"""tests/conftest.py marks tests by what they call, through fixtures and module helpers too, so
the fast subset (README) leaves out every Snakemake run, browser and cluster."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

FAST = "not workflow and not browser and not slurm"
FILES = ("tests/unit/report/test_figures.py", "tests/slurm/test_slurm.py")


#: Collects FILES under ``-m FAST`` once, printing the selected tests and, with its markers,
#: each test the expression deselected (conftest marked it before the selection ran).
COLLECT = """
import json, sys
import pytest

class Report:
    def pytest_deselected(self, items):
        for item in items:
            print(json.dumps([item.nodeid, sorted(m.name for m in item.iter_markers())]))

    def pytest_collection_finish(self, session):
        for item in session.items:
            print(json.dumps([item.nodeid, None]))

sys.exit(pytest.main(sys.argv[1:], plugins=[Report()]))
"""


def _collected() -> tuple[set[str], dict[str, set[str]]]:
    """``file::test`` ids (parameters dropped) that ``-m FAST`` selects from FILES, and the
    markers of each test it leaves out."""
    argv = [sys.executable, "-c", COLLECT, "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*argv, "-m", FAST, *FILES], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]
    fast, left_out = set(), {}
    for line in result.stdout.splitlines():
        if line.startswith("["):
            nodeid, markers = json.loads(line)
            test = nodeid.split("[")[0]
            if markers is None:
                fast.add(test)
            else:
                left_out.setdefault(test, set()).update(markers)
    return fast, left_out


def test_markers_follow_fixtures_and_module_helpers():
    report = "tests/unit/report/test_figures.py::"
    fast, left_out = _collected()
    assert fast, "the fast subset of FILES is not empty"
    # through the module's _browser() helper
    browser = {test for test, markers in left_out.items() if "browser" in markers}
    assert browser == {
        f"{report}test_report_renders_every_figure_in_chromium",
        f"{report}test_the_quality_control_sheet_of_a_dissolve_shows_its_verification_in_chromium",
    }
    # through the fixtures built -> tiny_study, which runs Snakemake
    assert "workflow" in left_out[f"{report}test_every_figure_is_a_png_or_table_page_in_the_report"]
    assert f"{report}test_best_run_is_the_configuration_chosen_on_validation" in fast
    assert f"{report}test_results_page_holds_the_tables_numbers" not in fast
    # Whatever -m FAST leaves out carries one of its markers.
    assert all(markers & {"workflow", "browser", "slurm"} for markers in left_out.values())
    # the cluster fixture starts LoopbackSlurm; the module skips without the slurm plugin
    assert not {test for test in fast if test.startswith("tests/slurm/test_slurm.py")}
