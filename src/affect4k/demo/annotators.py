"""Synthetic annotators: each follows the latent valence/arousal with its own lag, gain, bias
and noise, logged at irregular times like a joystick tool."""

from __future__ import annotations

import numpy as np

from affect4k.demo.faces import (
    latent_va,
    seeded_rng,
    slow_wave,
)
from affect4k.errors import Affect4kError
from affect4k.layout import DIMENSIONS


def annotator_trace(
    seed: int, seconds: float, annotator: str, dimension: str
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic annotator's joystick log ``(times_s, values)`` for one dimension.

    The annotator follows the latent with a personal reaction lag (0.2-1.0 s), gain and bias,
    plus slow tremor and jitter. Samples come every 20-60 ms (whole milliseconds, so the CSV's
    three decimals keep times strictly increasing) from 0 to ``seconds``. The noise scales with
    how much the latent moves within the clip, so agreement between annotators lands in the
    0.6-0.9 range real databases report whether the clip is lively or calm.
    """
    if dimension not in DIMENSIONS:
        raise Affect4kError(f"annotation dimension must be valence or arousal, got {dimension!r}")
    person = seeded_rng(seed, "annotator", annotator)
    lag, gain = person.uniform(0.2, 1.0), person.uniform(0.8, 1.15)
    rng = seeded_rng(seed, "annotator", annotator, dimension)
    end_ms = round(seconds * 1000)
    steps = rng.integers(20, 61, size=end_ms // 20 + 1)
    times_ms = np.concatenate([[0], np.cumsum(steps)])
    times_ms = times_ms[times_ms < end_ms]
    times = np.append(times_ms, end_ms) / 1000
    pick = 0 if dimension == "valence" else 1
    latent = latent_va(seed, times - lag)[pick]
    spread = latent_va(seed, np.linspace(0, seconds, 256))[pick].std()
    noise = spread * (1.05 * slow_wave(rng, times, (0.8, 3.0)) + rng.normal(0, 0.15, times.size))
    values = gain * latent + rng.uniform(-0.12, 0.12) + noise
    return times, np.clip(values, -1, 1)


def trace_csv(times: np.ndarray, values: np.ndarray) -> bytes:
    lines = ["time_s,value"] + [f"{t:.3f},{v:.4f}" for t, v in zip(times, values, strict=True)]
    return ("\n".join(lines) + "\n").encode()
