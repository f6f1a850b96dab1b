"""Synthetic annotators: each follows the latent valence/arousal with its own lag, gain, bias
and noise, logged at irregular times like a joystick tool.

Lag and noise are known per annotator (:data:`ANNOTATOR_PROFILES`), so the lag estimate and the
EWE weights of the annotation stages have something to find and can be checked against it.
"""

from __future__ import annotations

import numpy as np

from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.demo.affect_faces import (
    latent_va,
    seeded_rng,
)

#: ``(reaction lag in s, noise level)`` of the demo's annotators, by their position in the
#: config's list (cycled past four). The noise level scales how much the latent moves within
#: the clip; its order differs from the lags' so that ranking by agreement before the lags are
#: compensated would get it wrong.
ANNOTATOR_PROFILES = ((0.0, 0.3), (0.4, 0.1), (1.0, 0.6), (2.0, 0.45))


def annotator_profile(position: int) -> tuple[float, float]:
    """``(lag_s, noise)`` of the demo annotator at ``position`` in the config's list."""
    return ANNOTATOR_PROFILES[position % len(ANNOTATOR_PROFILES)]


def annotator_trace(
    seed: int,
    seconds: float,
    annotator: str,
    dimension: str,
    *,
    lag_s: float,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic annotator's joystick log ``(times_s, values)`` for one dimension.

    The annotator follows the latent ``lag_s`` seconds late with a personal gain and bias, plus
    jitter of ``noise`` times how much the latent moves within the clip (so agreement does not
    depend on whether the clip is lively or calm). Samples come every 20-60 ms (whole
    milliseconds, so the CSV's three decimals keep times strictly increasing) from 0 to
    ``seconds``. The jitter is white: a slow tremor at the latent's own pace would move the
    best alignment of a 10 s trace by several frames, and the demo is there to show that the
    lags can be found.
    """
    if dimension not in DIMENSIONS:
        raise Affect4kError(f"annotation dimension must be valence or arousal, got {dimension!r}")
    person = seeded_rng(seed, "annotator", annotator)
    gain = person.uniform(0.8, 1.15)
    rng = seeded_rng(seed, "annotator", annotator, dimension)
    end_ms = round(seconds * 1000)
    steps = rng.integers(20, 61, size=end_ms // 20 + 1)
    times_ms = np.concatenate([[0], np.cumsum(steps)])
    times_ms = times_ms[times_ms < end_ms]
    times = np.append(times_ms, end_ms) / 1000
    pick = 0 if dimension == "valence" else 1
    latent = latent_va(seed, times - lag_s)[pick]
    spread = latent_va(seed, np.linspace(0, seconds, 256))[pick].std()
    jitter = rng.normal(0, 1.0, times.size)
    values = gain * (latent + noise * spread * jitter) + rng.uniform(-0.12, 0.12)
    return times, np.clip(values, -1, 1)


def trace_csv(times: np.ndarray, values: np.ndarray) -> bytes:
    lines = ["time_s,value"] + [f"{t:.3f},{v:.4f}" for t, v in zip(times, values, strict=True)]
    return ("\n".join(lines) + "\n").encode()
