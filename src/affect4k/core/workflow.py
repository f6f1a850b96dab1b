"""Glue between Snakemake's script directive and the package.

Every workflow script runs its step inside :func:`job`, so an input the package refuses ends
the job with one readable line in the job's log (which Snakemake prints with
``--show-failed-logs``) instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from affect4k import FFMPEG_ENV
from affect4k.core.errors import Affect4kError


@contextmanager
def job(snakemake: Any, *, setup: Callable[[], tuple[str, str]] | None = None) -> Iterator[Any]:
    """Run one Snakemake job: log to its log file (stderr) and the package's warnings to the
    console as well, apply the ``ffmpeg`` config key, and turn :class:`Affect4kError` (and any
    ``OSError``, e.g. a full disk) into ``error: <rule> <wildcards>: ...`` plus exit status 1.

    ``setup`` (training and prediction jobs: :func:`affect4k.model.device.model_setup`) runs
    first and returns what the job runs on, which becomes the first log line, and the output it
    held meanwhile, written after it. This module imports no backend (nor the module that sets
    one up), so the job of a NumPy stage never loads one and its code digest leaves it out.
    """
    if getattr(snakemake, "log", None):  # what a script imports from here on writes there
        sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 (the job's lifetime)
    name = " ".join([snakemake.rule, *(f"{k}={v}" for k, v in snakemake.wildcards.items())])
    # The package's own warnings (a video whose labels a lag cut short, a face found in few
    # frames) are said on the console too, one line naming the job, since nobody reads the logs
    # of jobs that succeeded: a copy of file descriptor 2 from before it becomes the log.
    console = logging.StreamHandler(os.fdopen(os.dup(2), "w", buffering=1))
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter(f"warning: {name}: %(message)s"))
    logging.getLogger("affect4k").addHandler(console)
    # Native libraries (TensorFlow, onnxruntime) and child processes write to file descriptor 2,
    # not to sys.stderr: point it at the job's log too, so the console shows only Snakemake.
    os.dup2(sys.stderr.fileno(), 2)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    # The config was validated against the schema, which fills in every default.
    if snakemake.config["ffmpeg"]:
        os.environ[FFMPEG_ENV] = snakemake.config["ffmpeg"]
    try:
        if setup is not None:
            device, held = setup()
            logging.info("%s: started on %s", name, device)
            sys.stderr.write(held)
        else:
            logging.info("%s: started", name)
        yield snakemake
    except Affect4kError as error:
        print(f"error: {name}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except OSError as error:  # a full disk or a permission problem outside affect4k.core.files
        where = f"{os.fsdecode(error.filename)}: " if error.filename is not None else ""
        print(f"error: {name}: {where}{error.strerror or error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    logging.info("%s: done", name)
