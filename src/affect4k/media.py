"""ffmpeg plumbing shared by every stage that reads or writes video.

Invocations are built with ffmpeg-python and run as argv lists (never through a shell) with the
ffmpeg binary of the imageio-ffmpeg wheel, so ``pip install`` is all a user needs. Frames are
streamed through a pipe as raw RGB so each frame is decoded once and never touches the disk.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import imageio_ffmpeg
import numpy as np

from affect4k.errors import Affect4kError

#: Environment variable naming an ffmpeg binary to use instead of the bundled one.
FFMPEG_ENV = "AFFECT4K_FFMPEG"


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$AFFECT4K_FFMPEG`` if set, else the one inside imageio-ffmpeg."""
    return os.environ.get(FFMPEG_ENV) or imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    """What the first video stream of a file declares."""

    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool


def _stderr_tail(stderr: bytes, lines: int = 8) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(text[-lines:])


def run_ffmpeg(stream: ffmpeg.nodes.Node, what: str) -> None:
    """Run a compiled ffmpeg-python graph; on failure raise naming ``what`` and ffmpeg's reason."""
    argv = stream.compile(cmd=ffmpeg_exe(), overwrite_output=True)
    result = subprocess.run(argv, capture_output=True, check=False)
    if result.returncode != 0:
        raise Affect4kError(f"ffmpeg failed on {what}:\n{_stderr_tail(result.stderr)}")


_VIDEO_RE = re.compile(r"Stream #\S+.*?: Video: .*?(\d{2,5})x(\d{2,5})")
_FPS_RE = re.compile(r"([\d.]+) (?:fps|tbr)")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read size, frame rate, duration and audio presence; raise naming ``path`` if unreadable.

    imageio-ffmpeg ships no ffprobe, so this parses the header that ``ffmpeg -i`` prints.
    """
    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"{path}: no such video file")
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    header = subprocess.run(argv, capture_output=True, check=False).stderr.decode("utf-8", "replace")
    video = _VIDEO_RE.search(header)
    fps = _FPS_RE.search(header[video.end() :]) if video else None
    duration = _DURATION_RE.search(header)
    if not (video and fps and duration):
        reason = header.strip().splitlines()[-1] if header.strip() else "no output"
        raise Affect4kError(f"{path}: not a readable video ({reason})")
    hours, minutes, seconds = duration.groups()
    return VideoInfo(
        width=int(video.group(1)),
        height=int(video.group(2)),
        fps=float(fps.group(1)),
        duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        has_audio="Audio:" in header,
    )


def count_frames(path: str | os.PathLike[str]) -> int:
    """Exact number of video frames, found by remuxing without decoding (fast even at 4K)."""
    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError) as error:
        raise Affect4kError(f"{path}: cannot count frames ({error})") from error
    return frames


def iter_frames(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield each frame of ``path`` as an ``(H, W, 3)`` uint8 RGB array, decoded exactly once.

    ``size=(width, height)`` scales in ffmpeg; by default frames come at full resolution. The
    arrays are fresh buffers, safe to keep. A decode error or a truncated file raises
    :class:`Affect4kError` naming ``path`` after the frames that did decode.
    """
    info = probe_video(path)
    width, height = size or (info.width, info.height)
    out_args: dict[str, object] = {"format": "rawvideo", "pix_fmt": "rgb24"}
    if size is not None:
        out_args["s"] = f"{width}x{height}"
    argv = (
        ffmpeg.input(str(path))
        .output("pipe:", **out_args)
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-xerror")
        .compile(cmd=ffmpeg_exe())
    )
    frame_bytes = width * height * 3
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        while True:
            buffer = process.stdout.read(frame_bytes)
            if not buffer:
                break
            if len(buffer) != frame_bytes:
                raise Affect4kError(f"{path}: truncated frame in decoded stream")
            yield np.frombuffer(bytearray(buffer), np.uint8).reshape(height, width, 3)
        stderr = process.stderr.read()
        if process.wait() != 0:
            raise Affect4kError(f"{path}: video is corrupt or truncated:\n{_stderr_tail(stderr)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
