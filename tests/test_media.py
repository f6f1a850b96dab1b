"""media: frame counting, decoding into fresh arrays, prefetching, and clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from affect4k.errors import Affect4kError
from affect4k.media import count_frames, ffmpeg_exe, iter_frames, prefetch, probe_video

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)] * 3


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    height, width = frames[0].shape[:2]
    argv = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
        .output(str(path), vcodec="libx264", preset="ultrafast", qp=0, pix_fmt="yuv444p")
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(argv, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


@pytest.fixture(scope="module")
def colour_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [np.full((72, 128, 3), colour, np.uint8) for colour in COLOURS]
    return write_clip(tmp_path_factory.mktemp("media") / "colours.avi", frames)


def test_count_frames_matches_frames_written_and_decoded(colour_clip: Path):
    assert count_frames(colour_clip) == len(COLOURS) == sum(1 for _ in iter_frames(colour_clip))


def test_iter_frames_decodes_each_frame_into_its_own_array(colour_clip: Path):
    frames = list(iter_frames(colour_clip))
    for frame, colour in zip(frames, COLOURS, strict=True):
        assert frame.shape == (72, 128, 3) and frame.dtype == np.uint8
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), colour, atol=3)
    assert len({id(frame) for frame in frames}) == len(frames)
    assert not np.shares_memory(frames[0], frames[1])


def test_iter_frames_scales_in_ffmpeg(colour_clip: Path):
    frame = next(iter(iter_frames(colour_clip, size=(64, 36))))
    assert frame.shape == (36, 64, 3)
    assert probe_video(colour_clip).width == 128


def test_unreadable_file_is_named_in_the_error(tmp_path: Path):
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"not a video" * 100)
    for read in (count_frames, probe_video, lambda path: list(iter_frames(path))):
        with pytest.raises(Affect4kError, match="garbage.avi"):
            read(garbage)


def test_prefetch_keeps_order_and_reraises_errors_from_the_source():
    def source():
        yield from range(5)
        raise ValueError("broken source")

    seen = []
    with pytest.raises(ValueError, match="broken source"):
        for item in prefetch(source(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_closes_the_source_when_the_caller_stops_early():
    closed = []

    def source():
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    for item in prefetch(source(), depth=2):
        if item == 3:
            break
    assert closed == [True]
