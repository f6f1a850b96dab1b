"""A clip with several real people and cuts, for checking that the face stage keeps its subject.

The demo's clips show one face each, so they never test who the subject is. This clip is made
of real face photos that ship in installed packages: the astronaut of scikit-image (A, the
subject: on screen most of the time), two people of insightface's group photo (B, shown once
in close-up larger than A; D, a bystander), the cameraman of scikit-image (C, turned away in
three-quarter profile, greyscale) and a third person of the group photo (E); F, a fourth, is
never in the clip (:func:`person_photo` of F matches nobody). Five shots, each
on its own background, cut hard from one to the next:

====  ==========  =============================================================
shot  frames      who (face width in pixels of the 640x360 clip)
====  ==========  =============================================================
1     0-59        A (~80 px) on the left, D (~50 px) on the right
2     60-89       B in close-up (~170 px), alone: A is absent
3     90-149      B (~110 px) on the left, A smaller (~58 px) on the right
4     150-224     C (~75 px) and E (~60 px): 3 s without A
5     225-299     A again, larger (~120 px) and elsewhere, with C (~55 px)
====  ==========  =============================================================

A is on screen in 195 of 300 frames (65 %). :func:`people_video` returns each person's face
box per frame, so a test can check every kept crop against where A really was.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import ffmpeg
import matplotlib.cbook
import numpy as np
import pandas as pd
import skimage.data

from affect4k.core.images import read_image
from affect4k.core.media import write_frames
from affect4k.demo.affect_faces import _read_shipped

#: Clip size and rate of :func:`people_video`.
WIDTH, HEIGHT, FPS = 640, 360, 25


def portraits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each person's head-and-shoulders crop and face box (x1, y1, x2, y2) in that crop."""
    group = _read_shipped("t1.jpg")
    camera = np.repeat(skimage.data.camera()[..., None], 3, axis=2)
    hopper = read_image(
        Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
        what="matplotlib's sample photo",
    )
    # (image, crop rows, crop columns, face box in image pixels, found with SCRFD)
    sources = {
        "A": (skimage.data.astronaut(), (10, 270), (120, 340), (180, 60, 272, 180)),
        "B": (group, (200, 470), (0, 230), (56, 261, 169, 398)),
        "C": (camera, (60, 260), (140, 320), (199, 116, 258, 200)),
        "D": (group, (210, 480), (410, 630), (464, 266, 573, 415)),
        "E": (group, (80, 330), (220, 420), (270, 145, 372, 270)),
        # Not in the clip: a reference photo that must match nobody.
        "F": (group, (280, 560), (690, 900), (745, 342, 847, 480)),
        # Not in the clip either; for affect4k.demo.transitions: matplotlib's Grace Hopper and
        # the group photo's man turned 39 degrees, 0.55 from F (the nearest pair of the lot).
        "G": (hopper, (40, 520), (80, 450), (179, 110, 350, 330)),
        "M": (group, (0, 330), (850, 1090), (907, 63, 1010, 197)),
    }
    portraits = {}
    for name, (image, (top, bottom), (left, right), box) in sources.items():
        face = np.array(box, float) - [left, top, left, top]
        portraits[name] = (np.ascontiguousarray(image[top:bottom, left:right]), face)
    return portraits


#: Shots: (first frame, frames, background seed, [(person, face width, x, y, drift px/frame)]).
#: ``x, y`` place the portrait's top-left corner at the shot's first frame.
SHOTS = [
    (0, 60, 1, [("A", 80, 40, 60, 0.5), ("D", 50, 470, 150, -0.3)]),
    (60, 30, 2, [("B", 170, 200, 0, 0.3)]),
    (90, 60, 3, [("B", 110, 20, 60, 0.4), ("A", 58, 430, 120, -0.4)]),
    (150, 75, 4, [("C", 75, 60, 60, 0.4), ("E", 60, 400, 90, -0.3)]),
    (225, 75, 5, [("A", 120, 260, 10, -0.5), ("C", 55, 30, 150, 0.3)]),
]
#: Frames of the clip.
FRAMES = sum(length for _, length, _, _ in SHOTS)


def background(seed: int) -> np.ndarray:
    """A smooth random colour field with fine grain: each shot looks like another place."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 220, (4, 6, 3)).astype(np.uint8)
    field = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(field + rng.normal(0, 6, field.shape), 0, 255).astype(np.uint8)


def paste_portrait(
    frame: np.ndarray,
    portrait: tuple[np.ndarray, np.ndarray],
    face_width: float,
    left: int,
    top: int,
) -> tuple[float, float, float, float]:
    """Paste a person's ``portrait`` (from :func:`portraits`) into ``frame``, scaled so the
    face is ``face_width`` pixels wide, its top-left corner at (``left``, ``top``); returns the
    face's box in the frame."""
    image, face = portrait
    scale = face_width / (face[2] - face[0])
    head = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = frame.shape[:2]
    h, w = head.shape[:2]
    h, w = min(h, height - top), min(w, width - left)
    frame[top : top + h, left : left + w] = head[:h, :w]
    x1, y1, x2, y2 = face * scale + [left, top, left, top]
    return x1, y1, x2, y2


def with_noise(frame: np.ndarray, grain: np.random.Generator) -> np.ndarray:
    """``frame`` with a camera's fine noise (2 grey levels), as uint8."""
    return np.clip(frame + grain.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)


#: A shot as :data:`SHOTS` lists it.
Shot = tuple[int, int, int, list[tuple[str, int, int, int, float]]]


def _render(shots: list[Shot]) -> tuple[list[np.ndarray], pd.DataFrame]:
    people = portraits()
    frames, boxes = [], []
    grain = np.random.default_rng(0)
    for first, length, seed, shot in shots:
        scene = background(seed)
        for i in range(length):
            frame = scene.copy()
            for name, face_width, x, y, drift in shot:
                box = paste_portrait(frame, people[name], face_width, round(x + drift * i), y)
                boxes.append((first + i, name, *box))
            frames.append(with_noise(frame, grain))
    table = pd.DataFrame(boxes, columns=["frame", "person", "x1", "y1", "x2", "y2"])
    return frames, table


def encode_clip(frames: list[np.ndarray], path: Path) -> None:
    """Write ``frames`` (RGB, :data:`WIDTH` x :data:`HEIGHT`) as H.264 at 25 fps (in AVI, like
    the pipeline's clips, or the container ``path``'s suffix names)."""
    encoder = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{WIDTH}x{HEIGHT}", r=FPS
    ).output(str(path), vcodec="libx264", preset="veryfast", crf=18, pix_fmt="yuv420p")
    write_frames(encoder, (frame.data for frame in frames), f"the test clip {path}")


def people_video(path: Path, shots: list[Shot] = SHOTS) -> pd.DataFrame:
    """Write the clip (H.264 in AVI, 25 fps, like the pipeline's clips) and return every
    person's face box per frame (``frame, person, x1, y1, x2, y2``, clip pixels).

    ``shots`` (:data:`SHOTS` by default) may describe another clip of the same people: one
    shot of one person on a background of its own stands for a video from another source
    (the split tests put two such clips of A, at other sizes and places, beside clips of
    others)."""
    frames, table = _render(shots)
    encode_clip(frames, path)
    return table


def person_photo(name: str, path: Path) -> Path:
    """Write ``name``'s portrait as a PNG photo (a reference photo of that person)."""
    image, _ = portraits()[name]
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path
