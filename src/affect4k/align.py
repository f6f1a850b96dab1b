"""ArcFace-style 112x112 face alignment, sampled from the full-resolution frame without aliasing.

The point of a 4K database is that a face is 500-800 px wide, so its crop is made from all of
those pixels. A plain ``warpAffine`` down to 112 px (insightface's ``norm_crop``) reads only
~1 source pixel in 36 with bilinear weights and aliases hair, skin texture and compression
noise into the crop. Here the face region alone (never the whole frame) is first box-filtered
(``INTER_AREA``) down to about the crop's scale, then warped by the equivalent similarity
transform, so the result has ``norm_crop``'s geometry and a properly low-passed image.
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


def align_face(
    frame: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    *,
    scale: float | None = None,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Crop the face with 5 ``landmarks`` (see :class:`affect4k.detectors.Detection`) from
    ``frame`` as a ``(size, size, 3)`` image aligned to insightface's ArcFace template.

    The template is scaled by ``scale`` (default ``size / 112``) and moved by ``offset``
    pixels, so other models' alignments (dlib's face chip,
    :mod:`affect4k.identity`) are cut by the same anti-aliased sampling. Parts of the output
    square outside ``frame`` are black, as with ``norm_crop``.
    """
    # A similarity fit to a scaled, shifted template is the fit to the template, scaled, shifted.
    to_template = estimate_norm(np.asarray(landmarks, np.float64), 112) * (scale or size / 112)
    to_crop = np.vstack([to_template + np.array([[0, 0, offset[0]], [0, 0, offset[1]]]), [0, 0, 1]])
    scale = float(np.sqrt(abs(np.linalg.det(to_crop[:2, :2]))))
    # Shrink by a whole factor: OpenCV's box filter is ~4x faster then, and the warp that
    # follows shrinks by less than 2x, which bilinear sampling handles without visible aliasing.
    factor = max(1, math.floor(1.0 / scale))
    if factor == 1:
        return cv2.warpAffine(frame, to_crop[:2], (size, size), borderValue=0)

    # Frame region the crop reads (with a margin for the kernels), in whole blocks of factor².
    corners = np.array([[-2, -2, 1], [size + 1, -2, 1], [-2, size + 1, 1], [size + 1, size + 1, 1]])
    source = (np.linalg.inv(to_crop) @ corners.T)[:2]
    start = np.maximum(np.floor(source.min(axis=1)).astype(int) // factor * factor, 0)
    blocks = -(-(np.ceil(source.max(axis=1)).astype(int) + 1 - start) // factor)
    blocks = np.minimum(blocks, (np.array(frame.shape[1::-1]) - start) // factor)
    if blocks.min() <= 0:  # the template square lies entirely outside the frame
        return np.zeros((size, size, 3), frame.dtype)
    (x0, y0), (x1, y1) = start, start + blocks * factor

    shrunk = cv2.resize(frame[y0:y1, x0:x1], tuple(blocks.tolist()), interpolation=cv2.INTER_AREA)
    # Frame pixel -> shrunk pixel: shrunk pixel j is the mean of frame pixels [j*f, (j+1)*f).
    to_shrunk = np.array(
        [[1 / factor, 0, (0.5 - x0) / factor - 0.5], [0, 1 / factor, (0.5 - y0) / factor - 0.5]]
    )
    from_shrunk = to_crop @ np.linalg.inv(np.vstack([to_shrunk, [0, 0, 1]]))
    return cv2.warpAffine(shrunk, from_shrunk[:2], (size, size), borderValue=0)
