"""The fixture several labels tests start from: one video's faces table and its annotators'
traces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers.traces import ANNOTATORS, joystick_times, write_faces, write_trace

from affect4k import CLIP_FPS


@pytest.fixture
def video(tmp_path):
    """A 4 s clip with three annotators' traces of one signal; ann3's arousal stops at 2.5 s."""
    rng = np.random.default_rng(7)
    n_frames = 4 * CLIP_FPS
    trace_dir = tmp_path / "annotations" / "vid1"
    for name, dim in itertools.product(ANNOTATORS, ("valence", "arousal")):
        end = 2.5 if (name, dim) == ("ann3", "arousal") else 4.0
        times = joystick_times(rng, end)
        values = np.clip(0.5 * np.sin(times) + rng.normal(0, 0.05, times.size), -1, 1)
        write_trace(trace_dir / f"{name}.{dim}.csv", times, values)
    faces = write_faces(tmp_path / "vid1.faces.parquet", n_frames)
    return faces, trace_dir, n_frames
