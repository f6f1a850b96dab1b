"""ffmpeg plumbing shared by every stage that reads or writes video.

Invocations are built with ffmpeg-python and run as argv lists (never through a shell) with the
ffmpeg binary of the imageio-ffmpeg wheel, so ``pip install`` is all a user needs. Frames are
streamed through a pipe as raw RGB so each frame is decoded once and never touches the disk.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from queue import Full, Queue
from threading import Event, Thread
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import ffmpeg
import imageio_ffmpeg
import numpy as np

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

from affect4k import FFMPEG_ENV
from affect4k.core.errors import Affect4kError
from affect4k.core.progress import progress

T = TypeVar("T")


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$AFFECT4K_FFMPEG`` if set, else the one inside imageio-ffmpeg."""
    return os.environ.get(FFMPEG_ENV) or imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    """What the first video stream of a file declares, as it is shown: ``width`` and
    ``height`` are the displayed frame's, after the stream's rotation, because ffmpeg turns
    every frame it decodes upright (a phone's portrait video, stored landscape)."""

    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool
    codec: str  #: ffmpeg's name of the video codec (``h264``, ``mpeg4``, ...)
    #: Degrees the stored frames are turned to be shown (the display matrix: 0, 90, 180, 270).
    rotation: int = 0


#: Every message ffmpeg prints carries its level (``[error]``), so the first real error can be
#: told apart from the statistics and follow-up complaints it prints after it.
_LOG_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "level+info")
_LEVEL_RE = re.compile(r"^((?:\[[^\]]*\] )*)\[(fatal|error|warning|info|verbose|debug)\] ")
_CONTEXT_RE = re.compile(r"\[([^\]@]*?)(?: @ 0x[0-9a-f]+)?\] ")


def _ffmpeg_argv(stream: ffmpeg.nodes.Node) -> list[str]:
    """``stream`` as argv with level-tagged logging (the first ``-loglevel`` given wins)."""
    argv = stream.compile(cmd=ffmpeg_exe(), overwrite_output=True)
    return [argv[0], *_LOG_ARGS, *argv[1:]]


def error_lines(stderr: bytes | str) -> list[str]:
    """The error and fatal messages in ffmpeg's level-tagged output, in the order printed, each
    as ``<component>: <message>`` (``libx264: width not divisible by 2 (641x361)``)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    found = []
    for line in text.splitlines():
        tagged = _LEVEL_RE.match(line)
        if tagged is None or tagged.group(2) not in ("error", "fatal"):
            continue
        contexts = [c.split("/")[-1].split(":")[0] for c in _CONTEXT_RE.findall(tagged.group(1))]
        message = line[tagged.end() :].strip()
        found.append(f"{contexts[-1]}: {message}" if contexts else message)
    return found


def first_error(stderr: bytes | str) -> str:
    """What went wrong first: ffmpeg's first error line, else its last line of output.

    After the real cause ffmpeg prints follow-up errors ("Error while opening encoder",
    "Task finished with error code") and statistics, so the last lines rarely say why.
    """
    errors = error_lines(stderr)
    if errors:
        return errors[0]
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [_LEVEL_RE.sub("", line).strip() for line in text.strip().splitlines()]
    return lines[-1] if lines else "no output"


def run_ffmpeg(stream: ffmpeg.nodes.Node, what: str, *, frames: int | None = None) -> None:
    """Run a compiled ffmpeg-python graph; on failure raise naming ``what`` and leading with
    the first error ffmpeg printed.

    With ``frames`` (how many the output will have) the frames written so far are reported as
    progress lines (``-progress``), so a long encode shows how far it is in the job's log.
    """
    argv = _ffmpeg_argv(stream)
    if frames is None:
        result = subprocess.run(argv, capture_output=True, check=False)
        returncode, stderr = result.returncode, result.stderr
    else:
        returncode, stderr = _run_with_progress(argv, frames, what)
    if returncode != 0:
        raise Affect4kError(f"ffmpeg failed on {what}: {first_error(stderr)}")


def write_frames(
    stream: ffmpeg.nodes.Node, frames: Iterable[bytes | memoryview], what: str
) -> None:
    """Run ``stream``, whose video input is ``pipe:`` raw frames, feeding it ``frames`` (each
    frame's bytes in the input's pixel format); the one writer of video for every stage, the
    demo generator and ``affect4k predict``'s overlay. On failure raise naming ``what`` and
    leading with the first error ffmpeg printed.
    """
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            _ffmpeg_argv(stream), stdin=subprocess.PIPE, stderr=stderr, bufsize=0
        )
        assert process.stdin is not None
        try:
            try:
                for frame in frames:
                    process.stdin.write(frame)
            except BrokenPipeError:
                pass  # ffmpeg stopped reading; its exit status and stderr say why
            finally:
                process.stdin.close()
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if returncode != 0:
            stderr.seek(0)
            raise Affect4kError(f"ffmpeg failed on {what}: {first_error(stderr.read())}")


def _run_with_progress(argv: list[str], frames: int, what: str) -> tuple[int, bytes]:
    """Run ``argv`` with ``-progress`` on stdout feeding a progress reporter; stderr goes to
    a temp file so that neither pipe can fill up and stall ffmpeg."""
    argv = [*argv[:1], "-progress", "pipe:1", "-nostats", *argv[1:]]
    bar = progress(frames, what, "frame")
    done = 0
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                key, _, value = line.decode("ascii", "replace").strip().partition("=")
                if key == "frame" and value.isdigit() and int(value) > done:
                    bar.update(int(value) - done)
                    done = int(value)
        finally:
            process.stdout.close()
            returncode = process.wait()
            bar.close()
        stderr.seek(0)
        return returncode, stderr.read()


@dataclass(frozen=True)
class ContainerFacts:
    """What a media file's container declares, as PyAV reads it."""

    video: VideoInfo | None  #: its first video stream; None without one
    duration_s: float | None  #: the container's duration (the longest stream's); None if unset
    tags: dict[str, str]  #: the container's metadata tags (``comment``, ``title``, ...)


