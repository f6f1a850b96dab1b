"""Writing outputs all-or-nothing and reading the tables stages pass to each other.

Snakemake trusts any output file that exists, so every file is written under a temp name in
its own directory and renamed into place only once complete: a killed or failed job leaves
either the old file or none, never a partial one a rerun would trust.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from affect4k.errors import Affect4kError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path in ``path``'s directory, ``os.replace`` it onto ``path`` on success.

    The temp name ends with ``path``'s own name so writers that dispatch on the extension
    (``np.save``, ``model.save``, ``save_weights``, ffmpeg) behave as for the real file; on any
    error the temp file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path``: the file is complete or absent."""
    with atomic_path(path) as tmp:
        write(tmp)


def read_table(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """The parquet table at ``path``, refused with a message naming ``what`` and the file if it
    is missing, unreadable or lacks one of ``columns``."""
    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"{what}: {path} does not exist")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise Affect4kError(f"{what}: cannot read {path} as parquet ({exc})") from None
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise Affect4kError(f"{what}: {path} lacks column(s) {', '.join(missing)}")
    return table
