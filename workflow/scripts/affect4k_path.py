"""Imported first by every workflow script: the job runs the package code next to this workflow.

Snakemake puts this directory on a script's sys.path, so the import works in any environment
(a conda env from envs/, a cluster node) even where affect4k is not pip-installed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
