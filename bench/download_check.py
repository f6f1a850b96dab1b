"""What checking a download costs, against plain decoding of the same 4K file; prints JSON.

A download is published only once :func:`affect4k.core.media.check_whole` has decoded every frame
yt-dlp fetched (see docs/design.md, "What each stage refuses"). This measures, on a synthetic
4K Matroska file like a remuxed YouTube download (H.264 + AAC):

- ``count_s``: :func:`affect4k.core.media.count_frames` (packets only, no decoding; what the clip
  stage spends to find the video stream's own end);
- ``check_s``: :func:`affect4k.core.media.check_whole` (header, then every frame decoded);
- ``ffmpeg_decode_s``: ffmpeg alone decoding the video into a null sink, the floor.

    PYTHONPATH=src python bench/download_check.py --seconds 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ffmpeg

from affect4k.core.media import check_whole, count_frames, ffmpeg_exe, run_ffmpeg


def synthetic_download(path: Path, seconds: float) -> Path:
    """``seconds`` of 25 fps 3840x2160 H.264 with an AAC tone, in Matroska."""
    video = ffmpeg.input(f"testsrc2=size=3840x2160:rate=25:duration={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=duration={seconds}", f="lavfi")
    encode = ffmpeg.output(
        video, audio, str(path), vcodec="libx264", preset="ultrafast", crf=23, acodec="aac"
    )
    run_ffmpeg(encode, "synthetic download")
    return path


def best_of(runs: int, measure: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        measure()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = synthetic_download(Path(scratch) / "download.mkv", args.seconds)
        decode = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
        result = {
            "seconds": args.seconds,
            "frames": count_frames(path),
            "size_mb": round(path.stat().st_size / 1e6, 1),
            "count_s": best_of(args.runs, lambda: count_frames(path)),
            "check_s": best_of(args.runs, lambda: check_whole(path)),
            "ffmpeg_decode_s": best_of(
                args.runs, lambda: subprocess.run(decode, check=True, capture_output=True)
            ),
        }
    result["check_over_decode"] = round(result["check_s"] / result["ffmpeg_decode_s"], 2)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
