import re
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np
import pytest
import yaml
from helpers.sources import BITS, STRIPE, index_frame, make_source, read_index

from affect4k import CLIP_FPS
from affect4k.config.schema import SCHEMA_PATH, from_schema
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames, ffmpeg_exe, iter_frames, probe_video
from affect4k.video.clip import ClipEncoding, make_clip

#: The clip settings a config that leaves out `clips` gets: the schema's defaults.
DEFAULTS = from_schema(ClipEncoding, "clips")
#: The same with H.264 (the schema's libx264 settings).
X264 = replace(DEFAULTS, codec="libx264")
#: Every codec a clip can be made with, for the frame-index tests.
ENCODINGS = pytest.mark.parametrize("encoding", [DEFAULTS, X264], ids=lambda e: e.codec)


def x264_clip(source: Path, out: Path, **settings: object) -> int:
    """The whole of ``source`` as video ``v``'s clip, with the schema's libx264 settings but
    for ``settings``."""
    encoding = replace(X264, **settings)
    return make_clip(source, out, video_id="v", start=None, end=None, encoding=encoding)


def nearest_source_frames(time: float, rate: Fraction, frames: int) -> set[int]:
    """Source frames nearest to ``time``; both of a pair tied within 1 ms (timestamp rounding)."""
    times = np.arange(frames) / float(rate)
    distance = np.abs(times - time)
    return set(np.flatnonzero(distance <= distance.min() + 1e-3).tolist())


SOURCES = {  # rate, container: MP4 with B-frames and edit list, MKV with 1 ms timestamps
    "30": (Fraction(30), "mp4"),
    "29.97": (Fraction(30000, 1001), "mkv"),
    "50": (Fraction(50), "mp4"),
    "24": (Fraction(24), "mp4"),
}
SOURCE_SECONDS = 4


@pytest.fixture(scope="module", params=list(SOURCES))
def source(request, tmp_path_factory):
    rate, container = SOURCES[request.param]
    frames = int(SOURCE_SECONDS * rate)
    path = tmp_path_factory.mktemp("src") / f"source.{container}"
    return make_source(path, rate, frames), rate, frames


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, None),  # whole video
        (1.01, 2.5),  # nearest frame to the start lies just before it
        (0.5, 2.77),  # end not on a clip frame boundary
        (1.3, None),  # from a point to the end
        (2.0 / 3.0, 3.9),  # start on a source frame of the 30 and 24 fps sources
    ],
)
@ENCODINGS
def test_clip_frame_f_shows_source_frame_nearest_to_start_plus_f_over_25(
    tmp_path, source, start, end, encoding
):
    path, rate, frames = source
    out = tmp_path / "clips" / "v1.avi"
    written = make_clip(path, out, video_id="v1", start=start, end=end, encoding=encoding)
    duration = (end or probe_video(path).duration_s) - (start or 0.0)
    assert abs(written - round(duration * CLIP_FPS)) <= 1
    assert written == count_frames(out)
    info = probe_video(out)
    assert (info.fps, info.width, info.has_audio) == (CLIP_FPS, BITS * STRIPE, True)
    shown = [read_index(rgb) for rgb in iter_frames(out)]
    assert len(shown) == written
    for f, index in enumerate(shown):
        expected = nearest_source_frames((start or 0.0) + f / CLIP_FPS, rate, frames)
        assert index in expected, f"clip frame {f}: shows source frame {index}, not {expected}"
    assert list(out.parent.iterdir()) == [out]


def picture_types(path: Path) -> list[tuple[str, str]]:
    """(keyframe flag, picture type) of each frame, as ffmpeg's showinfo filter reports them."""
    showinfo = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr
    return re.findall(r" iskey:(\d) type:(\w)", showinfo)


@pytest.mark.parametrize(
    ("encoding", "stream"),
    [(DEFAULTS, "Video: mpeg4 (Simple Profile) (XVID"), (X264, "Video: h264 (")],
    ids=["mpeg4", "libx264"],
)
def test_clip_is_avi_without_b_frames_with_a_keyframe_every_second(
    tmp_path, source, encoding, stream
):
    path, _, _ = source
    out = tmp_path / "v1.avi"
    make_clip(path, out, video_id="v1", start=0.5, end=3.5, encoding=encoding)
    header = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True
    ).stderr
    assert "Input #0, avi" in header
    assert stream in header and "yuv420p" in header  # x264's profile follows the preset
    assert "Audio: mp3" in header
    frames = picture_types(out)
    assert len(frames) == 75
    assert {picture for _, picture in frames} == {"I", "P"}
    keyframes = [f for f, (key, _) in enumerate(frames) if key == "1"]
    assert keyframes[0] == 0 and max(np.diff(keyframes)) <= CLIP_FPS


