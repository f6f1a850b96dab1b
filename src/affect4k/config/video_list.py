"""The list of videos that make up the database, read from a tab-separated file.

Every value here later names files (``results/clips/{video_id}.avi``) or reaches yt-dlp, so the
file is validated strictly and every complaint names the file and line to fix: a video id that
could escape ``results/`` or a start after the end must stop the pipeline before it downloads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from yt_dlp.extractor.youtube import YoutubeIE

from affect4k.core.errors import Affect4kError
from affect4k.video.download import local_source

#: Longest video id: with the longest suffix a stage adds it stays far below the 255-byte limit
#: of a file name, so a long id is refused here instead of crashing a job with "File name too
#: long" after the download.
MAX_VIDEO_ID_LENGTH = 64

#: Characters a video id may use. Unanchored so the Snakefile can use it as a wildcard constraint;
#: it excludes ``/``, ``.`` and shell metacharacters, so an id is always one plain file name.
VIDEO_ID_PATTERN = rf"[A-Za-z0-9_-]{{1,{MAX_VIDEO_ID_LENGTH}}}"

#: A number of seconds as people write it: digits with an optional decimal part. ``float()``
#: alone would also take ``1_0`` (10), ``1e3``, ``inf`` and non-ASCII digits.
_SECONDS_RE = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")

COLUMNS = ("video_id", "url", "start", "end")
#: An optional column: what must not straddle the split (a channel, a studio), overriding
#: the default group (the video's person and source, see :mod:`affect4k.faces.persons`).
GROUP_COLUMN = "group"
#: An optional column: a photo of the video's subject (the face stage keeps that person).
SUBJECT_COLUMN = "subject"
#: An optional column: who the subject is, a name the user chooses; overrides the person the
#: subject's face embedding is matched to across videos.
PERSON_COLUMN = "person"
OPTIONAL_COLUMNS = (GROUP_COLUMN, SUBJECT_COLUMN, PERSON_COLUMN)

#: YouTube forms yt-dlp's YoutubeIE leaves to its playlist extractor, which fetches the one
#: video (``shorts/<id>``, ``live/<id>``) or refuses the row as a playlist (``&list=``).
_YOUTUBE_ID_RE = re.compile(
    r"(?:youtube(?:-nocookie)?\.com/(?:watch/?\?(?:.*&)?v=|shorts/|embed/|live/|v/)|youtu\.be/)"
    r"([A-Za-z0-9_-]{11})(?![A-Za-z0-9_-])",
    re.IGNORECASE,
)
#: Query parameters that name a moment or where a link was shared from, not another video.
_IGNORED_PARAMETERS = frozenset(
    {"t", "start", "time_continue", "feature", "si", "ref", "ref_src", "fbclid", "gclid"}
    | {"dclid", "msclkid", "igshid", "mc_cid", "mc_eid", "yclid", "_ga", "pp"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class VideoEntry:
    """One source video and the segment of it (seconds; ``None`` = its start or end) to keep."""

    video_id: str
    url: str
    start: float | None
    end: float | None
    #: The ``group`` cell, or the video's source where it is empty (:func:`source_group`).
    group: str
    #: Path of a photo of the person whose face the database keeps; None: the person on
    #: screen the longest (see :mod:`affect4k.faces.tracking`).
    subject: str | None = None
    #: The ``person`` cell; None: the person is found from the subject's face.
    person: str | None = None
    #: Whether ``group`` is the user's ``group`` cell, which then alone places the video
    #: (:func:`affect4k.faces.persons.video_groups`); otherwise person and source do.
    group_given: bool = False


def youtube_id(url: str) -> str | None:
    """The id of the one YouTube video ``url`` names, else None.

    Asks yt-dlp's own YouTube extractor (offline: it only matches its URL patterns), so every
    form it downloads as a single video (``watch?v=``, ``watch/?v=``, ``youtu.be``, ``embed``,
    ``e/``, ``m.`` and music hosts, any host case, Invidious mirrors, ...) gives the same id;
    ``shorts/`` and ``live/`` go through its playlist extractor and are matched here.
    """
    if YoutubeIE.suitable(url):
        return YoutubeIE.get_temp_id(url)
    match = _YOUTUBE_ID_RE.search(url)
    return match.group(1) if match else None


def normalised_url(url: str) -> str:
    """``url`` as one spelling per resource: scheme http/https as ``https``, host lower-case
    without ``www.`` or credentials, no default port, no trailing slash or fragment, and the
    query without time or tracking parameters (``t``, ``utm_*``, ``fbclid``, ...), sorted."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").removeprefix("www.")
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    if scheme in _DEFAULT_PORTS:
        scheme = "https"
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _IGNORED_PARAMETERS and not key.lower().startswith("utm_")
    )
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}{path}" + (f"?{urlencode(query)}" if query else "")


