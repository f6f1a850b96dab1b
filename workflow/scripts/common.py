"""What every workflow script starts with: ``from common import job``.

Snakemake puts this directory on a script's sys.path, so the import works in any environment (a
conda env from envs/, a cluster node) even where affect4k is not pip-installed: it puts the
package code that sits next to this workflow first on the path, and hands on the one ``job``
(:func:`affect4k.core.workflow.job`), which sets up the job's log and error format. Scripts
import the rest of the package inside the ``with`` block, so whatever an import prints goes to
the job's log.
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(SRC))

from affect4k.core.workflow import job  # noqa: E402 (after the path is set)

__all__ = ["job"]
