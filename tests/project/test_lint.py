"""The code is lint- and format-clean, so the README's test command checks style too."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO

PYTHON = ["src", "workflow/scripts", "tests", "bench"]
SNAKEMAKE = ["Snakefile", "workflow/rules"]


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "ruff", "check", *PYTHON],
        [sys.executable, "-m", "ruff", "format", "--check", *PYTHON],
        [sys.executable, "-m", "snakefmt", "--check", *SNAKEMAKE],
    ],
    ids=["ruff check", "ruff format", "snakefmt"],
)
def test_clean(argv):
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
