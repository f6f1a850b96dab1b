"""Bit-exact H.264 MP4 files from RGB frames: the demo's sources and the annotation page's
calibration clip, both generated, byte for byte the same on every machine.

Apart from :mod:`affect4k.core.media` because it needs OpenCV (its I420 conversion), which the
stages that only read video do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import ffmpeg
import numpy as np

from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path
from affect4k.core.media import count_frames, write_frames

#: x264 thread count, fixed because x264's output depends on it: with the pinned ffmpeg build,
#: every machine writes the same bytes.
X264_THREADS = 2


def encode_mp4(
    frames: Iterator[np.ndarray],
    video_path: Path,
    *,
    what: str,
    rate: Fraction,
    width: int,
    height: int,
    tone_seconds: float | None = None,
    expected_frames: int | None = None,
) -> None:
    """Pipe raw RGB ``frames`` through x264 into a bit-exact MP4, atomically (ultrafast: a
    generated video, not a product; the index first, so a browser can play it at once).

    ``tone_seconds`` adds a quiet tone (a source with sound, as YouTube's are);
    ``expected_frames`` refuses a file with another frame count, naming ``what``.
    """
    with atomic_path(video_path) as temp:
        video = ffmpeg.input(
            "pipe:",
            format="rawvideo",
            pix_fmt="yuv420p",
            s=f"{width}x{height}",
            framerate=str(rate),
        )
        streams = [video]
        audio: dict[str, object] = {}
        if tone_seconds is not None:
            tone = f"sine=frequency=440:sample_rate=48000:duration={tone_seconds}"
            streams.append(ffmpeg.input(tone, f="lavfi").filter("volume", 0.05))
            audio = {"acodec": "aac", "audio_bitrate": "64k", "flags:a": "+bitexact"}
        encoder = ffmpeg.output(
            *streams,
            str(temp),
            format="mp4",
            vcodec="libx264",
            preset="ultrafast",
            crf=18,
            pix_fmt="yuv420p",
            threads=X264_THREADS,
            movflags="+faststart",
            fflags="+bitexact",
            map_metadata=-1,
            **{"flags:v": "+bitexact"},
            **audio,
        ).global_args("-hide_banner", "-nostdin")
        # OpenCV's I420 is BT.601 limited range, what decoders assume for untagged H.264;
        # converting here halves the bytes piped and spares ffmpeg's swscale.
        i420 = (cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).data for frame in frames)
        write_frames(encoder, i420, what)
        if expected_frames is not None and (written := count_frames(temp)) != expected_frames:
            raise Affect4kError(f"{what}: {written} frames written, expected {expected_frames}")