def read_container(path: str | os.PathLike[str]) -> ContainerFacts:
    """Open ``path`` with PyAV (FFmpeg's libraries, in the wheel) and read what its container
    declares: the first video stream's codec, size, rotation and frame rate, the duration, the
    audio streams and the tags. Structured facts, where parsing what ``ffmpeg -i`` prints for
    people broke on every change of its wording. Only the first frame is decoded, for its
    rotation (a display matrix rides with the decoded frame in PyAV)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"{path}: no such video file")
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            duration = None
            if container.duration is not None:
                duration = container.duration / av.time_base
            tags = {str(key): str(value) for key, value in container.metadata.items()}
            video = None
            if container.streams.video:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                if rate:
                    rotation = _rotation(container, stream)
                    size = (stream.codec_context.width, stream.codec_context.height)
                    width, height = size[::-1] if rotation % 180 else size
                    video = VideoInfo(
                        width=width,
                        height=height,
                        fps=float(rate),
                        duration_s=duration if duration is not None else 0.0,
                        has_audio=bool(container.streams.audio),
                        codec=stream.codec_context.name,
                        rotation=rotation,
                    )
            return ContainerFacts(video=video, duration_s=duration, tags=tags)
    except av.FFmpegError as error:
        raise Affect4kError(f"{path}: not a readable video ({error.strerror})") from None


def _rotation(container: InputContainer, stream: VideoStream) -> int:
    """The first frame's display rotation in degrees (0, 90, 180 or 270); 0 if none decodes
    (a broken stream is refused where it is read)."""
    import av

    try:
        frame = next(container.decode(stream), None)
    except av.FFmpegError:
        return 0
    return round(frame.rotation) % 360 if frame is not None else 0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read size, frame rate, duration and audio presence; raise naming ``path`` if unreadable.

    The duration is the container's, which is the longest stream's: :func:`stream_times`
    gives the video's own.
    """
    facts = read_container(path)
    if facts.video is None or facts.duration_s is None or not facts.video.width:
        reason = "no video stream" if facts.video is None else "no size, frame rate or duration"
        raise Affect4kError(f"{path}: not a readable video ({reason})")
    return facts.video


@dataclass(frozen=True)
class StreamTimes:
    """How long a file's streams really last, from the timestamps of every packet or frame."""

    frames: int  #: frames of the first video stream (0 without one)
    video_end_s: float  #: end of its last frame (time + duration), seconds from the file start
    end_s: float  #: end of the last packet of that video and of every audio stream


