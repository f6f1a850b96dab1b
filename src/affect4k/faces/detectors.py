"""Face detectors behind one interface: MTCNN (the study's choice) and insightface's SCRFD.

Both return boxes and the 5 landmarks ArcFace alignment needs, in the pixel coordinates of the
image they were given, so the face stage can detect on a small copy and map back to 4K.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from affect4k.core.errors import Affect4kError

#: MTCNN 1.0 sizes its image pyramid as if ``min_face_size`` were its default of 20 px; a larger
#: value makes the last pyramid level smaller than PNet's 12 px window and every call fails
#: (reported as "no face"). Larger minimum sizes are therefore applied by shrinking the image.
_MTCNN_NATIVE_MIN_FACE = 20


#: Narrowest face (pixels of the image searched) the face stage asks a detector for: the
#: subject of a 4K clip is hundreds of pixels wide, and skipping tiny faces is what makes
#: MTCNN's image pyramid affordable; smaller faces are found on a larger copy
#: (:func:`affect4k.faces.extract.detection_width`).
MIN_FACE_SIZE = 40


@dataclass(frozen=True, eq=False)
class Detection:
    """One face: ``bbox`` (x1, y1, x2, y2), ``score`` and ``landmarks`` (5, 2) in image pixels.

    Landmark order is left eye, right eye, nose, left and right mouth corner as seen in the
    image, the order of insightface's ArcFace template.
    """

    bbox: np.ndarray
    score: float
    landmarks: np.ndarray

    def scaled(self, sx: float, sy: float) -> Detection:
        """The same face in an image ``sx`` times wider and ``sy`` times taller."""
        factor = np.array([sx, sy])
        return Detection(self.bbox * np.tile(factor, 2), self.score, self.landmarks * factor)


class Detector(Protocol):
    """Anything that finds faces in an ``(H, W, 3)`` uint8 RGB image."""

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


def make_detector(
    kind: str,
    model: str | None = None,
    *,
    min_score: float | None = None,
    min_face_size: int = MIN_FACE_SIZE,
    providers: list[str] | None = None,
) -> Detector:
    """Build the detector named by ``kind`` ("mtcnn" or "insightface").

    ``model`` (insightface only) is a local ``.onnx`` file or an insightface model pack name
    such as ``buffalo_l``. Faces scoring below ``min_score`` or whose box is narrower or shorter
    than ``min_face_size`` pixels of the image passed to ``detect`` are dropped: the subject of
    a 4K clip is hundreds of pixels wide, and skipping tiny faces is what makes MTCNN's image
    pyramid affordable. ``min_score`` defaults to the detector's own scale (MTCNN scores real
    faces above 0.99, SCRFD often only 0.8-0.9). ``providers`` are onnxruntime execution
    providers (default: CUDA first when onnxruntime offers it, then CPU).
    """
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise Affect4kError(f"detector min_score must be within [0, 1], got {min_score}")
    if min_face_size < 1:
        raise Affect4kError(f"detector min_face_size must be positive, got {min_face_size}")
    if kind == "mtcnn":
        if model is not None:
            raise Affect4kError(f"detector model {model!r} given, but mtcnn takes no model")
        # MTCNN scores real faces above 0.99: 0.9 drops only what it doubts.
        return MtcnnDetector(
            min_score=0.9 if min_score is None else min_score, min_face_size=min_face_size
        )
    if kind == "insightface":
        if not model:
            raise Affect4kError(
                "detector model is required for insightface: a .onnx path or a pack name"
            )
        # SCRFD scores real faces lower (often 0.8-0.9, profiles far less): 0.5.
        return ScrfdDetector(
            model,
            min_score=0.5 if min_score is None else min_score,
            min_face_size=min_face_size,
            providers=providers,
        )
    raise Affect4kError(f"detector kind {kind!r} is unknown; use 'mtcnn' or 'insightface'")


def _keep(detections: list[Detection], min_score: float, min_face_size: int) -> list[Detection]:
    return [
        d
        for d in detections
        if d.score >= min_score
        and min(d.bbox[2] - d.bbox[0], d.bbox[3] - d.bbox[1]) >= min_face_size
    ]


class MtcnnDetector:
    """The ``mtcnn`` package (TensorFlow; weights ship in its wheel, so it works offline)."""

    def __init__(self, *, min_score: float, min_face_size: int) -> None:
        from mtcnn import MTCNN  # imports TensorFlow: only pay for it when MTCNN is chosen

        self._mtcnn = MTCNN()
        self._min_score = min_score
        self._min_face_size = min_face_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        shrink = min(1.0, _MTCNN_NATIVE_MIN_FACE / self._min_face_size)
        image = rgb
        if shrink < 1.0:
            size = (round(rgb.shape[1] * shrink), round(rgb.shape[0] * shrink))
            image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # Rows: image index, x1, y1, x2, y2, score, five landmark x, five landmark y.
        rows = self._mtcnn.detect_faces(image, box_format="xyxy", output_type="numpy")
        sx, sy = rgb.shape[1] / image.shape[1], rgb.shape[0] / image.shape[0]
        found = [
            Detection(
                bbox=row[1:5].astype(np.float64),
                score=float(row[5]),
                landmarks=np.stack([row[6:11], row[11:16]], axis=1).astype(np.float64),
            ).scaled(sx, sy)
            for row in np.asarray(rows).reshape(-1, 16)
        ]
        return _keep(found, self._min_score, self._min_face_size)


def _default_providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _session_options() -> Any:
    """onnxruntime options for sharing the CPU with ffmpeg's decoder and the frame reader.

    By default idle onnxruntime threads spin while waiting for work; measured on 2 cores that
    nearly doubles SCRFD's CPU time per frame, all of it taken from the decoder.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class ScrfdDetector:
    """insightface's SCRFD (or a pack's detection model) on onnxruntime."""

    def __init__(
        self,
        model: str,
        *,
        min_score: float,
        min_face_size: int,
        providers: list[str] | None = None,
    ) -> None:
        providers = providers or _default_providers()
        self._model = _load_insightface_detector(model, providers)
        # insightface reads its threshold from here; detect() has no threshold argument for
        # every model class (RetinaFace packs lack it). ctx_id 0 keeps ``providers`` as given.
        self._model.prepare(0, det_thresh=min_score)
        self._min_score = min_score
        self._min_face_size = min_face_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        # Models with a dynamic input run at the image's own size (strides go up to 32); models
        # exported at a fixed size ignore this and letterbox the image into it.
        input_size = (-(-width // 32) * 32, -(-height // 32) * 32)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # SCRFD was trained on BGR
        boxes, keypoints = self._model.detect(bgr, input_size=input_size)
        if keypoints is None:
            raise Affect4kError("detector model gives no landmarks; use a model with keypoints")
        found = [
            Detection(bbox=box[:4].astype(np.float64), score=float(box[4]), landmarks=kps)
            for box, kps in zip(boxes, keypoints.astype(np.float64), strict=True)
        ]
        return _keep(found, self._min_score, self._min_face_size)


def _load_insightface_detector(model: str, providers: list[str]) -> Any:
    """A local .onnx file, or the detection model of an insightface pack (fetched if online)."""
    from insightface import model_zoo
    from insightface.app import FaceAnalysis

    if model.endswith(".onnx") or "/" in model or "\\" in model:
        if not Path(model).is_file():
            raise Affect4kError(f"detector model file {model} does not exist")
        detector = model_zoo.get_model(model, providers=providers, sess_options=_session_options())
        if detector is None or not hasattr(detector, "detect"):
            raise Affect4kError(f"detector model {model} is not a face detection model")
        return detector
    try:
        app = FaceAnalysis(
            name=model,
            allowed_modules=["detection"],
            providers=providers,
            sess_options=_session_options(),
        )
    except OSError as error:
        raise Affect4kError(
            f"detector model pack {model!r} is not under ~/.insightface/models and could not be"
            f" downloaded ({error}); offline, give a local .onnx path as the detector model,"
            " e.g. scrfd_500m_bnkps.onnx"
        ) from error
    return app.det_model
