"""Fetch one source video with yt-dlp into ``resources/downloads/{video}.mkv``.

yt-dlp is driven through its Python API, never a shell, so nothing in a URL is ever interpreted
as a command. Local files (the demo's synthetic videos, a user's own recordings) go through
yt-dlp as ``file://`` URLs too, so the demo exercises exactly the code path a real download
takes. Everything lands in Matroska because it holds any codec pair YouTube serves (VP9/AV1 with
Opus, H.264 with AAC) without re-encoding.

Only a source that is local by construction (a path or ``file://`` URL in the video list) may
read this machine's files. For a remote URL, file URLs are off in yt-dlp and in any ffmpeg it
starts, so a remote playlist (HLS/DASH manifest) listing ``file:///...`` entries cannot copy a
local file into ``resources/downloads/``.

A file is published only once every file yt-dlp fetched, and the Matroska file made from them,
decodes to the end and lasts as long as its container declares: a server that sends a file cut
short (with its index at the front it opens like a whole one) fails the job, and nothing is
cached for a rerun to trust.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import yt_dlp

from affect4k.core.errors import Affect4kError
from affect4k.core.files import scratch_dir
from affect4k.core.media import StreamTimes, check_whole, ffmpeg_exe
from affect4k.core.progress import progress

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


#: Folder of the links through which Snakemake tracks local sources with braces in their path.
SOURCE_LINKS = Path("resources/sources")


def tracked_source(video_id: str, url: str, make_link: bool = True) -> str | None:
    """The file Snakemake should track as the download's input, or ``None`` for a remote URL.

    A local source is an input so that Snakemake makes it (the demo's) and a replaced file
    reruns its download; a path inside the working directory is given relative to it, so it
    matches the rule that makes it. Snakemake reads braces in an input path as wildcards and
    has no escape for them (``clip{1}.mp4`` is an error, ``clip{video}.mp4`` would silently be
    ``clipv1.mp4``), so such a source is tracked through a brace-free symbolic link,
    ``resources/sources/{video_id}``, made or repointed here (Snakemake follows links for
    modification times). The download itself always reads the path as written. ``None`` too
    for a braced path that does not exist: the download job then fails naming video and url.
    The workflow calls this for every video while it loads, because Snakemake does not see
    files made while it builds the DAG. With ``make_link`` false (a dry run, which must create
    nothing) a braced source is tracked only through a link a real run already made, and
    otherwise not at all.
    """
    source = local_source(url)
    if source is None:
        return None
    if "{" not in str(source) and "}" not in str(source):
        relative = os.path.relpath(source)
        return str(source) if relative.startswith("..") else relative
    if not source.is_file():
        return None
    link = SOURCE_LINKS / video_id
    if not (link.is_symlink() and Path(os.readlink(link)) == source):
        if not make_link:
            return None
        link.parent.mkdir(parents=True, exist_ok=True)
        temp = link.with_name(f".{video_id}.{os.getpid()}.link")
        temp.unlink(missing_ok=True)
        temp.symlink_to(source)
        os.replace(temp, link)
    return str(link)


#: Protocols an ffmpeg started by yt-dlp (HLS/DASH it does not fetch itself) may use for a
#: remote source: the network only, never ``file``.
_REMOTE_PROTOCOLS = "http,https,tcp,tls,crypto"

_FILE_URLS_DISABLED = "file:// URLs are disabled"


def _reason(error: Exception) -> str:
    reason = re.sub(r"^ERROR:\s*", "", str(error)).strip()
    if _FILE_URLS_DISABLED in reason:
        return (
            "it lists a file on this machine (a file:// URL), which a remote source may not "
            "read; only a path or file:// URL in the video list may"
        )
    return reason


class _ByteProgress:
    """yt-dlp progress hook: one progress reporter of bytes per file it downloads."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        self.bar: Any = None
        self.filename: str | None = None
        self.done = 0

    def __call__(self, status: dict[str, Any]) -> None:
        if status.get("status") not in ("downloading", "finished"):
            return
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if status.get("filename") != self.filename:
            self.close()
            self.filename = status.get("filename")
            name = Path(self.filename or "").name
            self.bar = progress(total, f"download {self.video_id} ({name})", "B", unit_scale=True)
        if total and self.bar.total != total:
            self.bar.total = total
        downloaded = status.get("downloaded_bytes") or 0
        if downloaded > self.done:
            self.bar.update(downloaded - self.done)
            self.done = downloaded
        if status["status"] == "finished":
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.filename, self.done = None, None, 0


def download_video(video_id: str, url: str, out_path: Path, *, max_height: int) -> Path:
    """Download the best video and audio up to ``max_height`` pixels tall into ``out_path``.

    The file always ends up as Matroska at exactly ``out_path``; yt-dlp works in a temporary
    folder beside it, so a failed or killed download leaves no file a rerun would trust. Every
    file fetched is checked to decode to its end before anything is published. Returns
    ``out_path``.
    """
    if max_height <= 0:
        raise Affect4kError(f"video {video_id}: max_height must be positive, got {max_height}")
    out_path = Path(out_path)
    try:
        local = local_source(url)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    source = local.as_uri() if local is not None else url
    bytes_progress = _ByteProgress(video_id)
    with scratch_dir(out_path) as work:
        options = {
            "format": (
                f"bestvideo[height<={max_height}]+bestaudio/best[height<={max_height}]/best"
            ),
            "merge_output_format": "mkv",
            "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mkv"}],
            # AVI stores no presentation timestamps: Matroska needs them, so the remuxer
            # generates them from the stream (H.264 in AVI fails to remux without).
            "postprocessor_args": {"videoremuxer+ffmpeg_i": ["-fflags", "+genpts"]},
            "ffmpeg_location": ffmpeg_exe(),
            "outtmpl": "video.%(ext)s",
            "paths": {"home": str(work), "temp": str(work)},
            # Local sources only: a remote manifest must not reach this machine's files.
            "enable_file_urls": local is not None,
            # The files as fetched stay until checked: merging or remuxing a file cut short
            # copies what is there and hides the missing part.
            "keepvideo": True,
            "noplaylist": True,
            "cachedir": False,
            "quiet": True,
            "noprogress": True,
            "progress_hooks": [bytes_progress],
            "color": "no_color",
            "logger": _YtDlpLogger(),
        }
        if local is None:
            options["external_downloader_args"] = {
                "ffmpeg_i": ["-protocol_whitelist", _REMOTE_PROTOCOLS]
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
        finally:
            bytes_progress.close()
        downloads = info.get("requested_downloads") or []
        result = Path(downloads[0]["filepath"]) if len(downloads) == 1 else None
        if result is None or result.suffix != ".mkv" or not result.is_file():
            raise Affect4kError(f"video {video_id}: {url} did not yield one Matroska video file")
        _check_download(video_id, url, result, sorted(set(work.iterdir()) - {result}))
        os.replace(result, out_path)  # the scratch folder is beside out_path: an atomic rename
    return out_path


def _check_download(video_id: str, url: str, result: Path, fetched: list[Path]) -> None:
    """Refuse ``result`` unless what yt-dlp fetched decodes to its end and ``result`` holds it.

    The files as fetched (``fetched``; none when yt-dlp kept the file as it came) are decoded
    frame by frame: merging or remuxing a file cut short would copy what is there and hide the
    missing part. The Matroska file made from them by stream copy then only has to last as
    long as its header says and hold exactly the video frames they decoded to.
    """

    def checked(path: Path, decode: bool) -> StreamTimes:
        try:
            return check_whole(path, decode=decode)
        except Affect4kError as error:
            reason = str(error).removeprefix(f"{path}: ")
            raise Affect4kError(
                f"video {video_id}: {url} is not a whole video: {reason}"
            ) from error

    decoded = sum(checked(path, decode=True).frames for path in fetched)
    frames = checked(result, decode=not fetched).frames
    if frames == 0:
        raise Affect4kError(f"video {video_id}: {url} has no video frame")
    if fetched and frames != decoded:
        raise Affect4kError(
            f"video {video_id}: {url} gave {frames} video frames after merging, but the "
            f"downloaded files decode to {decoded}"
        )
