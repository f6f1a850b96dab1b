"""What several test files share, imported by name (`from helpers.workflow import
run_snakemake`): pyproject's [tool.pytest.ini_options] puts tests/ on the import path, and the
tests are imported in importlib mode, so a test file never imports another test file or a
conftest.py. REPO is the repository root wherever a test file sits."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