def test_silent_source_gives_silent_clip(tmp_path):
    path = make_source(tmp_path / "silent.mp4", Fraction(25), 50, audio=False)
    out = tmp_path / "v1.avi"
    assert make_clip(path, out, video_id="v1", start=0.2, end=1.0, encoding=DEFAULTS) == 20
    assert not probe_video(out).has_audio
    assert [read_index(rgb) for rgb in iter_frames(out)] == list(range(5, 25))


def test_end_past_duration_names_video_and_both_durations(tmp_path):
    path = make_source(tmp_path / "short.mp4", Fraction(25), 50)
    with pytest.raises(Affect4kError, match=r"video v7: end 2\.5 s is past the end .* lasts 2\.0"):
        make_clip(path, tmp_path / "v7.avi", video_id="v7", start=1.0, end=2.5, encoding=DEFAULTS)
    with pytest.raises(Affect4kError, match=r"video v7: start 3\.0 s is not before the end"):
        make_clip(path, tmp_path / "v7.avi", video_id="v7", start=3.0, end=None, encoding=DEFAULTS)
    with pytest.raises(Affect4kError, match=r"video v7: 1\.0 s to 1\.01 s is shorter than one"):
        make_clip(path, tmp_path / "v7.avi", video_id="v7", start=1.0, end=1.01, encoding=DEFAULTS)
    assert list(tmp_path.iterdir()) == [path]


def test_garbage_source_is_named(tmp_path):
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(Affect4kError, match=r"video v1: .*garbage\.mkv: not a readable video"):
        make_clip(
            garbage, tmp_path / "v1.avi", video_id="v1", start=None, end=None, encoding=DEFAULTS
        )
    assert list(tmp_path.iterdir()) == [garbage]


def test_truncated_source_is_refused(tmp_path):
    whole = make_source(tmp_path / "whole.mkv", Fraction(25), 100)
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(Affect4kError, match=r"video v1: .*truncated\.mkv"):
        make_clip(
            truncated,
            tmp_path / "out" / "v1.avi",
            video_id="v1",
            start=0.0,
            end=3.5,
            encoding=DEFAULTS,
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_schema_holds_the_encoder_settings_libx264_accepts(tmp_path):
    """Every preset and tune the schema allows encodes; a preset outside them (a library
    caller's) fails naming the video and libx264's complaint, and leaves no clip."""
    clips = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["clips"]["properties"]
    path = make_source(tmp_path / "s.mp4", Fraction(25), 10, audio=False)
    out = tmp_path / "out" / "v.avi"
    for preset in clips["preset"]["enum"]:
        assert x264_clip(path, out, preset=preset) == 10
    for tune in filter(None, clips["tune"]["enum"]):
        assert x264_clip(path, out, tune=tune) == 10
    out.unlink()
    with pytest.raises(Affect4kError, match=r"clip v \(.*s\.mp4\): libx264: .*preset.* quick"):
        x264_clip(path, out, preset="quick")
    assert list(out.parent.iterdir()) == []


def test_x264_options_cannot_undo_the_clip_guarantees(tmp_path):
    """bench/clips.py passes x264 options through; B-frames and long GOPs stay out."""
    path = make_source(tmp_path / "s.mp4", Fraction(25), 100, audio=False)
    out = tmp_path / "v.avi"
    x264_clip(path, out, x264_options="bframes=3:keyint=250")
    assert [picture for _, picture in picture_types(out)].count("B") == 0
    keyframes = [f for f, (key, _) in enumerate(picture_types(out)) if key == "1"]
    assert keyframes[0] == 0 and max(np.diff(keyframes)) <= CLIP_FPS


def test_schema_x264_options_reach_the_encoder(tmp_path):
    """The schema's ``clips.x264_options`` default is what x264 encodes with (x264 writes its
    settings into the stream), and the schema refuses options that are not key=value pairs."""
    import jsonschema

    # tall enough for x264 to slice it (a frame of one macroblock row is never split)
    path = tmp_path / "s.mp4"
    video = ffmpeg.input("testsrc=size=320x240:rate=25", f="lavfi", t=0.4)
    subprocess.run(
        ffmpeg.output(video, str(path), vcodec="libx264", pix_fmt="yuv420p").compile(
            cmd=ffmpeg_exe()
        ),
        check=True,
        capture_output=True,
    )
    settings = {}
    for name, options in (("default", X264.x264_options), ("none", None)):
        out = tmp_path / f"{name}.avi"
        x264_clip(path, out, x264_options=options)
        found = re.search(rb"sliced_threads=(\d)", out.read_bytes())
        assert found, "x264 wrote no settings into the stream"
        settings[name] = found.group(1)
    assert X264.x264_options == "sliced-threads=1"
    assert settings == {"default": b"1", "none": b"0"}
    clips = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["clips"]
    jsonschema.validate({"x264_options": "cabac=1:sliced-threads=1"}, clips)
    jsonschema.validate({"x264_options": None}, clips)
    for bad in ("sliced-threads", "cabac=1:", "crf=18 --preset=slow", ""):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"x264_options": bad}, clips)


