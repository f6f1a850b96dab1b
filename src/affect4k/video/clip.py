"""Cut one source video into the database clip: ``[start, end]`` re-encoded at exactly 25 fps.

Every later stage relies on the frame-index contract (docs/design.md): clip frame ``f`` is source
time ``start + f / 25`` s. So the cut re-encodes rather than copying from keyframes, and which
source frame fills each clip frame is decided here once, explicitly: the one whose timestamp is
nearest to ``start + f / 25`` (source times count from the file's start, as players show them),
by the frames' own timestamps, so variable-frame-rate sources (phones, screen recordings) are
cut as exactly as constant-rate ones. The whole video is the video stream's, not the
container's: audio that outlasts the picture does not make the clip longer than its frames.

Both clip codecs (:class:`ClipEncoding`) store 4:2:0, which needs an even width and height,
so a source with an odd one gets one black column or row added on the right or bottom: pixel
``(x, y)`` of a clip frame is pixel ``(x, y)`` of the source frame, and face coordinates stay in
the source's pixel grid.

The container is AVI, as in the study. AVI stores no timestamps, only frames in order, so the
video stream is made without B-frames (decode order is display order, and a reader's frame ``i``
is chunk ``i``), with a keyframe every second (a reader seeking to a frame decodes at most 24
frames and cannot land on the wrong one), and at constant frame rate, whatever the codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path
from affect4k.core.media import count_frames, probe_video, run_ffmpeg, stream_times

#: Decoding starts this long before ``start`` so the frame nearest to ``start`` is seen even when
#: it lies before it (exact for any source whose frames are less than twice this apart).
SEEK_MARGIN_S = 1.0

#: x264 options every clip is made with (see the module docstring): no B-frames, so decode order
#: is display order, and a keyframe at least every second.
GUARANTEED_X264 = f"bframes=0:keyint={CLIP_FPS}"

#: What the AVI's video stream is tagged as: MPEG-4 Part 2 under the tag players know it by.
MPEG4_TAG = "XVID"

#: MP3 bit rate: transparent for speech and music, and MP3 is what AVI players expect.
AUDIO_BITRATE = "192k"


@dataclass(frozen=True)
class ClipEncoding:
    """How the clip's video is encoded: the config schema's ``clips`` section, which holds each
    field's default, allowed values and why (docs/performance.md measures them).

    ``codec`` ``mpeg4`` is MPEG-4 Part 2 (ffmpeg's own encoder) at the fixed quantiser
    ``qscale``; ``libx264`` is H.264 at ``crf``/``preset``/``tune``, with ``x264_options``
    (x264's own ``key=value:key=value``) before :data:`GUARANTEED_X264`, which they cannot
    override. Each codec's keys are ignored by the other (the workflow refuses a config that
    sets them: :func:`affect4k.config.settings.check_clips`).
    """

    codec: str
    qscale: int
    crf: int
    preset: str
    tune: str | None
    x264_options: str | None

    def video_args(self) -> dict[str, object]:
        """ffmpeg's output options for the video stream: the codec's settings, no B-frames and
        a keyframe at least every second."""
        if self.codec == "mpeg4":
            return {
                "vcodec": "mpeg4",
                "q:v": self.qscale,
                "bf": 0,
                "g": CLIP_FPS,
                "vtag": MPEG4_TAG,
            }
        if self.codec == "libx264":
            return {
                "vcodec": "libx264",
                "crf": self.crf,
                "preset": self.preset,
                **({"tune": self.tune} if self.tune else {}),
                # x264's own options are parsed last and in order, so the guarantees go after
                # any the caller gives: no B-frames, a keyframe at least every second.
                "x264-params": ":".join(filter(None, [self.x264_options, GUARANTEED_X264])),
            }
        raise Affect4kError(f"clips.codec: {self.codec!r} is neither mpeg4 nor libx264")


def make_clip(
    source: Path,
    out_path: Path,
    *,
    video_id: str,
    start: float | None,
    end: float | None,
    encoding: ClipEncoding,
) -> int:
    """Write ``source``'s ``[start, end]`` (seconds; ``None`` = its start/end) as the clip.

    Returns the number of frames written, which is checked against ``(end - start) * 25``.
    The AVI holds the video as ``encoding`` says (yuv420p) and MP3 audio if the source has
    sound. A setting the encoder refuses fails with ffmpeg's message.
    """
    source, out_path = Path(source), Path(out_path)
    try:
        info = probe_video(source)
        video_end = stream_times(source).video_end_s
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    start = start or 0.0
    if end is None:
        end = video_end
    elif end > video_end:
        raise Affect4kError(
            f"video {video_id}: end {end} s is past the end of the video in {source}, "
            f"which lasts {video_end} s"
        )
    if start >= end:
        raise Affect4kError(
            f"video {video_id}: start {start} s is not before the end ({end} s) of {source}"
        )
    expected = round((end - start) * CLIP_FPS)
    if expected < 1:
        raise Affect4kError(
            f"video {video_id}: {start} s to {end} s is shorter than one clip frame"
        )
    seek = max(0.0, start - SEEK_MARGIN_S)
    decoded = ffmpeg.input(str(source), ss=f"{seek:.6f}")
    streams = [_nearest_frames(decoded.video, start - seek, info.width, info.height)]
    audio_args: dict[str, object] = {}
    if info.has_audio:
        audio_start = start - seek
        streams.append(
            # Samples laid out by their timestamps first: where a source's audio overlaps
            # itself (AAC joined by stream copy repeats its priming samples at each join) the
            # overlap is dropped, and a gap is filled with silence, so the MP3 is continuous.
            decoded.audio.filter("aresample", **{"async": 1})
            .filter(
                "atrim", start=f"{audio_start:.6f}", end=f"{audio_start + expected / CLIP_FPS:.6f}"
            )
            .filter("asetpts", "PTS-STARTPTS")
        )
        # MP3 holds at most two channels: surround sound is downmixed, mono duplicated.
        audio_args = {"acodec": "libmp3lame", "audio_bitrate": AUDIO_BITRATE, "ac": 2}

    with atomic_path(out_path) as partial:
        encode = ffmpeg.output(
            *streams,
            str(partial),
            format="avi",
            pix_fmt="yuv420p",
            **encoding.video_args(),
            fps_mode="passthrough",
            # MP3 packets start before 0 (encoder delay). Letting the muxer shift every stream
            # to non-negative times would move video frame 1 to AVI slot 2, inserting a blank
            # frame; instead video stays at n / 25 and the audio lags by that delay (about 25 ms).
            avoid_negative_ts="disabled",
            **{"frames:v": expected},
            **audio_args,
        ).global_args("-xerror")
        run_ffmpeg(encode, f"clip {video_id} ({source})", frames=expected)
        written = count_frames(partial)
        if abs(written - expected) > 1:
            raise Affect4kError(
                f"video {video_id}: clip of {source} from {start} s to {end} s has {written} "
                f"frames, expected {expected}; the source is probably truncated or corrupt"
            )
    return written


def _nearest_frames(
    video: ffmpeg.nodes.FilterableStream, offset_s: float, width: int, height: int
) -> ffmpeg.nodes.FilterableStream:
    """The 25 fps stream whose frame ``f`` is the decoded frame nearest to ``offset_s + f / 25``.

    The decoded frame at timestamp ``p_i`` is the nearest one for every time from the midpoint
    ``(p_{i-1} + p_i) / 2`` with its predecessor up to the next midpoint. So each frame is
    restamped to that midpoint (minus ``offset_s``), and the fps filter then shows at each
    output time the latest frame at or before it (``round=up``). This uses the frames' own
    timestamps, never an average frame rate, so it is exact for variable frame rates too.
    """
    nearest = (
        # Microsecond timestamps first, so neither the midpoints nor the offset are rounded to a
        # coarse source time base (Matroska's is 1 ms).
        video.filter("settb", "AVTB")
        .filter("setpts", f"if(isnan(PREV_INPTS),PTS,(PTS+PREV_INPTS)/2)-{offset_s:.6f}/TB")
        .filter("fps", fps=CLIP_FPS, start_time=0, round="up")
    )
    if width % 2 or height % 2:
        nearest = nearest.filter("pad", width + width % 2, height + height % 2, 0, 0)
    return nearest
