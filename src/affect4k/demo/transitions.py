"""Clips in which one person hands the screen to another at the same place, on one background.

What the face stage must not mistake for its subject, and what its shot detector and box
tracker cannot see: each clip keeps one background and one face position throughout, so the
thumbnails barely change and the boxes keep overlapping while the person changes. Every face
is a real photo that a package ships (:func:`affect4k.demo.people.portraits`):

=========  ==================================================================================
case       what happens (25 fps, 640x360, faces ~90 px wide at the same place)
=========  ==================================================================================
cut        F (4 s), a hard cut to M (2.4 s), a hard cut back to F (4 s); M is the nearest
           pair of the photos (dlib distance 0.55) and turned 39 degrees
dissolve   A (4 s), a 12-frame dissolve to G (2.4 s), a 12-frame dissolve back to A (4 s)
profile    E (6 s), then a hard cut to C, the cameraman in three-quarter profile (54 degrees),
           for the last 2.1 s, as in a real stage clip where the camera cuts to a bystander
=========  ==================================================================================

:func:`transition_video` returns each visible person's weight per frame (1, or the share of a
dissolve's blend), so a test can count the subject's frames and the other person's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.demo.people import (
    HEIGHT,
    WIDTH,
    background,
    encode_clip,
    paste_portrait,
    portraits,
    with_noise,
)

#: Face width and the face centre's place in every frame.
FACE_WIDTH = 90
CENTRE = (WIDTH // 2, HEIGHT // 2)


@dataclass(frozen=True)
class Transition:
    """One person after another: ``parts`` are (person, frames); ``fade`` frames of each
    boundary are a dissolve (0: a hard cut)."""

    parts: tuple[tuple[str, int], ...]
    fade: int
    seed: int

    @property
    def subject(self) -> str:
        """Whose clip it is: the first person, on screen longest."""
        return self.parts[0][0]


CASES = {
    "cut": Transition((("F", 100), ("M", 60), ("F", 100)), fade=0, seed=7),
    "dissolve": Transition((("A", 100), ("G", 60), ("A", 100)), fade=12, seed=8),
    "profile": Transition((("E", 150), ("C", 53)), fade=0, seed=9),
}


def _person_frame(
    scene: np.ndarray, name: str, shift: float
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """``scene`` with ``name``'s face centred on :data:`CENTRE`, moved ``shift`` px right."""
    image, face = portraits()[name]
    scale = FACE_WIDTH / (face[2] - face[0])
    centre = (face[:2] + face[2:]) / 2 * scale
    left = round(CENTRE[0] + shift - centre[0])
    top = round(CENTRE[1] - centre[1])
    frame = scene.copy()
    return frame, paste_portrait(frame, (image, face), FACE_WIDTH, left, top)


def transition_video(path: Path, case: str) -> pd.DataFrame:
    """Write the clip of ``case`` (one of :data:`CASES`) and return, per frame, each visible
    person's face box and weight (``frame, person, weight, x1, y1, x2, y2``)."""
    transition = CASES[case]
    scene = background(transition.seed)
    owner = [name for name, length in transition.parts for _ in range(length)]
    starts = np.cumsum([0] + [length for _, length in transition.parts])[1:-1]
    grain = np.random.default_rng(transition.seed)
    frames, rows = [], []
    for index, name in enumerate(owner):
        # A slow drift, so that the faces move as people do.
        shift = 6 * np.sin(index / 20)
        weights = {name: 1.0}
        for start in starts:
            into = index - (start - transition.fade // 2)
            if transition.fade and 0 <= into < transition.fade:
                after = (into + 0.5) / transition.fade
                weights = {owner[start - 1]: 1 - after, owner[start]: after}
        blend = np.zeros((HEIGHT, WIDTH, 3), np.float64)
        for person, weight in weights.items():
            frame, box = _person_frame(scene, person, shift)
            blend += weight * frame
            rows.append((index, person, weight, *box))
        frames.append(with_noise(blend, grain))
    encode_clip(frames, path)
    return pd.DataFrame(rows, columns=["frame", "person", "weight", "x1", "y1", "x2", "y2"])