def test_audio_is_cut_at_the_same_times_as_video(tmp_path):
    """A tone starting at 2 s of the source starts at 2 - start s of the clip."""
    video = ffmpeg.input("testsrc=size=64x48:rate=25", f="lavfi", t=4)
    tone = ffmpeg.input("aevalsrc=if(gte(t\\,2)\\,sin(2*PI*440*t)\\,0):s=44100", f="lavfi", t=4)
    source = tmp_path / "tone.mkv"
    subprocess.run(
        ffmpeg.output(video, tone, str(source), vcodec="libx264", acodec="flac").compile(
            cmd=ffmpeg_exe(), overwrite_output=True
        ),
        capture_output=True,
        check=True,
    )
    clip = tmp_path / "v1.avi"
    make_clip(source, clip, video_id="v1", start=1.3, end=3.5, encoding=DEFAULTS)
    pcm = subprocess.run(
        ffmpeg.input(str(clip))
        .output("pipe:", format="s16le", ac=1, ar=44100)
        .compile(cmd=ffmpeg_exe()),
        capture_output=True,
        check=True,
    ).stdout
    samples = np.abs(np.frombuffer(pcm, np.int16).astype(float))
    onset_s = np.flatnonzero(samples > 0.2 * samples.max())[0] / 44100
    assert 0.7 <= onset_s < 0.7 + 0.03  # late by at most the MP3 encoder delay
    assert abs(len(samples) / 44100 - 2.2) < 0.06


def packet_times(path: Path) -> np.ndarray:
    """Presentation times (s from the file start) of every video packet, as the file stores them."""
    listing = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy"]
        + ["-f", "framecrc", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (num, den), *_ = re.findall(r"^#tb 0: (\d+)/(\d+)$", listing, re.MULTILINE)
    pts = [int(p) for p in re.findall(r"^0,\s*-?\d+,\s*(-?\d+),", listing, re.MULTILINE)]
    return np.sort(pts) * int(num) / int(den)


#: Gaps between the frames of the variable-frame-rate source, in ms: a phone that keeps
#: changing its rate (about 24 fps on average, but never at 24 fps).
VFR_GAPS_MS = (20, 50, 30, 70, 40)


def test_vfr_source_every_clip_frame_is_the_source_frame_nearest_by_timestamp(tmp_path):
    frames = 100
    period = sum(VFR_GAPS_MS) / 1000
    offsets = np.cumsum((0, *VFR_GAPS_MS[:-1])) / 1000
    offset = "+".join(f"{o}*eq(mod(N,5),{i})" for i, o in enumerate(offsets))
    source = tmp_path / "vfr.mkv"
    argv = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="gray", s=f"{BITS * STRIPE}x16", r=25)
        .filter("settb", "1/1000")
        .filter("setpts", f"(floor(N/5)*{period}+{offset})/TB")
        .output(
            str(source),
            vcodec="libx264",
            crf=8,
            pix_fmt="yuv420p",
            fps_mode="passthrough",
            enc_time_base="1/1000",
        )
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(
        argv, input=b"".join(index_frame(i).tobytes() for i in range(frames)), check=True
    )
    times = packet_times(source)
    assert len(times) == frames
    np.testing.assert_allclose(np.diff(times)[:5], np.array(VFR_GAPS_MS) / 1000, atol=1e-3)
    out = tmp_path / "v1.avi"
    for start, end in ((None, None), (0.61, 1.9)):
        written = make_clip(source, out, video_id="v1", start=start, end=end, encoding=DEFAULTS)
        shown = [read_index(rgb) for rgb in iter_frames(out)]
        assert len(shown) == written == round(((end or times[-1] + 0.04) - (start or 0)) * 25)
        for f, index in enumerate(shown):
            distance = np.abs(times - ((start or 0.0) + f / CLIP_FPS))
            nearest = set(np.flatnonzero(distance <= distance.min() + 1e-3).tolist())
            assert index in nearest, f"clip frame {f} shows source frame {index}, not {nearest}"


