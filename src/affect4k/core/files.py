"""Writing outputs all-or-nothing and reading the tables stages pass to each other.

Snakemake trusts any output file that exists, so every file is written under a temp name in
its own directory and renamed into place only once complete: a killed or failed job leaves
either the old file or none, never a partial one a rerun would trust. A job killed with
SIGKILL cannot clean up after itself, so the next write of the same output removes what that
job left behind. Outputs get the user's umask (like any file a program creates), so a database
on a shared cluster is group-readable by default. A write that fails on a full disk or any
other system error is reported as one line naming the output, never as a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from affect4k.core.errors import Affect4kError

#: Temp names are ``.tmp-<8 hex digits>-<output name>``: the fixed-length token means the
#: leftovers of one output can never be mistaken for those of another (``a.mkv`` vs ``b-a.mkv``).
_TOKEN_HEX = 8


def _temp_name(path: Path) -> Path:
    return path.parent / f".tmp-{secrets.token_hex(_TOKEN_HEX // 2)}-{path.name}"


def remove_stale_temps(path: Path) -> None:
    """Delete the temp files and folders an earlier, killed write of ``path`` left beside it."""
    pattern = re.compile(rf"\.tmp-[0-9a-f]{{{_TOKEN_HEX}}}-{re.escape(path.name)}")
    try:
        siblings = list(path.parent.iterdir())
    except FileNotFoundError:
        return
    for stale in siblings:
        if not pattern.fullmatch(stale.name):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _write_error(path: Path, error: OSError, temp: Path | None = None) -> Affect4kError:
    """``cannot write <path>: <reason>``, naming the file the error was about if it is another
    one (a writer that failed to read its own input)."""
    reason = error.strerror or str(error)
    culprit = error.filename
    if culprit is not None and Path(os.fsdecode(culprit)) not in (path, temp):
        reason = f"{os.fsdecode(culprit)}: {reason}"
    return Affect4kError(f"cannot write {path}: {reason}")


@contextmanager
def _temp_sibling(path: Path, make: Callable[[Path], None]) -> Iterator[Path]:
    """Create a fresh temp entry beside ``path`` with ``make``, yield it, always remove it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        while True:
            temp = _temp_name(path)
            try:
                make(temp)
                break
            except FileExistsError:
                continue
    except OSError as error:
        raise _write_error(path, error) from error
    try:
        yield temp
    except OSError as error:
        raise _write_error(path, error, temp) from error
    finally:
        if temp.is_dir() and not temp.is_symlink():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)


def _create_file(temp: Path) -> None:
    # 0o666 filtered by the umask: the mode any program's new file gets (mkstemp forces 0o600).
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path in ``path``'s directory, ``os.replace`` it onto ``path`` on success.

    The temp name ends with ``path``'s own name so writers that dispatch on the extension
    (``np.save``, ``model.save``, ``save_weights``, ffmpeg) behave as for the real file; on any
    error the temp file is removed, and an ``OSError`` (full disk, no permission) becomes an
    :class:`Affect4kError` naming ``path``.
    """
    path = Path(path)
    with _temp_sibling(path, _create_file) as temp:
        yield temp
        os.replace(temp, path)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """:func:`atomic_path` for a folder: yield a new temp folder beside ``path`` and, when the
    block succeeds, put it in place of ``path`` (an older ``path`` is replaced), so ``path``
    holds every file or none."""
    path = Path(path)
    with _temp_sibling(path, lambda temp: temp.mkdir()) as temp:
        yield temp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(temp, path)


@contextmanager
def scratch_dir(path: Path) -> Iterator[Path]:
    """A temp folder beside ``path`` for tools that write several files before the output
    exists (yt-dlp's separate streams); removed afterwards, whatever happens. Move the finished
    file onto ``path`` from inside it with ``os.replace`` (same folder, so atomic), not with
    :func:`atomic_path`, which would clear this folder as a leftover of ``path``."""
    # Absolute, because tools that take it as a base folder (yt-dlp) resolve relative names
    # against it a second time.
    with _temp_sibling(Path(path).absolute(), lambda temp: temp.mkdir()) as folder:
        yield folder


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
