"""ffmpeg plumbing shared by every stage that reads or writes video.

Invocations are built with ffmpeg-python and run as argv lists (never through a shell) with the
ffmpeg binary of the imageio-ffmpeg wheel, so ``pip install`` is all a user needs. Frames are
streamed through a pipe as raw RGB so each frame is decoded once and never touches the disk.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from threading import Event, Thread
from typing import BinaryIO, TypeVar

import ffmpeg
import imageio_ffmpeg
import numpy as np

from affect4k.errors import Affect4kError

#: Environment variable naming an ffmpeg binary to use instead of the bundled one.
FFMPEG_ENV = "AFFECT4K_FFMPEG"

T = TypeVar("T")


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
    result = subprocess.run(argv, capture_output=True, check=False)
    header = result.stderr.decode("utf-8", "replace")
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


_FRAME_COUNT_RE = re.compile(r"frame=\s*(\d+)")


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of video frames, counted by stream-copying the video into a null sink.

    No frame is decoded (imageio-ffmpeg's counter decodes every frame, as slow as the face
    stage's own decoding at 4K); a packet that then fails to decode makes
    :func:`iter_frames` yield fewer frames, which callers check against this count.
    """
    argv = (
        ffmpeg.input(str(path))["v:0"]
        .output("-", format="null", c="copy")
        .global_args("-hide_banner", "-nostdin")
        .compile(cmd=ffmpeg_exe())
    )
    result = subprocess.run(argv, capture_output=True, check=False)
    counts = _FRAME_COUNT_RE.findall(result.stderr.decode("utf-8", "replace"))
    if result.returncode != 0 or not counts:
        raise Affect4kError(f"{path}: cannot count frames:\n{_stderr_tail(result.stderr)}")
    return int(counts[-1])


def iter_frames(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield each frame of ``path`` as an ``(H, W, 3)`` uint8 RGB array, decoded exactly once.

    ``size=(width, height)`` scales in ffmpeg; by default frames come at full resolution. The
    arrays are fresh buffers, safe to keep. Each is filled straight from the pipe (``readinto``)
    because a 4K frame is 24 MB and an extra copy per frame costs as much as decoding it. A
    decode error or a truncated file raises :class:`Affect4kError` naming ``path`` after the
    frames that did decode.
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
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert process.stdout is not None and process.stderr is not None
    try:
        while True:
            frame = np.empty((height, width, 3), np.uint8)
            filled = _read_into(process.stdout, memoryview(frame).cast("B"))
            if filled == 0:
                break
            if filled != frame.nbytes:
                raise Affect4kError(f"{path}: truncated frame in decoded stream")
            yield frame
        stderr = process.stderr.read()
        if process.wait() != 0:
            raise Affect4kError(f"{path}: video is corrupt or truncated:\n{_stderr_tail(stderr)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def _read_into(pipe: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from an unbuffered pipe, which returns at most what is in it per call."""
    filled = 0
    while filled < len(buffer):
        count = pipe.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the caller.

    Decoding already runs in the ffmpeg process, but reading the pipe and any per-frame
    preprocessing done inside ``items`` (numpy/OpenCV release the GIL) then overlap with the
    caller's own work instead of alternating with it. The bound keeps memory flat. An exception
    in ``items`` is re-raised in the caller; stopping early closes ``items`` (killing ffmpeg).
    """
    queue: Queue[tuple[bool, object]] = Queue(maxsize=depth)
    stop = Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((False, item)):
                    return
            put((True, None))
        except BaseException as error:  # re-raised in the consumer thread
            put((True, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = Thread(target=produce, name="affect4k-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            done, value = queue.get()
            if done:
                if value is not None:
                    raise value  # type: ignore[misc]
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
