"""ArcFace-style 112x112 face alignment, and every downscale, without aliasing at any factor.

The point of a 4K database is that a face is 500-800 px wide, so its crop is made from all of
those pixels. A plain ``warpAffine`` down to 112 px (insightface's ``norm_crop``) reads only
~1 source pixel in 36 with bilinear weights and aliases hair, skin texture and compression
noise into the crop. A box filter (``INTER_AREA``) is no cure either: it removes a 1-pixel
checkerboard only at even factors; at x1.5 (2160 to 1440 lines) it aliases it into a coarser
pattern and at x3 (2160 to 720) into an output-pixel checkerboard, still there to be learned.

So every shrink here (:func:`downscale` for whole frames, :func:`align_face` for crops) is
low-passed for its own factor: halvings by ``pyrDown`` (a 5-tap binomial, zero response at
Nyquist) while the factor left is 4 or more, then a Gaussian of sigma
:data:`ANTI_ALIAS_SIGMA` x the factor left, then bilinear sampling.
``tests/unit/faces/test_align.py`` checks that a 1-pixel checkerboard comes out flat (< 1 grey)
at x1.5, x2, x3 and x4.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
from insightface.utils.face_align import estimate_norm

# insightface's estimate_norm calls scikit-image's deprecated SimilarityTransform.estimate,
# whose FutureWarning would fill every face log; only that warning, only from there.
warnings.filterwarnings(
    "ignore",
    message="`estimate` is deprecated",
    category=FutureWarning,
    module="insightface.utils.face_align",
)


#: Gaussian sigma per unit of shrink factor (in input pixels). A 1-pixel checkerboard keeps
#: the square of the sampled kernel's response at Nyquist: at x1.5 that is 2 grey of 127.5
#: with 0.5, 0.6 with 0.55 and 0.17 with 0.6 (before rounding to whole grey levels), so 0.6;
#: a sine at half the output's Nyquist frequency keeps 0.64 of its amplitude (0.56 after the
#: bilinear sampling).
ANTI_ALIAS_SIGMA = 0.6


def _gaussian(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian kernel of ``sigma`` pixels (``[1]`` for none), 3 sigma wide."""
    if sigma <= 0:
        return np.ones((1, 1), np.float32)
    return cv2.getGaussianKernel(2 * math.ceil(3 * sigma) + 1, sigma).astype(np.float32)


def low_pass(image: np.ndarray, factor_x: float, factor_y: float) -> np.ndarray:
    """``image`` blurred for a shrink by ``factor_x`` across and ``factor_y`` down (a factor
    at or below 1 is not blurred along that axis): a Gaussian of :data:`ANTI_ALIAS_SIGMA` x
    the factor, the image mirrored at its edges (which continues a checkerboard exactly)."""
    sigmas = [ANTI_ALIAS_SIGMA * f if f > 1 else 0.0 for f in (factor_x, factor_y)]
    if not any(sigmas):
        return image
    kernel_x, kernel_y = (_gaussian(sigma) for sigma in sigmas)
    return cv2.sepFilter2D(image, -1, kernel_x, kernel_y, borderType=cv2.BORDER_REFLECT_101)


def _halvings(image: np.ndarray, factor: float) -> tuple[np.ndarray, int]:
    """``image`` halved by ``pyrDown`` while ``factor`` (its shrink still to come) is 4 or
    more, so the Gaussian that follows stays small; returns it and how many times. A halving
    maps input pixel ``x`` to ``x / 2`` (``pyrDown`` centres its kernel on even pixels)."""
    times = 0
    while factor >= 4 and min(image.shape[:2]) >= 2:
        image, factor, times = cv2.pyrDown(image), factor / 2, times + 1
    return image, times


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` shrunk to ``size`` (width, height), low-passed for its factor, whatever it is
    (integer or not): what a sensor of that many pixels would have recorded, not an aliased
    copy. A size at or above the image's along an axis is plainly resampled there."""
    height, width = image.shape[:2]
    image, times = _halvings(image, min(width / size[0], height / size[1]))
    factor_x, factor_y = image.shape[1] / size[0], image.shape[0] / size[1]
    return cv2.resize(low_pass(image, factor_x, factor_y), size, interpolation=cv2.INTER_LINEAR)


def align_face(
    frame: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    *,
    scale: float | None = None,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Crop the face with 5 ``landmarks`` (see :class:`affect4k.faces.detectors.Detection`) from
    ``frame`` as a ``(size, size, 3)`` image aligned to insightface's ArcFace template.

    The template is scaled by ``scale`` (default ``size / 112``) and moved by ``offset``
    pixels, so other models' alignments (dlib's face chip,
    :mod:`affect4k.faces.identity`) are cut by the same anti-aliased sampling. Parts of the output
    square outside ``frame`` are black, as with ``norm_crop``. A face no larger than the crop
    is plainly warped; a larger one is low-passed for its shrink first (the module's note),
    on the face region alone, never the whole frame.
    """
    # A similarity fit to a scaled, shifted template is the fit to the template, scaled, shifted.
    to_template = estimate_norm(np.asarray(landmarks, np.float64), 112) * (scale or size / 112)
    to_crop = np.vstack([to_template + np.array([[0, 0, offset[0]], [0, 0, offset[1]]]), [0, 0, 1]])
    shrink = 1 / float(np.sqrt(abs(np.linalg.det(to_crop[:2, :2]))))
    if shrink <= 1:
        return cv2.warpAffine(frame, to_crop[:2], (size, size), borderValue=0)

    # Frame region the crop reads, with a margin for the filters (3 sigma of the whole shrink
    # and the bilinear taps), in whole blocks of the halvings' 2^n.
    margin = 3 * ANTI_ALIAS_SIGMA * shrink + 4
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]])
    source = (np.linalg.inv(to_crop) @ corners.T)[:2]
    start = np.maximum(np.floor(source.min(axis=1) - margin).astype(int), 0)
    stop = np.minimum(np.ceil(source.max(axis=1) + margin).astype(int), frame.shape[1::-1])
    if (stop <= start).any():  # the template square lies entirely outside the frame
        return np.zeros((size, size, 3), frame.dtype)
    region, times = _halvings(frame[start[1] : stop[1], start[0] : stop[0]], shrink)
    left = shrink / 2**times
    region = low_pass(region, left, left)
    # Frame pixel -> region pixel: minus the region's start, then halved per pyrDown.
    to_region = np.array([[1, 0, -start[0]], [0, 1, -start[1]], [0, 0, 1]], np.float64)
    to_region[:2] /= 2**times
    from_region = to_crop @ np.linalg.inv(to_region)
    return cv2.warpAffine(region, from_region[:2], (size, size), borderValue=0)