def test_video_shorter_than_its_audio_is_clipped_to_its_last_frame(tmp_path):
    """Audio outlasting the picture sets the container's duration; the clip ends with the video."""
    video = ffmpeg.input("testsrc=size=64x48:rate=25:duration=2", f="lavfi")
    audio = ffmpeg.input("sine=duration=3.5", f="lavfi")
    source = tmp_path / "talk.mkv"
    subprocess.run(
        ffmpeg.output(video, audio, str(source), vcodec="libx264", pix_fmt="yuv420p")
        .global_args("-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True),
        check=True,
    )
    assert probe_video(source).duration_s == pytest.approx(3.5, abs=0.05)
    out = tmp_path / "v1.avi"
    assert (
        make_clip(source, out, video_id="v1", start=0.4, end=None, encoding=DEFAULTS)
        == 40
        == count_frames(out)
    )
    with pytest.raises(Affect4kError, match=r"v1: end 3\.0 s is past the end of the video .* 2\.0"):
        make_clip(source, out, video_id="v1", start=0.4, end=3.0, encoding=DEFAULTS)


@pytest.mark.parametrize(("width", "height"), [(641, 361), (640, 361), (95, 64)])
def test_odd_frame_sizes_are_padded_in_the_source_pixel_grid(tmp_path, width, height):
    """One black column/row on the right/bottom: clip pixel (x, y) is source pixel (x, y)."""
    frame = np.full((height, width), 128, np.uint8)
    frame[:8, :8] = 255  # top-left corner
    frame[-8:, -8:] = 255  # bottom-right corner, up to the last (odd) column and row
    source = tmp_path / "odd.mkv"
    argv = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="gray", s=f"{width}x{height}", r=25)
        .output(str(source), vcodec="libx264", crf=0, pix_fmt="yuv444p")
        .global_args("-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    subprocess.run(argv, input=frame.tobytes() * 10, check=True)
    out = tmp_path / "v1.avi"
    assert (
        make_clip(source, out, video_id="v1", start=None, end=None, encoding=replace(X264, crf=0))
        == 10
    )
    info = probe_video(out)
    assert (info.width, info.height) == (width + width % 2, height + height % 2)
    clip = next(iter(iter_frames(out))).mean(axis=2)
    np.testing.assert_allclose(clip[:height, :width], frame, atol=12)
    assert (clip[height:, :] < 20).all() and (clip[:, width:] < 20).all()


def test_encoding_reports_progress_lines(tmp_path, capsys):
    path = make_source(tmp_path / "s.mp4", Fraction(25), 50)
    make_clip(path, tmp_path / "v1.avi", video_id="v1", start=0.2, end=1.8, encoding=DEFAULTS)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith(f"clip v1 ({path}): ") for line in lines)
    assert "40/40" in lines[-1] and "frame" in lines[-1]


def test_a_codec_outside_the_schemas_is_named_and_leaves_no_clip(tmp_path):
    """A library caller's codec the schema would refuse fails before ffmpeg runs."""
    path = make_source(tmp_path / "s.mp4", Fraction(25), 10, audio=False)
    out = tmp_path / "out" / "v.avi"
    with pytest.raises(Affect4kError, match=r"clips\.codec: 'vp9' is neither mpeg4 nor libx264"):
        make_clip(
            path, out, video_id="v", start=None, end=None, encoding=replace(DEFAULTS, codec="vp9")
        )
    assert not out.exists()


def test_audio_that_overlaps_itself_at_a_join_is_cut_continuous(tmp_path):
    """Two parts with AAC joined by stream copy (as editors and downloaders do) overlap at the
    join by the second part's priming samples; the clip keeps its frames and a continuous MP3
    whose tone changes at the join."""
    parts = []
    for index, frequency in enumerate((300, 600)):
        part = tmp_path / f"part{index}.mp4"
        video = ffmpeg.input("testsrc=size=64x48:rate=30", f="lavfi", t=2)
        tone = ffmpeg.input(f"sine=frequency={frequency}:sample_rate=44100", f="lavfi", t=2)
        subprocess.run(
            ffmpeg.output(video, tone, str(part), vcodec="libx264", acodec="aac").compile(
                cmd=ffmpeg_exe()
            ),
            check=True,
            capture_output=True,
        )
        parts.append(part)
    listing = tmp_path / "parts.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for part in parts))
    joined = tmp_path / "joined.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing)]
        + ["-c", "copy", str(joined)],
        check=True,
    )
    out = tmp_path / "v.avi"
    written = make_clip(joined, out, video_id="v", start=1.0, end=3.5, encoding=DEFAULTS)
    assert written == count_frames(out) and abs(written - 62) <= 1
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "s16le", "-ac", "1", "-ar", "44100"]
        + ["-"],
        check=True,
        capture_output=True,
    ).stdout
    samples = np.frombuffer(pcm, np.int16).astype(np.float64)
    assert abs(len(samples) / 44100 - 2.5) < 0.1

    def pitch(at_s: float) -> float:
        window = samples[int(at_s * 44100) : int(at_s * 44100) + 2205] * np.hanning(2205)
        return float(np.fft.rfftfreq(2205, 1 / 44100)[np.argmax(np.abs(np.fft.rfft(window)))])

    # the join at 2 s of the source is 1 s into the clip
    assert [round(pitch(t)) for t in (0.5, 0.9, 1.1, 2.0)] == [300, 300, 600, 600]