_TIME_BASE_RE = re.compile(r"^#tb (\d+): (\d+)/(\d+)$", re.MULTILINE)
_MEDIA_TYPE_RE = re.compile(r"^#media_type (\d+): (\w+)$", re.MULTILINE)
_PACKET_RE = re.compile(r"^(\d+),\s*(?:-?\d+|NOPTS),\s*(-?\d+|NOPTS),\s*(-?\d+),", re.MULTILINE)


def stream_times(path: str | os.PathLike[str], *, decode: bool = False) -> StreamTimes:
    """Count the first video stream's frames and find where it and the audio end.

    ffmpeg's ``framecrc`` muxer lists every packet's timestamp and duration. Without ``decode``
    packets are only copied (no frame is decoded: as fast as reading the file; imageio-ffmpeg's
    counter would decode every 4K frame). With ``decode`` every video frame is decoded and the
    frames the decoder returns are counted: the check that a file is whole. Either way the
    first error ffmpeg reports (a packet past the end of a truncated file, a corrupt frame)
    raises :class:`Affect4kError` naming ``path``, even where ffmpeg itself would carry on.
    Times count from the file's start, as players show them.
    """
    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"{path}: no such video file")
    video_codec = ["wrapped_avframe", "-enc_time_base:v", "demux"] if decode else ["copy"]
    argv = [
        ffmpeg_exe(),
        *_LOG_ARGS[:2],
        "-loglevel",
        "level+error",
        "-i",
        str(path),
        *("-map", "0:V:0?", "-map", "0:a?", "-c:a", "copy", "-c:v", *video_codec),
        *("-fps_mode", "passthrough", "-f", "framecrc", "pipe:1"),
    ]
    result = subprocess.run(argv, capture_output=True, check=False)
    listing = result.stdout.decode("ascii", "replace")
    if result.returncode != 0 or error_lines(result.stderr):
        what = "does not decode" if decode else "cannot be read"
        raise Affect4kError(f"{path}: {what}: {first_error(result.stderr)}")
    time_base = {int(i): Fraction(int(a), int(b)) for i, a, b in _TIME_BASE_RE.findall(listing)}
    video = {int(i) for i, kind in _MEDIA_TYPE_RE.findall(listing) if kind == "video"}
    frames, video_end, end = 0, Fraction(0), Fraction(0)
    for stream, pts, duration in _PACKET_RE.findall(listing):
        if pts == "NOPTS":
            continue
        stop = (int(pts) + int(duration)) * time_base[int(stream)]
        end = max(end, stop)
        if int(stream) in video:
            frames += 1
            video_end = max(video_end, stop)
    return StreamTimes(frames=frames, video_end_s=float(video_end), end_s=float(end))


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of video frames, counted from the packets without decoding any.

    A packet that then fails to decode makes :func:`iter_frames` yield fewer frames, which
    callers check against this count.
    """
    return stream_times(path).frames


#: How far before its container's duration a file's streams may end. The header states the
#: duration to 10 ms and muxers round the last packet; a truncated file falls far shorter.
END_TOLERANCE_S = 0.5


def check_whole(path: str | os.PathLike[str], *, decode: bool = True) -> StreamTimes:
    """Refuse a media file (video, or audio only) that does not decode to its end or whose
    streams end before the duration its container declares.

    A file cut short whose index sits at its front (an MP4 written with ``faststart``, a
    Matroska file with its duration in the header) opens and probes like a whole one; only
    reading it to the end shows the missing part. ``decode=False`` reads the packets only, for
    a file made by stream copy from files already checked.
    """
    path = Path(path)
    duration = read_container(path).duration_s
    times = stream_times(path, decode=decode)
    if duration is None:
        raise Affect4kError(f"{path}: declares no duration")
    if times.end_s < duration - END_TOLERANCE_S:
        raise Affect4kError(
            f"{path}: truncated: its streams end at {times.end_s:.2f} s, but its container "
            f"declares {duration:.2f} s"
        )
    return times


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
        .global_args("-xerror")
        .compile(cmd=ffmpeg_exe())
    )
    argv = [argv[0], *_LOG_ARGS[:2], "-loglevel", "level+error", *argv[1:]]
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
            raise Affect4kError(f"{path}: video is corrupt or truncated: {first_error(stderr)}")
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
