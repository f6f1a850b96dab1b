"""What the training and prediction scripts start with: ``from model_job import job``.

:func:`common.job` with the backend, device and precision set up first
(:func:`affect4k.model.device.model_setup`), so the job's first log line says what it runs on. Kept
apart from ``common.py`` so that the scripts of the NumPy stages never import a backend.
"""

from typing import Any

import common


def job(snakemake: Any) -> Any:
    """:func:`common.job` for a job that builds or runs a model."""
    from affect4k.model.device import model_setup

    return common.job(snakemake, setup=model_setup(snakemake.config["training"]))
