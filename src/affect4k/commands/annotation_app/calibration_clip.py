"""The calibration clip the annotation page plays: an abstract gauge showing the known valence
and arousal of :mod:`affect4k.labels.calibration`, generated on demand (offline, deterministic) and
cached beside the web copies, never committed.

Two vertical gauges, valence on the left and arousal on the right, each a needle on a -1..+1
scale like the page's own value bar, so an annotator tracing one dimension moves their bar to
follow that gauge. Frame ``f`` shows the truth at ``f / 25`` s and is stamped ``f / 25`` s (the
web copies' frame grid), so a trace of it is on the clock the truth is defined on.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from affect4k import CLIP_FPS
from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames
from affect4k.core.mp4 import encode_mp4
from affect4k.labels.calibration import FRAMES, truth_frames

WIDTH, HEIGHT = 320, 240
#: The gauges' scale: +1 at TOP, -1 at BOTTOM (pixel rows); each gauge's column span.
TOP, BOTTOM = 30, 210
GAUGES = {"valence": (70, 110), "arousal": (210, 250)}


def _row(value: float) -> int:
    return int(round(TOP + (1 - value) / 2 * (BOTTOM - TOP)))


def _background() -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 24, np.uint8)
    for dim, (left, right) in GAUGES.items():
        frame[TOP : BOTTOM + 1, left:right] = 60
        for value, shade in ((1.0, 140), (0.0, 200), (-1.0, 140)):
            frame[_row(value), left - 6 : right + 6] = shade
        cv2.putText(
            frame, dim, (left - 22, BOTTOM + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230,) * 3, 1
        )
    return frame


def calibration_frames() -> Iterator[np.ndarray]:
    """The clip's RGB frames: each gauge's needle at its dimension's truth."""
    background = _background()
    values = {dim: truth_frames(dim) for dim in DIMENSIONS}
    for frame_index in range(FRAMES):
        frame = background.copy()
        for dim, (left, right) in GAUGES.items():
            row = _row(float(values[dim][frame_index]))
            frame[row - 3 : row + 4, left - 10 : right + 10] = (250, 200, 40)
        yield frame


def make_calibration_clip(out_path: Path) -> int:
    """Write the calibration clip as an H.264 MP4 (no B-frames, frame ``f`` at ``f / 25`` s)
    unless a whole one is already there (anything else at ``out_path`` is replaced); return
    its frame count."""
    out_path = Path(out_path)
    if out_path.exists():
        try:
            if count_frames(out_path) == FRAMES:
                return FRAMES
        except Affect4kError:
            pass  # not a whole clip: written again
    encode_mp4(
        calibration_frames(),
        out_path,
        what=f"the calibration clip ({out_path})",
        rate=Fraction(CLIP_FPS),
        width=WIDTH,
        height=HEIGHT,
        expected_frames=FRAMES,
    )
    return FRAMES