def local_group(path: Path) -> str:
    """A local source's group: its real path (links and ``..`` resolved), relative to the
    working directory when inside it, so the split does not depend on where the project is."""
    real = Path(os.path.realpath(path))
    here = Path.cwd().resolve()
    return real.relative_to(here).as_posix() if real.is_relative_to(here) else real.as_posix()


def source_group(url: str) -> str:
    """The default group of a video: its source, so parts cut from one source (the same
    people) never straddle the split however the source is written.

    A local path or ``file://`` URL (whatever :func:`affect4k.video.download.local_source` reads as
    local, as the download does) by its real path (:func:`local_group`); a URL of one YouTube
    video ``youtube:<id>`` (:func:`youtube_id`); any other URL :func:`normalised_url`.
    """
    url = url.strip()
    try:
        path = local_source(url)
    except Affect4kError:
        # A file:// URL naming another host: the download refuses it; group it as written.
        return url
    if path is not None:
        return local_group(path)
    video = youtube_id(url)
    return f"youtube:{video}" if video is not None else normalised_url(url)


def _seconds(text: str, column: str, where: str) -> float | None:
    if not text:
        return None
    if not _SECONDS_RE.fullmatch(text):
        raise Affect4kError(
            f"{where}: {column} {text!r} is not a plain decimal number of seconds "
            "(digits with an optional '.' part, like 75 or 12.5)"
        )
    return float(text)


def _entry(fields: list[str], columns: tuple[str, ...], where: str) -> VideoEntry:
    if len(fields) != len(columns):
        raise Affect4kError(
            f"{where}: expected {len(columns)} tab-separated columns "
            f"({', '.join(columns)}), found {len(fields)}"
        )
    video_id, url, start_text, end_text, *rest = (field.strip() for field in fields)
    optional = dict(zip(columns[len(COLUMNS) :], rest, strict=True))
    if len(video_id) > MAX_VIDEO_ID_LENGTH:
        raise Affect4kError(
            f"{where}: video_id {video_id[:20]!r}... is {len(video_id)} characters long, "
            f"the limit is {MAX_VIDEO_ID_LENGTH}"
        )
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
    subject = optional.get(SUBJECT_COLUMN)
    if subject and ("{" in subject or "}" in subject):
        # The photo is an input of the face stage, and Snakemake reads braces as wildcards.
        raise Affect4kError(f"{where}: subject photo {subject!r} of video {video_id} has braces")
    group = optional.get(GROUP_COLUMN) or source_group(url)
    person = optional.get(PERSON_COLUMN) or None
    given = bool(optional.get(GROUP_COLUMN))
    return VideoEntry(video_id, url, start, end, group, subject or None, person, given)


def demo_videos(video_ids: Sequence[str]) -> list[VideoEntry]:
    """The entries of a demo config without a videos list: each generated source
    (``resources/demo/sources/{video}.mp4``, the demo rules' output) kept whole."""
    entries = []
    for video_id in video_ids:
        url = f"resources/demo/sources/{video_id}.mp4"
        entries.append(VideoEntry(video_id, url, None, None, source_group(url)))
    return entries


def read_videos(path: str | os.PathLike[str]) -> list[VideoEntry]:
    """Read and validate the videos TSV (header ``video_id url start end``, then optionally
    ``group``, ``subject`` and ``person`` in any order), in order.

    Without a ``group`` column (or with an empty cell) a video's group is found from its
    person and source (:func:`affect4k.faces.persons.video_groups`); ``person`` names the subject
    where the user knows who it is. A
    ``subject`` cell is a path to a photo of the person to keep (relative paths from the
    workflow's folder, like local sources); empty: the person on screen the longest.

    Blank lines and lines starting with ``#`` are skipped so the list can be commented. A UTF-8
    byte order mark (spreadsheet programs write one) is allowed, as in the trace files.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
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
            columns = tuple(field.strip() for field in fields)
            extra = columns[len(COLUMNS) :]
            if (
                columns[: len(COLUMNS)] != COLUMNS
                or not set(extra) <= set(OPTIONAL_COLUMNS)
                or len(set(extra)) != len(extra)
            ):
                raise Affect4kError(
                    f"{where}: header must be the tab-separated columns {', '.join(COLUMNS)}"
                    f" (then optionally {', '.join(OPTIONAL_COLUMNS)}),"
                    f" found {line.strip()!r}"
                )
            header_seen = True
            continue
        entry = _entry(fields, columns, where)
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
