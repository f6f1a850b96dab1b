"""The browser-playable copy of a clip: ``results/web/{video}.mp4``.

Browsers do not play AVI, nor MPEG-4 Part 2 (the clips' default codec), but they do play
H.264 (yuv420p, no B-frames). Either way frame ``f`` of the copy is clip frame ``f``, stamped
``f / 25`` s: the frame an annotator sees at video time ``t`` is clip frame ``floor(t * 25)``,
the one whose crop gets the label (docs/design.md's frame-index contract). An H.264 clip
(``clips.codec: libx264``) is stream-copied, bit for bit, so even a 4K clip is copied in
seconds; any other is re-encoded frame for frame with the config's libx264 settings
(``clips.crf``, ``preset``, ``tune``, ``x264_options``: defaults when the clips are mpeg4), at the
clip's size (a face's box drawn from the face table lands on the same pixels). The sound is
re-encoded from the AVI's MP3 to AAC.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ffmpeg

from affect4k import CLIP_FPS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path
from affect4k.core.media import count_frames, probe_video, run_ffmpeg
from affect4k.video.clip import ClipEncoding

AUDIO_BITRATE = "128k"


def make_web_copy(clip: Path, out_path: Path, *, video_id: str, encoding: ClipEncoding) -> int:
    """Write ``clip`` as an H.264/AAC MP4 on the same 25 fps frame grid; return its frame count.

    The video is copied if ``clip``'s is H.264, else encoded with ``encoding``'s libx264
    settings. The copy is refused (and nothing written) unless it has as many frames as the clip.
    """
    clip, out_path = Path(clip), Path(out_path)
    try:
        info = probe_video(clip)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error
    if info.fps != CLIP_FPS:
        raise Affect4kError(
            f"video {video_id}: {clip} runs at {info.fps} fps, expected a {CLIP_FPS} fps clip"
        )
    expected = count_frames(clip)
    source = ffmpeg.input(str(clip))
    streams = [source.video]
    if info.codec == "h264":
        # AVI stores no presentation times: take them from the decode order (no B-frames), so
        # frame f is stamped f / 25 (genpts would start at one frame and shift every label).
        video_args: dict[str, object] = {"vcodec": "copy", "bsf:v": "setts=pts=DTS"}
    else:
        # Decoded frame f has time f / 25; passed through as it is, on a 1/25 s time base.
        video_args = {
            **dataclasses.replace(encoding, codec="libx264").video_args(),
            "pix_fmt": "yuv420p",
            "fps_mode": "passthrough",
            "video_track_timescale": CLIP_FPS,
        }
    # The index first, so the browser can start playing and seek before the whole download.
    args: dict[str, object] = {**video_args, "movflags": "+faststart"}
    if info.has_audio:
        streams.append(source.audio)
        args |= {"acodec": "aac", "audio_bitrate": AUDIO_BITRATE}
    with atomic_path(out_path) as tmp:
        encode = ffmpeg.output(*streams, str(tmp), format="mp4", **args)
        run_ffmpeg(
            encode.global_args("-hide_banner", "-nostdin", "-xerror"), f"video {video_id} ({clip})"
        )
        written = count_frames(tmp)
        if written != expected:
            raise Affect4kError(
                f"video {video_id}: web copy of {clip} has {written} frames, expected {expected}"
            )
    return written
