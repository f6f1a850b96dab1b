"""Progress of long stages: percent, rate and ETA on stderr, which is the job's log.

On a terminal this is tqdm's bar. In a file (a Snakemake job's log) every update is a line of
its own, at most every few seconds, so ``tail -f logs/<rule>/<job>.log`` shows how far a job is
and the log stays short.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

#: Seconds between two progress lines (at most 10, so a log read with tail -f looks alive).
UPDATE_SECONDS = 5.0


class _Lines:
    """A stream for tqdm that ends each status with a newline instead of rewriting the line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        status = text.strip("\r\n")
        if status.strip():
            self.stream.write(status + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(
    total: float | None,
    description: str,
    unit: str = "it",
    *,
    unit_scale: bool = False,
    stream: TextIO | None = None,
) -> tqdm:
    """A progress reporter for ``total`` units of work; call ``update(n)`` and ``close()``."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=unit_scale,
        mininterval=UPDATE_SECONDS,
        file=stream if tty else _Lines(stream),
        dynamic_ncols=tty,
        ascii=not tty,
    )
