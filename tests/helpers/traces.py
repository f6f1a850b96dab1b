"""Annotation traces and face tables written for the labels tests: a joystick's irregular
sample times, trace files, the settings the workflow passes unless a config sets them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.config.schema import schema_default

ANNOTATORS = ("ann1", "ann2", "ann3")
#: What the workflow passes for ``annotation.max_gap_s`` unless a config sets it.
MAX_GAP_S = schema_default("annotation.max_gap_s")
#: ... and for how the annotators' traces are fused.
FUSION = {key: schema_default(f"annotation.{key}") for key in ("fusion", "per_video")}


def joystick_times(rng: np.random.Generator, duration_s: float, start_s: float = 0.01):
    """Irregular sample times like a joystick logger: every 20-60 ms from ``start_s``."""
    steps = rng.uniform(0.02, 0.06, size=int(duration_s / 0.02) + 2)
    times = start_s + np.concatenate([[0.0], np.cumsum(steps)])
    return times[times <= duration_s]


def write_trace(path: Path, times, values) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{t:.6f},{v:.6f}\n" for t, v in zip(times, values, strict=True))
    path.write_text("time_s,value\n" + rows)
    return path


def write_faces(path: Path, n_frames: int) -> Path:
    frames = np.arange(n_frames)
    faces = pd.DataFrame({"frame": frames, "time_s": frames / CLIP_FPS, "face": True})
    faces.to_parquet(path, index=False)
    return path


#: A well-formed trace file's first lines, for tests that append a bad one.
GOOD = "time_s,value\n0.00,0.1\n0.04,0.2\n"
