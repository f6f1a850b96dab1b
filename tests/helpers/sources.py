"""Sources whose every frame shows its own index in binary stripes, so a test can tell which
source frame a clip, a web copy or a crop shows."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from affect4k.core.media import ffmpeg_exe

BITS = 10
STRIPE = 16  # pixels per bit: wide enough to survive lossy coding untouched


def index_frame(index: int) -> np.ndarray:
    """A gray frame whose stripes spell ``index`` in binary (white = 1), most significant first."""
    bits = [(index >> (BITS - 1 - b)) & 1 for b in range(BITS)]
    row = np.repeat(np.array(bits, np.uint8) * 255, STRIPE)
    return np.tile(row, (16, 1))


def read_index(rgb: np.ndarray) -> int:
    middle = rgb[rgb.shape[0] // 2, STRIPE // 2 :: STRIPE, 1]
    assert np.all((middle < 40) | (middle > 215)), "stripes are not clean black/white"
    return int("".join("1" if value > 128 else "0" for value in middle), 2)


def make_source(path: Path, rate: Fraction, frames: int, *, audio: bool = True) -> Path:
    """Encode frames 0..frames-1 (each showing its own index) at ``rate`` fps into ``path``."""
    video = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="gray", s=f"{BITS * STRIPE}x16", framerate=str(rate)
    )
    streams = [video]
    if audio:
        streams.append(ffmpeg.input("sine", f="lavfi", t=float(frames / rate)))
    argv = (
        ffmpeg.output(*streams, str(path), vcodec="libx264", crf=8, pix_fmt="yuv420p")
        .global_args("-hide_banner", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe(), overwrite_output=True)
    )
    pixels = b"".join(index_frame(i).tobytes() for i in range(frames))
    subprocess.run(argv, input=pixels, check=True)
    return path


def framemd5(path: Path) -> list[list[str]]:
    """Per video frame: stream, dts, pts, duration (in the stream's time base), size, md5."""
    argv = [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-map", "0:v"]
    lines = subprocess.run(
        [*argv, "-f", "framemd5", "-"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(",") for line in lines.splitlines() if line and not line.startswith("#")]
