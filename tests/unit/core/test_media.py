"""media: frame counting, decoding into fresh arrays, prefetching, and clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from affect4k.core.errors import Affect4kError
from affect4k.core.media import (
    check_whole,
    count_frames,
    ffmpeg_exe,
    iter_frames,
    prefetch,
    probe_video,
    run_ffmpeg,
    stream_times,
)

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


def encode(path: Path, seconds: float, *, audio_seconds: float | None = None, **args) -> Path:
    """A 64x48 test pattern at 25 fps, with a tone lasting ``audio_seconds`` if given."""
    streams = [ffmpeg.input(f"testsrc=size=64x48:rate=25:duration={seconds}", f="lavfi")]
    if audio_seconds is not None:
        streams.append(ffmpeg.input(f"sine=duration={audio_seconds}", f="lavfi"))
    run_ffmpeg(
        ffmpeg.output(*streams, str(path), vcodec="libx264", pix_fmt="yuv420p", **args), "test"
    )
    return path


def test_failure_leads_with_the_first_error_ffmpeg_printed(tmp_path: Path):
    """x264's reason comes first; the follow-up errors and statistics would hide it."""
    odd = ffmpeg.input("testsrc=size=641x361:rate=25", f="lavfi", t=0.2)
    with pytest.raises(Affect4kError) as caught:
        run_ffmpeg(odd.output(str(tmp_path / "o.mkv"), vcodec="libx264", pix_fmt="yuv420p"), "v9")
    assert str(caught.value).splitlines()[0] == (
        "ffmpeg failed on v9: libx264: width not divisible by 2 (641x361)"
    )


def test_run_ffmpeg_reports_frames_written_as_progress_lines(tmp_path: Path, capsys):
    source = ffmpeg.input("testsrc=size=64x48:rate=25", f="lavfi", t=2)
    run_ffmpeg(source.output(str(tmp_path / "o.mkv"), vcodec="libx264"), "encode v1", frames=50)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("encode v1: ") for line in lines)
    assert "50/50" in lines[-1] and "100%" in lines[-1]
    assert count_frames(tmp_path / "o.mkv") == 50


def test_stream_times_give_the_video_streams_own_end(tmp_path: Path):
    """Audio that outlasts the picture sets the container's duration, not the video's."""
    path = encode(tmp_path / "talk.mkv", 2, audio_seconds=4, acodec="aac")
    assert probe_video(path).duration_s == pytest.approx(4, abs=0.05)
    for decode in (False, True):
        times = stream_times(path, decode=decode)
        assert times.frames == 50 == count_frames(path)
        assert times.video_end_s == pytest.approx(2.0, abs=1e-3)
        assert times.end_s == pytest.approx(4.0, abs=0.05)
    assert check_whole(path).frames == 50 == check_whole(path, decode=False).frames


@pytest.mark.parametrize(("container", "args"), [("mp4", {"movflags": "+faststart"}), ("mkv", {})])
def test_check_whole_refuses_a_file_cut_short_with_its_index_in_front(tmp_path, container, args):
    whole = encode(tmp_path / f"whole.{container}", 4, audio_seconds=4, acodec="aac", **args)
    assert check_whole(whole).end_s == pytest.approx(4, abs=0.05)
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    assert probe_video(cut).duration_s == pytest.approx(4, abs=0.05)  # the header still says 4 s
    with pytest.raises(Affect4kError) as caught:
        check_whole(cut)
    message = str(caught.value)
    assert message.startswith(f"{cut}: does not decode: ")
    reasons = ("partial file", "File ended prematurely", "h264: Invalid NAL unit size")
    assert any(reason in message for reason in reasons)
    assert "frame=" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [("mp4", "libx264", "30000/1001"), ("avi", "mpeg4", "25"), ("mkv", "libx264", "50")],
)
def test_the_container_facts_agree_with_what_the_ffmpeg_binary_decodes(
    tmp_path: Path, container: str, codec: str, rate: str
):
    """PyAV (FFmpeg's libraries in its wheel) reads the header; the pinned ffmpeg binary counts
    the packets. Two FFmpeg builds, one file: size, rate, duration, codec and audio agree."""
    path = tmp_path / f"probe.{container}"
    video = ffmpeg.input(f"testsrc=size=96x64:rate={rate}:duration=2", f="lavfi")
    tone = ffmpeg.input("sine=frequency=440:duration=2", f="lavfi")
    argv = (
        ffmpeg.output(video, tone, str(path), vcodec=codec, acodec="aac", pix_fmt="yuv420p")
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(argv, check=True)
    info = probe_video(path)
    times = stream_times(path)
    assert (info.width, info.height) == (96, 64)
    assert info.codec == {"libx264": "h264", "mpeg4": "mpeg4"}[codec]
    numerator, _, denominator = rate.partition("/")
    assert info.fps == pytest.approx(int(numerator) / int(denominator or 1), rel=1e-6)
    assert times.frames == pytest.approx(2 * info.fps, abs=1)
    assert info.duration_s == pytest.approx(times.end_s, abs=0.1)
    assert info.has_audio


def test_a_file_without_video_or_not_a_file_is_refused_by_name(tmp_path: Path):
    audio = tmp_path / "tone.m4a"
    argv = (
        ffmpeg.input("sine=frequency=440:duration=1", f="lavfi")
        .output(str(audio), acodec="aac")
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(argv, check=True)
    with pytest.raises(Affect4kError, match=r"tone.m4a: not a readable video \(no video stream\)"):
        probe_video(audio)
    with pytest.raises(Affect4kError, match="folder: no such video file"):
        probe_video(tmp_path / "folder")
