"""Synthetic affect: real face photos whose appearance is driven by a latent valence/arousal.

The demo corpus must be learnable without any real annotated data, so the latent emotion is
painted onto the face itself with strong, face-local cues that survive H.264, face alignment
and a 96x96 crop: valence warms or cools the skin tone and bends the mouth corners up (smile)
or down (frown); arousal raises contrast, saturation and brightness and opens the eyes. Every
generator (demo videos, Aff-Wild2- and AffectNet-style sets) calls :func:`render_face`, so a
model trained on one transfers to the others.

Faces come only from files shipped inside installed packages (scikit-image's astronaut and
insightface's sample images), with their five landmarks hard-coded here (found once with the
MTCNN detector), so generation needs neither the network nor a detector.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Callable
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import skimage.data
import skimage.transform

from affect4k.core.errors import Affect4kError
from affect4k.core.images import read_image

#: Side of the upright portrait that :func:`face_portrait` returns and the demo pastes.
PORTRAIT_SIZE = 256

#: ArcFace's 112x112 five-point template (eyes, nose, mouth corners), the layout every aligned
#: crop in the pipeline shares.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

#: Fraction of the portrait's side that the face (the ArcFace 112 square) spans; the rest is
#: head, hair and shoulders around it.
FACE_FRACTION = 0.5

#: The five landmarks in portrait units ([0, 1] of the side): the ArcFace square, centred.
PORTRAIT_LANDMARKS = ARCFACE_112 / 112 * FACE_FRACTION + (1 - FACE_FRACTION) / 2

# Located without importing insightface, which would cost a second per process.
_INSIGHTFACE_IMAGES = (
    Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images"
)

# Five landmarks (left eye, right eye, nose, left and right mouth corner, image pixels) found
# with mtcnn 1.0's MTCNN().detect_faces on the shipped images.
_T1_LANDMARKS = (
    ((85, 330), (128, 309), (120, 338), (113, 371), (145, 353)),
    ((289, 211), (320, 192), (307, 224), (310, 248), (337, 232)),
    ((493, 319), (540, 332), (508, 364), (483, 366), (530, 378)),
    ((761, 397), (802, 401), (773, 432), (761, 438), (807, 441)),
    ((917, 120), (951, 112), (924, 151), (932, 175), (961, 168)),
    ((1150, 324), (1193, 322), (1165, 348), (1154, 366), (1196, 365)),
)
_ASTRONAUT_LANDMARKS = ((204, 100), (245, 102), (224, 126), (202, 139), (244, 140))
_TOM_HANKS_LANDMARKS = ((35, 50), (72, 49), (61, 76), (35, 91), (66, 90))


def _read_shipped(name: str) -> np.ndarray:
    return read_image(_INSIGHTFACE_IMAGES / name, what="shipped face image")


class _FaceSource(NamedTuple):
    load: Callable[[], np.ndarray]
    landmarks: tuple[tuple[int, int], ...]
    #: Semi-axes (portrait units) of the head-and-shoulders ellipse the photo can fill.
    head: tuple[float, float] = (0.34, 0.44)


_FACE_SOURCES: dict[str, _FaceSource] = {
    "astronaut": _FaceSource(skimage.data.astronaut, _ASTRONAUT_LANDMARKS),
    # This photo is already a tight 112x112 crop: nothing around the face to show.
    "tom_hanks": _FaceSource(
        partial(_read_shipped, "Tom_Hanks_54745.png"), _TOM_HANKS_LANDMARKS, (0.23, 0.27)
    ),
    **{
        f"t1:{k}": _FaceSource(partial(_read_shipped, "t1.jpg"), points)
        for k, points in enumerate(_T1_LANDMARKS)
    },
}

#: Valid ``face`` names: eight distinct identities.
DEMO_FACES: tuple[str, ...] = tuple(_FACE_SOURCES)

# Skin statistics every identity is normalised to, so the colour cue of valence means the same
# thing on every face instead of competing with each photo's lighting.
_SKIN_MEAN = np.array([180.0, 132.0, 112.0], dtype=np.float32)
_SKIN_STD = 38.0


def _ellipse_mask(size: int, centre: tuple[float, float], axes: tuple[float, float]) -> np.ndarray:
    """Float32 mask in [0, 1]: an ellipse given in portrait units."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    inside = ((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2
    return (inside <= 1).astype(np.float32)


@cache
def face_portrait(face: str, size: int = PORTRAIT_SIZE) -> np.ndarray:
    """Upright ``(size, size, 3)`` RGB portrait of ``face`` laid out on :data:`PORTRAIT_LANDMARKS`.

    The photo is rotated and scaled so the eyes are level at a fixed place (so the only head
    rotation in a demo clip is the one the generator applies) and its skin colour is normalised
    to a common tone. The array is read-only because it is cached.
    """
    if face not in _FACE_SOURCES:
        raise Affect4kError(f"unknown demo face {face!r}; choose one of {', '.join(DEMO_FACES)}")
    load, landmarks, _ = _FACE_SOURCES[face]
    transform = skimage.transform.SimilarityTransform.from_estimate(
        np.asarray(landmarks, dtype=np.float64), PORTRAIT_LANDMARKS * size
    )
    portrait = cv2.warpAffine(
        load(),
        transform.params[:2],
        (size, size),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,  # mirroring would add extra faces around small photos
    ).astype(np.float32)
    skin = _ellipse_mask(size, (0.5, 0.56), (0.15, 0.2)) > 0
    mean = portrait[skin].mean(axis=0)
    std = portrait[skin].std(axis=0) + 1e-3
    portrait = (portrait - mean) / std * _SKIN_STD + _SKIN_MEAN
    result = np.clip(portrait, 0, 255).astype(np.uint8)
    result.flags.writeable = False
    return result


