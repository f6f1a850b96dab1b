"""A small local source video and the check that a download is that video, for the download
unit and workflow tests; ``source_video`` reaches them through ``pytest_plugins`` in
tests/conftest.py."""

from pathlib import Path

import ffmpeg
import pytest

from affect4k.core.media import count_frames, probe_video, run_ffmpeg

FRAMES = 30


@pytest.fixture(scope="module")
def source_video(tmp_path_factory) -> Path:
    """A 1.2 s, 25 fps, 64x48 MP4 with a sine tone: tiny, so each download takes a moment."""
    path = tmp_path_factory.mktemp("source") / "source.mp4"
    video = ffmpeg.input("testsrc=size=64x48:rate=25", f="lavfi")
    audio = ffmpeg.input("sine=frequency=440", f="lavfi")
    stream = ffmpeg.output(
        video,
        audio,
        str(path),
        vcodec="libx264",
        pix_fmt="yuv420p",
        acodec="aac",
        **{"frames:v": FRAMES, "t": FRAMES / 25},
    )
    run_ffmpeg(stream, "test source")
    return path


def assert_is_the_source(path: Path) -> None:
    assert path.suffix == ".mkv"
    assert path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic: really Matroska
    info = probe_video(path)
    assert (info.width, info.height, info.has_audio) == (64, 48, True)
    assert count_frames(path) == FRAMES
