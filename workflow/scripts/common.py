"""What every workflow script starts with: ``from common import job``.

Snakemake puts this directory on a script's sys.path, so the import works in any environment (a
conda env from envs/, a cluster node) even where affect4k is not pip-installed; ``job`` then
runs the package code that sits next to this workflow, with the job's log and error format set
up in one place (:func:`affect4k.core.workflow.job`). Scripts import the package inside the ``with``
block, so whatever an import prints already goes to the job's log.
"""

import sys
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(SRC))


def job(snakemake: Any, **options: Any) -> Any:
    """:func:`affect4k.core.workflow.job` for this script's Snakemake job, logging to its log
    file.
    """
    sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 (the job's lifetime)
    from affect4k.core.workflow import job as package_job

    return package_job(snakemake, **options)