@cache
def portrait_alpha(face: str, size: int = PORTRAIT_SIZE) -> np.ndarray:
    """Soft-edged head-and-shoulders mask (float32 in [0, 1]) for pasting ``face``'s portrait."""
    if face not in _FACE_SOURCES:
        raise Affect4kError(f"unknown demo face {face!r}; choose one of {', '.join(DEMO_FACES)}")
    hard = _ellipse_mask(size, (0.5, 0.53), _FACE_SOURCES[face].head)
    alpha = cv2.GaussianBlur(hard, (0, 0), sigmaX=0.035 * size)
    alpha.flags.writeable = False
    return alpha


@lru_cache(maxsize=8)
def _expression_fields(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel grid plus the per-unit valence (mouth) and arousal (eye) vertical displacements."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    (lx, ly), (rx, ry), _, (mlx, mly), (mrx, mry) = PORTRAIT_LANDMARKS * size
    mouth_x, mouth_y, half_width = (mlx + mrx) / 2, (mly + mry) / 2, (mrx - mlx) / 2
    across = (x - mouth_x) / half_width
    envelope = np.exp(-((across / 1.6) ** 2) - ((y - mouth_y) / (0.9 * half_width)) ** 2)
    # Positive valence samples from below at the corners (they rise) and from above at the
    # centre (the lower lip drops): a smile; negative valence mirrors it into a frown.
    mouth_shift = 0.06 * size * envelope * (np.minimum(across**2, 2.5) - 0.35)
    eye_shift = np.zeros_like(x)
    for eye_x, eye_y in ((lx, ly), (rx, ry)):
        near = np.exp(-(((x - eye_x) / (0.06 * size)) ** 2) - ((y - eye_y) / (0.05 * size)) ** 2)
        # Positive arousal samples closer to the eye line: the eye region stretches open.
        eye_shift -= 0.35 * (y - eye_y) * near
    return x, y, mouth_shift.astype(np.float32), eye_shift.astype(np.float32)


def render_face(face_rgb: np.ndarray, valence: float, arousal: float) -> np.ndarray:
    """Paint ``valence`` and ``arousal`` (each in [-1, 1]) onto an upright square portrait.

    ``face_rgb`` is a uint8 ``(S, S, 3)`` image laid out on :data:`PORTRAIT_LANDMARKS` (e.g.
    :func:`face_portrait`). Returns a new uint8 image of the same shape: valence shifts the
    tone from cool to warm and turns the mouth from a frown into a smile; arousal raises
    contrast, saturation and brightness and widens the eyes.
    """
    if face_rgb.ndim != 3 or face_rgb.shape[0] != face_rgb.shape[1] or face_rgb.shape[2] != 3:
        raise Affect4kError(f"render_face needs a square RGB portrait, got shape {face_rgb.shape}")
    if not (-1 <= valence <= 1 and -1 <= arousal <= 1):
        raise Affect4kError(f"valence/arousal must lie in [-1, 1], got {valence}, {arousal}")
    # Python floats keep the maps float32: OpenCV 5.0 hangs in remap given a float64 map
    # next to a float32 one (with BORDER_REFLECT_101), which a numpy float64 would produce.
    valence, arousal = float(valence), float(arousal)
    x, y, mouth_shift, eye_shift = _expression_fields(face_rgb.shape[0])
    map_y = y + valence * mouth_shift + arousal * eye_shift
    warped = cv2.remap(face_rgb, x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image = warped.astype(np.float32)
    grey = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    image = grey[..., None] + (image - grey[..., None]) * (1 + 0.7 * arousal)
    image = (image - 128) * (1 + 0.45 * arousal) + 128 + 22 * arousal
    image += np.array([48.0, 6.0, -48.0], dtype=np.float32) * valence
    return np.clip(image, 0, 255).astype(np.uint8)


def slow_wave(
    rng: np.random.Generator, times: np.ndarray, periods: tuple[float, float]
) -> np.ndarray:
    """Sum of three sinusoids with random periods, phases and weights, bounded by 1 in size."""
    count = 3
    period = rng.uniform(*periods, size=count)
    phase = rng.uniform(0, 2 * np.pi, size=count)
    weight = rng.dirichlet(np.full(count, 2.0))
    angles = 2 * np.pi * np.asarray(times, dtype=np.float64)[..., None] / period + phase
    return (weight * np.sin(angles)).sum(axis=-1)


def seeded_rng(seed: int, *labels: str) -> np.random.Generator:
    """Independent generator per ``(seed, labels)``; labels hash with crc32, stable across runs."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


#: Bound of the latent trajectory; annotations add bias and noise on top and clip to [-1, 1].
LATENT_LIMIT = 0.9


def latent_va(seed: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smooth latent (valence, arousal) at ``times`` seconds for ``seed``, in [-0.9, 0.9].

    Periods of 4-12 s make each 10 s demo clip sweep a good part of the range, which is what a
    sequence model needs to learn from, while staying slow next to the annotators' reaction
    lags. It is defined for any real time (lagged reactions look before the clip start).
    """
    valence = slow_wave(seeded_rng(seed, "valence"), times, (4.0, 12.0))
    arousal = slow_wave(seeded_rng(seed, "arousal"), times, (4.0, 12.0))
    return LATENT_LIMIT * valence, LATENT_LIMIT * arousal
