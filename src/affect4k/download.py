"""Fetch one source video with yt-dlp into ``resources/downloads/{video}.mkv``.

yt-dlp is driven through its Python API, never a shell, so nothing in a URL is ever interpreted
as a command. Local files (the demo's synthetic videos, a user's own recordings) go through
yt-dlp as ``file://`` URLs too, so the demo exercises exactly the code path a real download
takes. Everything lands in Matroska because it holds any codec pair YouTube serves (VP9/AV1 with
Opus, H.264 with AAC) without re-encoding.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import yt_dlp

from affect4k.errors import Affect4kError
from affect4k.media import ffmpeg_exe, probe_video

_log = logging.getLogger(__name__)

_REMOTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class _YtDlpLogger:
    """Sends yt-dlp's messages to :mod:`logging` instead of progress lines on the terminal."""

    def debug(self, message: str) -> None:
        _log.debug(message)

    def info(self, message: str) -> None:
        _log.info(message)

    def warning(self, message: str) -> None:
        _log.warning(message)

    def error(self, message: str) -> None:
        # yt-dlp raises right after logging an error; the message reaches the user in that
        # exception (as an Affect4kError), so logging it louder would only print it twice.
        _log.debug(message)


def local_source(url: str) -> Path | None:
    """The absolute path of the local file ``url`` names, or ``None`` for a remote URL.

    ``file://`` URLs and anything without a ``scheme://`` prefix count as local; relative paths
    are taken from the current directory. The Snakefile declares these as rule inputs so that
    replacing a local source re-runs its download.
    """
    if url.startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise Affect4kError(f"{url}: file URLs must name a file on this machine")
        return Path(url2pathname(parsed.path)).absolute()
    if _REMOTE_URL.match(url):
        return None
    return Path(url).absolute()


def _reason(error: Exception) -> str:
    return re.sub(r"^ERROR:\s*", "", str(error)).strip()


def download_video(video_id: str, url: str, out_path: Path, *, max_height: int = 2160) -> Path:
    """Download the best video and audio up to ``max_height`` pixels tall into ``out_path``.

    The file always ends up as Matroska at exactly ``out_path``; yt-dlp works in a temporary
    folder beside it, so a failed or killed download leaves no file a rerun would trust.
    Returns ``out_path``.
    """
    if max_height <= 0:
        raise Affect4kError(f"video {video_id}: max_height must be positive, got {max_height}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        local = local_source(url)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    source = local.as_uri() if local is not None else url
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as work:
        options = {
            "format": (
                f"bestvideo[height<={max_height}]+bestaudio/best[height<={max_height}]/best"
            ),
            "merge_output_format": "mkv",
            "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mkv"}],
            "ffmpeg_location": ffmpeg_exe(),
            "outtmpl": "video.%(ext)s",
            "paths": {"home": work, "temp": work},
            "enable_file_urls": True,
            "noplaylist": True,
            "cachedir": False,
            "quiet": True,
            "noprogress": True,
            "color": "no_color",
            "logger": _YtDlpLogger(),
        }
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = ydl.extract_info(source, download=False, process=False)
                if info.get("_type") in ("playlist", "multi_video"):
                    raise Affect4kError(
                        f"video {video_id}: {url} is a playlist; list its videos one per line"
                    )
                info = ydl.process_ie_result(info, download=True)
        except yt_dlp.utils.YoutubeDLError as error:
            raise Affect4kError(
                f"video {video_id}: cannot download {url}: {_reason(error)}"
            ) from error
        downloads = info.get("requested_downloads") or []
        result = Path(downloads[0]["filepath"]) if len(downloads) == 1 else None
        if result is None or result.suffix != ".mkv" or not result.is_file():
            raise Affect4kError(f"video {video_id}: {url} did not yield one Matroska video file")
        try:
            probe_video(result)
        except Affect4kError as error:
            raise Affect4kError(f"video {video_id}: {url} is not a video: {error}") from error
        os.replace(result, out_path)
    return out_path
