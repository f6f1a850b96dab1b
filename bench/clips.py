"""Choose the clip stage's encoder settings by measurement; prints JSON.

One synthetic grainy 4K source (the demo's face drifting over its textured background, with
film grain added; 25 fps H.264 + AAC in Matroska, as a download lands) is cut by
:func:`affect4k.video.clip.make_clip` (the clip stage's own code) with each candidate encoding, and
decoded plainly by ffmpeg (into a null sink: the floor any stage that reads the source pays).
All in this one process, in pairs: each repetition of each candidate is timed right after a
plain decoding of the source, so machine load hits the two alike, and the pair's ratio is
taken at once. Per candidate:

- ``fps``: clip frames written per second of the whole stage (probe, encode, frame count),
  median over the repetitions;
- ``x_decoding``: the median over the pairs of (plain decoding time / stage time), i.e. the
  stage's speed as a multiple of plain decoding of the same source; ``x_decoding_pairs`` every
  pair's ratio;
- ``x_decoding_cpu``: the same with CPU times (ffmpeg's and this process's) instead of wall
  times: what the ratio would be with both saturating the same cores, and much less shaken by
  other jobs' load than the wall-time ratio;
- ``clip_decoding_x``: how many times faster the clip decodes than the source (the median of
  the same pairs' ratios; every later stage reads the clip);
- ``mb_per_minute``: the clip's size per minute of video;
- ``face_psnr_db``: PSNR of the face region (the face's square, where the demo drew one)
  of every clip frame against the same frame of the decoded source; ``psnr_db`` the whole frame.

A candidate is ``mpeg4[:qscale]`` (MPEG-4 Part 2) or ``preset[,tune[,x264 options]]``
(libx264 at ``--crf``); ``default`` is the schema's ``clips`` defaults, i.e. what a config
that leaves ``clips`` out gets.

    PYTHONPATH=src python bench/clips.py --seconds 8 --repeat 3
    PYTHONPATH=src python bench/clips.py --candidate veryfast,,threads=2 --candidate mpeg4:3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import ffmpeg
import numpy as np

from affect4k import CLIP_FPS
from affect4k.config.schema import from_schema
from affect4k.core.media import iter_frames, run_ffmpeg, write_frames
from affect4k.demo.scenes import demo_frames, face_track, with_grain
from affect4k.video.clip import ClipEncoding, make_clip

#: The grid the docs' table reports: the default, a coarser MPEG-4 quantiser, and x264's
#: fastest settings (the former default first) and the demo's former preset.
CANDIDATES = (
    "default",
    "mpeg4:3",
    "ultrafast,,sliced-threads=1",
    "ultrafast",
    "veryfast",
)


def settings_of(candidate: str, crf: int) -> ClipEncoding:
    """``make_clip``'s encoding for ``candidate`` (``default``: the schema's, x264's at ``crf``)."""
    defaults = from_schema(ClipEncoding, "clips")
    if candidate == "default":
        return defaults
    if candidate.split(":")[0] == "mpeg4":
        qscale = candidate.partition(":")[2]
        return dataclasses.replace(
            defaults, codec="mpeg4", qscale=int(qscale) if qscale else defaults.qscale
        )
    preset, tune, options = (candidate.split(",") + ["", ""])[:3]
    return dataclasses.replace(
        defaults,
        codec="libx264",
        crf=crf,
        preset=preset,
        tune=tune or None,
        x264_options=options or None,
    )


def grainy_source(path: Path, seconds: float, width: int, height: int, grain: float) -> Path:
    """The demo's first face over its background plus Gaussian grain of ``grain`` levels, as
    25 fps H.264 (veryfast, crf 18) with a tone in Matroska."""

    def frames():
        rendered = demo_frames(
            1, "astronaut", fps=Fraction(CLIP_FPS), seconds=seconds, width=width, height=height
        )
        for frame in with_grain(rendered, grain):
            yield cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).data

    video = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="yuv420p", s=f"{width}x{height}", r=CLIP_FPS
    )
    tone = ffmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi")
    encoder = ffmpeg.output(
        video, tone, str(path), vcodec="libx264", preset="veryfast", crf=18, acodec="aac"
    )
    write_frames(encoder, frames(), f"the synthetic source {path}")
    return path


def face_boxes(seconds: float, width: int, height: int) -> list[tuple[int, int, int, int] | None]:
    """Per frame the ``(x0, y0, x1, y1)`` square the demo drew the face in, None where hidden."""
    times = np.arange(round(seconds * CLIP_FPS)) / CLIP_FPS
    track = face_track(1, times, seconds=seconds, width=width, height=height)
    boxes = []
    for x, y, side, visible in zip(
        track.centre_x, track.centre_y, track.face_height, track.visible, strict=True
    ):
        half = side / 2
        box = (max(0, int(x - half)), max(0, int(y - half)))
        boxes.append((*box, min(width, int(x + half)), min(height, int(y + half))))
        if not visible:
            boxes[-1] = None
    return boxes


def psnr(squared_error: float, count: int) -> float:
    return 10 * math.log10(255**2 / (squared_error / count)) if squared_error else math.inf


