"""The report of the tiny study (tests/conftest.py), built once a session for the report's
workflow and browser tests; its ``built`` fixture reaches them through ``pytest_plugins``."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.workflow import run_snakemake

FIGURES = [
    "results/report/results.html",
    "results/report/results.png",
    "results/report/predictions.png",
    "results/report/training/tiny.png",
    "results/report/database.html",
    "results/report/database.png",
    "results/report/agreement.png",
    "results/report/annotators.png",
    *(f"results/report/qc/{video}.png" for video in ("tiny_a", "tiny_b", "tiny_c")),
]


@pytest.fixture(scope="session")
def built(tiny_study: Path) -> Path:
    """The tiny study after the default target (figures) and ``--report``."""
    run_snakemake(tiny_study)
    run_snakemake(tiny_study, "--report", "results/report.html")
    return tiny_study
