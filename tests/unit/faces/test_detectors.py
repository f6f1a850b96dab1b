"""Detectors: landmark order and coordinates agree between MTCNN and SCRFD; clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from helpers import SHARED

from affect4k.core.errors import Affect4kError
from affect4k.faces.detectors import Detection, make_detector

SCRFD = SHARED / "models" / "scrfd_500m_bnkps.onnx"
needs_scrfd = pytest.mark.skipif(not SCRFD.is_file(), reason=f"{SCRFD} absent (../shared)")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The astronaut (face ~110 px) on a wider grey canvas, RGB."""
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[:, 64:576] = cv2.resize(skimage.data.astronaut(), (512, 360))
    return canvas


@pytest.fixture(scope="module")
def mtcnn():
    return make_detector("mtcnn")


def check_face(detection: Detection, image: np.ndarray) -> None:
    x1, y1, x2, y2 = detection.bbox
    assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = detection.landmarks
    assert lx < nx < rx and mlx < mrx  # left/right as seen in the image
    assert max(ly, ry) < ny < min(mly, mry)  # eyes above nose above mouth
    inside = (detection.landmarks >= detection.bbox[:2]) & (
        detection.landmarks <= detection.bbox[2:]
    )
    assert inside.all()


def test_mtcnn_finds_the_face_with_ordered_landmarks(mtcnn, photo: np.ndarray):
    (face,) = mtcnn.detect(photo)
    check_face(face, photo)
    assert face.score >= 0.9


def test_mtcnn_min_face_size_above_its_native_20px_still_detects(photo: np.ndarray):
    # mtcnn 1.0 alone fails on every image once min_face_size > 20; the detector works round it.
    (face,) = make_detector("mtcnn", min_face_size=60).detect(photo)
    check_face(face, photo)
    assert make_detector("mtcnn", min_face_size=200).detect(photo) == []


@needs_scrfd
def test_scrfd_agrees_with_mtcnn(mtcnn, photo: np.ndarray):
    (scrfd_face,) = make_detector("insightface", str(SCRFD), min_score=0.5).detect(photo)
    (mtcnn_face,) = mtcnn.detect(photo)
    check_face(scrfd_face, photo)
    face_width = mtcnn_face.bbox[2] - mtcnn_face.bbox[0]
    # Same points in the same order (and SCRFD fed BGR as it expects): within 8% of the face.
    assert np.abs(scrfd_face.landmarks - mtcnn_face.landmarks).max() < 0.08 * face_width


@needs_scrfd
def test_scrfd_min_score_filters(photo: np.ndarray):
    (face,) = make_detector("insightface", str(SCRFD), min_score=0.3).detect(photo)
    strict = make_detector("insightface", str(SCRFD), min_score=min(1.0, face.score + 0.01))
    assert strict.detect(photo) == []


def test_detection_scales_to_a_larger_image():
    face = Detection(np.array([10.0, 20, 30, 60]), 0.9, np.arange(10.0).reshape(5, 2))
    big = face.scaled(2.0, 3.0)
    np.testing.assert_allclose(big.bbox, [20, 60, 60, 180])
    np.testing.assert_allclose(big.landmarks[:, 0], face.landmarks[:, 0] * 2)
    np.testing.assert_allclose(big.landmarks[:, 1], face.landmarks[:, 1] * 3)


@pytest.mark.parametrize(
    ("kind", "model", "message"),
    [
        ("retinaface", None, "detector kind 'retinaface'"),
        ("insightface", None, "detector model is required"),
        ("insightface", "/nonexistent/scrfd.onnx", "/nonexistent/scrfd.onnx does not exist"),
        ("mtcnn", "some.onnx", "mtcnn takes no model"),
    ],
)
def test_bad_parameters_are_named(kind: str, model: str | None, message: str):
    with pytest.raises(Affect4kError, match=message):
        make_detector(kind, model)


def test_missing_model_pack_offline_suggests_a_local_file(monkeypatch: pytest.MonkeyPatch):
    from insightface.app import face_analysis

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'github.com'")

    monkeypatch.setattr(face_analysis, "ensure_available", offline)
    with pytest.raises(Affect4kError, match=r"'buffalo_l'.*local \.onnx path"):
        make_detector("insightface", "buffalo_l")
