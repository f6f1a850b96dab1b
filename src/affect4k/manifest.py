"""The list of videos that make up the database, read from a tab-separated file.

Every value here later names files (``results/clips/{video_id}.avi``) or reaches yt-dlp, so the
file is validated strictly and every complaint names the file and line to fix: a video id that
could escape ``results/`` or a start after the end must stop the pipeline before it downloads.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from affect4k.errors import Affect4kError

#: Characters a video id may use. Unanchored so the Snakefile can use it as a wildcard constraint;
#: it excludes ``/``, ``.`` and shell metacharacters, so an id is always one plain file name.
VIDEO_ID_PATTERN = r"[A-Za-z0-9_-]+"

COLUMNS = ("video_id", "url", "start", "end")


@dataclass(frozen=True)
class VideoEntry:
    """One source video and the segment of it (seconds; ``None`` = its start or end) to keep."""

    video_id: str
    url: str
    start: float | None
    end: float | None


def _seconds(text: str, column: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Affect4kError(f"{where}: {column} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise Affect4kError(f"{where}: {column} {text!r} must be a finite number >= 0")
    return value


def _entry(fields: list[str], where: str) -> VideoEntry:
    if len(fields) != len(COLUMNS):
        raise Affect4kError(
            f"{where}: expected {len(COLUMNS)} tab-separated columns "
            f"({', '.join(COLUMNS)}), found {len(fields)}"
        )
    video_id, url, start_text, end_text = (field.strip() for field in fields)
    if not re.fullmatch(VIDEO_ID_PATTERN, video_id):
        raise Affect4kError(
            f"{where}: video_id {video_id!r} may only use letters, digits, '_' and '-'"
        )
    if not url:
        raise Affect4kError(f"{where}: video {video_id} has an empty url")
    start = _seconds(start_text, "start", where)
    end = _seconds(end_text, "end", where)
    if end is not None and end <= (start or 0.0):
        raise Affect4kError(f"{where}: video {video_id} has end {end} s <= start {start or 0} s")
    return VideoEntry(video_id, url, start, end)


def read_videos(path: str | os.PathLike[str]) -> list[VideoEntry]:
    """Read and validate the videos TSV (header ``video_id url start end``), in file order.

    Blank lines and lines starting with ``#`` are skipped so the list can be commented.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise Affect4kError(f"{path}: cannot read the video list ({error})") from error
    entries: list[VideoEntry] = []
    first_line: dict[str, int] = {}
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{path}:{number}"
        if not header_seen:
            if tuple(field.strip() for field in fields) != COLUMNS:
                raise Affect4kError(
                    f"{where}: header must be the tab-separated columns {', '.join(COLUMNS)}"
                    f", found {line.strip()!r}"
                )
            header_seen = True
            continue
        entry = _entry(fields, where)
        if entry.video_id in first_line:
            raise Affect4kError(
                f"{where}: video_id {entry.video_id} already used on line "
                f"{first_line[entry.video_id]}"
            )
        first_line[entry.video_id] = number
        entries.append(entry)
    if not entries:
        raise Affect4kError(f"{path}: lists no videos")
    return entries
