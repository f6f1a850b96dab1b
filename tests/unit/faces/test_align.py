"""align_face and downscale: ArcFace template geometry, and no aliasing at any shrink factor."""

import cv2
import numpy as np
import pytest
from helpers import REPO
from insightface.utils.face_align import arcface_dst, estimate_norm, norm_crop

from affect4k.faces.align import align_face, downscale

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]])


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """2x3 matrix: template coordinates -> frame coordinates."""
    angle = np.deg2rad(degrees)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def template_in_frame(matrix: np.ndarray) -> np.ndarray:
    return np.hstack([arcface_dst, np.ones((5, 1))]) @ matrix.T


def dot_centres(crop: np.ndarray) -> np.ndarray:
    """Centroid of each coloured dot, found by its colour."""
    centres = []
    for colour in COLOURS:
        weight = np.clip(
            np.min(np.where(colour > 0, crop, 255 - crop.astype(int)), axis=2) - 128, 0, None
        )
        ys, xs = np.nonzero(weight)
        w = weight[ys, xs]
        centres.append([np.average(xs, weights=w), np.average(ys, weights=w)])
    return np.array(centres)


def test_landmarks_land_on_the_template_like_norm_crop():
    matrix = similarity(6.0, 23.0, (900.0, 250.0))  # a face ~6x the crop size, tilted
    landmarks = template_in_frame(matrix)
    frame = np.zeros((1500, 1600, 3), np.uint8)
    for (x, y), colour in zip(landmarks, COLOURS, strict=True):
        cv2.circle(frame, (round(x * 16), round(y * 16)), 15 * 16, colour.tolist(), -1, shift=4)

    ours = dot_centres(align_face(frame, landmarks))
    reference = dot_centres(norm_crop(frame, landmarks))

    np.testing.assert_allclose(ours, arcface_dst, atol=0.75)
    np.testing.assert_allclose(ours, reference, atol=0.5)


def test_face_partly_outside_the_frame_is_black_there():
    matrix = similarity(4.0, 0.0, (-150.0, 100.0))  # the left part of the crop is off-frame
    frame = np.full((800, 800, 3), 200, np.uint8)
    crop = align_face(frame, template_in_frame(matrix))
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert crop[:, :30].max() == 0
    assert crop[:, 45:].min() == 200


def supersampled_crop(frame: np.ndarray, landmarks: np.ndarray, factor: int = 8) -> np.ndarray:
    """Ground truth: warp at ``factor`` times the crop size (no aliasing), then box-average."""
    matrix = np.vstack([estimate_norm(landmarks, 112), [0, 0, 1]])
    upscale = np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1]])
    big = cv2.warpAffine(frame, (upscale @ matrix)[:2], (112 * factor, 112 * factor))
    return cv2.resize(big, (112, 112), interpolation=cv2.INTER_AREA)


def test_shrinking_a_high_frequency_texture_does_not_alias():
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (1400, 1400, 3), np.uint8)  # pixel-level detail, as 4K skin
    landmarks = template_in_frame(similarity(6.5, -12.0, (500.0, 420.0)))
    truth = supersampled_crop(frame, landmarks).astype(float)

    ours = align_face(frame, landmarks).astype(float)
    naive = norm_crop(frame, landmarks).astype(float)

    ours_error = np.sqrt(np.mean((ours - truth) ** 2))
    naive_error = np.sqrt(np.mean((naive - truth) ** 2))
    assert ours_error < naive_error / 3


def test_low_resolution_source_is_plainly_warped():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (200, 200, 3), np.uint8)
    landmarks = template_in_frame(similarity(0.7, 5.0, (60.0, 40.0)))  # face smaller than crop
    np.testing.assert_array_equal(align_face(frame, landmarks), norm_crop(frame, landmarks))


def test_insightfaces_deprecation_warning_stays_out_of_the_face_logs():
    """Aligning a face prints nothing (the face job's log), while any other FutureWarning,
    even one of scikit-image's own, still shows: the filter is that narrow."""
    import os
    import subprocess
    import sys

    script = (
        "import warnings, numpy as np\n"
        "from affect4k.faces.align import align_face\n"
        "from insightface.utils.face_align import arcface_dst\n"
        "align_face(np.zeros((200, 200, 3), np.uint8), arcface_dst * 1.5)\n"
        "warnings.warn('`estimate` is deprecated elsewhere', FutureWarning)\n"
    )
    src = REPO / "src"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "face_align.py" not in result.stderr, result.stderr
    assert result.stderr.count("FutureWarning") == 1, result.stderr
    assert "deprecated elsewhere" in result.stderr


@pytest.mark.parametrize("factor", [1.5, 2, 3, 4])
def test_a_one_pixel_checkerboard_is_gone_after_any_downscale(factor):
    """At x1.5 and x3 a box filter (INTER_AREA) aliases it into a pattern the output can hold;
    here it comes out flat: every pixel within 1 grey of its mean, frames and crops alike."""
    side = 2160
    board = (np.indices((side, side)).sum(axis=0) % 2 * 255).astype(np.uint8)
    frame = np.repeat(board[:, :, None], 3, axis=2)
    out = round(side / factor)
    shrunk = downscale(frame, (out, out)).astype(float)
    assert shrunk.shape == (out, out, 3)
    assert np.abs(shrunk - 127.5).max() < 1, np.abs(shrunk - 127.5).max()
    # A crop 112 px wide from a face 112 x factor px wide: as flat.
    landmarks = template_in_frame(similarity(factor, 9.0, (700.0, 800.0)))
    crop = align_face(frame, landmarks).astype(float)
    assert np.abs(crop - 127.5).max() < 1, np.abs(crop - 127.5).max()
    # What the box filter did: an aliased pattern at x1.5 and x3, where the output holds it.
    area = cv2.resize(frame, (out, out), interpolation=cv2.INTER_AREA).astype(float)
    if factor in (1.5, 3):
        assert area.std() > 3


def test_a_downscale_keeps_what_the_output_can_hold():
    """A sine at half the output's Nyquist frequency (4 output pixels a cycle) keeps more than
    half its amplitude (0.56 of it: the Gaussian's 0.64, then bilinear sampling)."""
    side, factor = 1440, 3
    x = np.arange(side)
    period = 4 * factor  # output pixels per cycle: 4 (half of Nyquist's 2)
    row = 127.5 + 100 * np.sin(2 * np.pi * x / period)
    frame = np.repeat(np.tile(row, (side, 1))[:, :, None], 3, axis=2).astype(np.uint8)
    shrunk = downscale(frame, (side // factor, side // factor)).astype(float)
    amplitude = (shrunk[:, 20:-20].max() - shrunk[:, 20:-20].min()) / 2
    assert amplitude > 0.5 * 100