def quality(clip: Path, source: Path, boxes: list) -> dict:
    """Whole-frame and face-region PSNR of ``clip`` against the decoded ``source``, both decoded
    side by side (a 4K clip's frames never sit in memory together)."""
    face_se = frame_se = 0.0
    face_n = frame_n = 0
    pairs = zip(iter_frames(clip), iter_frames(source), boxes, strict=True)
    for frame, original, box in pairs:
        diff = frame.astype(np.int16) - original
        frame_se += float(np.square(diff).sum())
        frame_n += diff.size
        if box is not None:
            x0, y0, x1, y1 = box
            face_se += float(np.square(diff[y0:y1, x0:x1]).sum())
            face_n += diff[y0:y1, x0:x1].size
    return {
        "face_psnr_db": round(psnr(face_se, face_n), 2),
        "psnr_db": round(psnr(frame_se, frame_n), 2),
    }


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """``work``'s wall time and CPU time (this process's and its finished children's, i.e.
    ffmpeg's), in seconds."""
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    start = time.perf_counter()
    work()
    wall = time.perf_counter() - start
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(
        (a.ru_utime - b.ru_utime) + (a.ru_stime - b.ru_stime)
        for a, b in zip(after, before, strict=True)
    )
    return wall, cpu


def decode_seconds(source: Path) -> tuple[float, float]:
    stream = ffmpeg.input(str(source)).output("-", format="null")
    return timed(lambda: run_ffmpeg(stream, f"decoding {source}"))


def clip_seconds(source: Path, out: Path, candidate: str, crf: int) -> tuple[float, float]:
    encoding = settings_of(candidate, crf)
    return timed(
        lambda: make_clip(source, out, video_id="bench", start=None, end=None, encoding=encoding)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--grain", type=float, default=3.0, help="grain's standard deviation")
    parser.add_argument(
        "--crf", type=int, default=from_schema(ClipEncoding, "clips").crf, help="libx264's CRF"
    )
    parser.add_argument("--repeat", type=int, default=3, help="decode/clip pairs per candidate")
    parser.add_argument(
        "--candidate",
        action="append",
        help="mpeg4[:qscale] or preset[,tune[,x264 options]] (repeatable; default: the docs' grid)",
    )
    args = parser.parse_args()
    candidates = args.candidate or list(CANDIDATES)
    frames = round(args.seconds * CLIP_FPS)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        source = grainy_source(
            Path(scratch, "source.mkv"), args.seconds, args.width, args.height, args.grain
        )
        boxes = face_boxes(args.seconds, args.width, args.height)
        decode_s: list[float] = []
        encode_s: dict[str, list[float]] = {c: [] for c in candidates}
        ratios: dict[str, list[float]] = {c: [] for c in candidates}
        cpu_ratios: dict[str, list[float]] = {c: [] for c in candidates}
        clip_decoding: dict[str, list[float]] = {c: [] for c in candidates}
        sizes: dict[str, int] = {}
        quality_of: dict[str, dict] = {}
        for run in range(args.repeat):
            for candidate in candidates:  # a decode right before each, so both see one load
                decoded, decoded_cpu = decode_seconds(source)
                out = Path(scratch, f"clip_{len(sizes)}.avi")
                clipped, clipped_cpu = clip_seconds(source, out, candidate, args.crf)
                decode_s.append(decoded)
                encode_s[candidate].append(clipped)
                ratios[candidate].append(decoded / clipped)
                cpu_ratios[candidate].append(decoded_cpu / clipped_cpu)
                clip_decoding[candidate].append(decoded / decode_seconds(out)[0])
                if run == 0:
                    sizes[candidate] = out.stat().st_size
                    quality_of[candidate] = quality(out, source, boxes)
                out.unlink()
        decode = statistics.median(decode_s)
        rows = []
        for candidate in candidates:
            seconds = statistics.median(encode_s[candidate])
            rows.append(
                {
                    "candidate": candidate,
                    "settings": dataclasses.asdict(settings_of(candidate, args.crf)),
                    "fps": round(frames / seconds, 2),
                    "x_decoding": round(statistics.median(ratios[candidate]), 3),
                    "x_decoding_pairs": [round(r, 3) for r in ratios[candidate]],
                    "x_decoding_cpu": round(statistics.median(cpu_ratios[candidate]), 3),
                    "clip_decoding_x": round(statistics.median(clip_decoding[candidate]), 2),
                    "mb_per_minute": round(sizes[candidate] / 1e6 * 60 / args.seconds),
                    **quality_of[candidate],
                }
            )
        source_mb_per_minute = round(source.stat().st_size / 1e6 * 60 / args.seconds)
    print(
        json.dumps(
            {
                "source": f"{args.width}x{args.height}, {frames} frames at 25 fps, grain "
                f"{args.grain}, {source_mb_per_minute} MB/min",
                "x264_crf": args.crf,
                "cpus": os.cpu_count(),
                "load_average_start": load_start,
                "load_average_end": os.getloadavg(),
                "decode_fps": round(frames / decode, 1),
                "candidates": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
