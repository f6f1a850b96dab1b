"""tests/conftest.py marks tests by what they call, through fixtures and module helpers too, so
the fast subset (README) leaves out every Snakemake run, browser and cluster."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

FAST = "not workflow and not browser and not slurm"
FILES = ("tests/test_report.py", "tests/test_slurm.py")


def _collected(marks: str) -> set[str]:
    """``file::test`` ids that ``-m marks`` selects from FILES (parameters dropped)."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*argv, "-m", marks, *FILES], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]
    return {line.split("[")[0] for line in result.stdout.splitlines() if "::" in line}


def test_markers_follow_fixtures_and_module_helpers():
    report = "tests/test_report.py::"
    # through the module's _browser() helper
    assert _collected("browser") == {f"{report}test_report_renders_every_figure_in_chromium"}
    # through the fixtures built -> tiny_study, which runs Snakemake
    assert f"{report}test_every_figure_is_a_png_or_table_page_in_the_report" in _collected(
        "workflow"
    )
    fast = _collected(FAST)
    assert f"{report}test_best_run_is_the_configuration_chosen_on_validation" in fast
    assert f"{report}test_results_page_holds_the_tables_numbers" not in fast
    # the cluster fixture starts LoopbackSlurm; the module skips without the slurm plugin
    assert not {test for test in fast if test.startswith("tests/test_slurm.py")}
