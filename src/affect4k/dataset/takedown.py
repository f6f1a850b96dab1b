"""Taking a video down: the ``takedown`` list, which videos it names, and deleting their files.

A video derived from YouTube may have to leave the database (its owner asks, a person in it
asks, the video is gone). ``config/takedown.tsv`` lists such requests; the workflow drops the
videos it names from its list before planning anything, so the database, the split, the tables
and the release are rebuilt without them, and deletes every file it made of them, so that
nothing of a taken-down video stays under ``results/``. Each request counts in the release's
version and is named in its changelog (:mod:`affect4k.dataset.release`).
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from affect4k.config.video_list import VideoEntry, youtube_id
from affect4k.core.errors import Affect4kError

#: Columns of the takedown list, in this order.
COLUMNS = ("id", "date", "reason")
#: Folders (relative to the workflow's working directory) whose stages' folders hold per-video
#: files: a file in one of their subfolders named ``{video}`` or ``{video}.<suffix>`` is the
#: video's, except in :data:`RUN_FOLDERS`.
VIDEO_ROOTS = ("results", "logs", "benchmarks")
#: Folders of per-run outputs, named by run and evaluation set, never by video: a video named
#: ``test`` or ``history`` must not take a run's predictions or history with it.
RUN_FOLDERS = ("results/models", "results/predictions")
#: Folders whose every file is one video's (``{video}.mkv``).
VIDEO_FOLDERS = ("resources/downloads",)
#: Folders whose subfolders are one video's each (``results/frames/{video}/``).
VIDEO_DIRECTORIES = ("results/frames",)


@dataclass(frozen=True)
class Takedown:
    """One request: ``id`` is a video_id of videos.tsv or a YouTube id."""

    id: str
    date: str
    reason: str


def read_takedowns(path: str | os.PathLike[str]) -> list[Takedown]:
    """The requests of a takedown TSV (header ``id date reason``; ``#`` lines and blank lines
    skipped), each checked: a date as YYYY-MM-DD, a reason, no id twice."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise Affect4kError(f"{path}: cannot read the takedown list ({error})") from None
    rows = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    rows = [(number, line) for number, line in rows if not line.startswith("#")]
    if not rows or tuple(rows[0][1].rstrip("\r").split("\t")) != COLUMNS:
        raise Affect4kError(f"{path}: the first line must be the header {' '.join(COLUMNS)}")
    requests: dict[str, Takedown] = {}
    for number, line in rows[1:]:
        cells = [cell.strip() for cell in line.rstrip("\r").split("\t")]
        if len(cells) != len(COLUMNS):
            raise Affect4kError(f"{path}:{number}: expected {len(COLUMNS)} tab-separated cells")
        request = Takedown(*cells)
        if not request.id:
            raise Affect4kError(f"{path}:{number}: empty id")
        try:
            datetime.date.fromisoformat(request.date)
        except ValueError:
            raise Affect4kError(
                f"{path}:{number}: date {request.date!r} is not YYYY-MM-DD"
            ) from None
        if not request.reason:
            raise Affect4kError(f"{path}:{number}: a takedown needs its reason")
        if request.id in requests:
            raise Affect4kError(f"{path}:{number}: {request.id} is listed twice")
        requests[request.id] = request
    return list(requests.values())


def taken_down(
    requests: Iterable[Takedown], videos: Mapping[str, VideoEntry]
) -> dict[str, Takedown]:
    """Video id -> the request naming it, by its video_id or by the YouTube id of its URL (a
    YouTube video cut into several clips loses all of them)."""
    by_id = {request.id: request for request in requests}
    named = {}
    for video, entry in videos.items():
        request = by_id.get(video) or by_id.get(youtube_id(entry.url) or "")
        if request is not None:
            named[video] = request
    return named


def video_files(videos: Iterable[str], workdir: Path = Path()) -> list[Path]:
    """Every file or folder of ``workdir`` that belongs to one of ``videos``, outermost first:
    files named ``{video}`` or ``{video}.<suffix>`` in a stage's folder under
    :data:`VIDEO_ROOTS` (never the shared tables at a root's top, so a video named
    ``annotations`` cannot take ``results/annotations.parquet`` with it), the files of
    :data:`VIDEO_FOLDERS`, and the per-video folders of :data:`VIDEO_DIRECTORIES` (never a folder
    elsewhere: a video named like a run must not take ``results/models/{run}/``), nothing in
    :data:`RUN_FOLDERS`."""
    names = set(videos)
    found = []
    for root in (*VIDEO_ROOTS, *VIDEO_FOLDERS):
        top = workdir / root
        for folder, subfolders, files in os.walk(top):
            here = Path(folder)
            if str(here.relative_to(workdir)) in RUN_FOLDERS:
                subfolders.clear()
                continue
            if str(here.relative_to(workdir)) in VIDEO_DIRECTORIES:
                found += [here / name for name in sorted(subfolders) if name in names]
                subfolders[:] = [name for name in subfolders if name not in names]
            if here == top and root in VIDEO_ROOTS:
                continue
            found += [here / name for name in sorted(files) if name.split(".")[0] in names]
    return found


def purge(videos: Iterable[str], workdir: Path = Path()) -> list[Path]:
    """Delete :func:`video_files` of ``videos``; returns what was deleted."""
    paths = video_files(videos, workdir)
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as error:
            raise Affect4kError(f"takedown: cannot delete {path} ({error.strerror})") from None
    return paths
