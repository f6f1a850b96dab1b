"""``affect4k predict``: valence and arousal of any video, photo or folder of photos.

A trained run is applied through the database's own chain, module by module: a video is put on the
25 fps frame grid by :func:`affect4k.video.clip.make_clip` (unless it already is), its subject (the
person on screen longest, or the one nearest ``--subject``'s photo) is detected, identified, aligned
and cropped by :func:`affect4k.faces.extract.extract_faces`, and the crops go through
:func:`affect4k.model.predict.predict_frames` exactly as in the ``predict`` rule, so a clip of the
database gets the rule's numbers. Photos take the same detection and alignment step
(:func:`affect4k.faces.extract.subject_crop`; the largest face, or the one nearest ``--subject``'s,
whose box the CSV gives) and are predicted as the still images of AffectNet are: each one a sequence
of its own.

The sequence length comes from the run's ``config.json`` and the input size and pixel scaling
are layers of the saved model, so nothing a flag could get wrong is asked of the user.

What the command writes never lands on what it reads, nor on a file it did not write itself:
every output carries :data:`MARK` (the CSV its header), so a rerun may replace its own outputs
and nothing else (:func:`check_outputs`). Inputs are sized from their headers before anything
is decoded (:func:`affect4k.core.images.check_image_size`, :func:`check_video_size`), and only
regular files and folders are read: a FIFO or a device would block or never end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.commands.predict_inputs import (
    MAX_VIDEO_SIDES,
    check_input_size,
    check_outputs,
    fetch_input,
    image_files,
    is_photos,
    local_input,
    mark_png,
)
from affect4k.commands.predict_overlay import write_overlay
from affect4k.config.schema import from_schema, schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic
from affect4k.core.images import MAX_PIXELS, check_image_size, read_image
from affect4k.core.media import probe_video
from affect4k.core.progress import progress

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line of ``affect4k predict``."""
    parser.add_argument("input", help="a video file, an image, a folder of images, or a URL")
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="a run directory (results/models/RUN) or a .keras file inside one",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="CSV to write; the figure goes beside it"
    )
    parser.add_argument("--detector", choices=("mtcnn", "insightface"), default="mtcnn")
    parser.add_argument(
        "--face-model", help="insightface only: a local .onnx detector or a model pack name"
    )
    parser.add_argument(
        "--overlay", type=Path, help="also write an MP4 with the face box and a live V/A gauge"
    )
    parser.add_argument(
        "--subject",
        type=Path,
        help="a photo of the person to score: followed in a video (default: the one on screen "
        "longest), picked among the faces of each photo (default: the largest)",
    )
    parser.add_argument("--start", type=float, help="first second of the video to use")
    parser.add_argument("--end", type=float, help="last second of the video to use")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help=f"refuse images larger than this, read from their header (default {MAX_PIXELS:,}); "
        f"videos above 8K ({MAX_VIDEO_SIDES[0]}x{MAX_VIDEO_SIDES[1]}) are always refused",
    )


def planned_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """Every file the command will write, by how the user named it (for error messages)."""
    figure = args.output.with_suffix(".png")
    outputs = {f"-o {args.output}": args.output, f"the figure {figure} (beside -o)": figure}
    if args.overlay is not None:
        outputs[f"--overlay {args.overlay}"] = args.overlay
    return outputs


def run(args: argparse.Namespace) -> int:
    """Predict ``args.input`` and write the CSV, its figure and optionally the overlay."""
    # The terminal shows progress lines; TensorFlow's C++ warnings (MTCNN runs on it) would
    # bury them. Set before anything imports TensorFlow.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from affect4k.faces.detectors import make_detector
    from affect4k.report.plots import prediction_figure

    if args.output.suffix.lower() != ".csv":
        raise Affect4kError(f"-o {args.output}: the output must be a .csv file")
    if args.max_pixels < 1:
        raise Affect4kError(f"--max-pixels {args.max_pixels}: must be at least 1")
    check_outputs([args.input], planned_outputs(args))
    if args.subject is not None:
        check_image_size(args.subject, args.max_pixels, what="--subject")
    local = local_input(args.input)
    if local is not None:  # refused before the model loads; a URL once it is fetched
        check_input_size(local, args.max_pixels)
    model = load_run(args.model)
    detector = make_detector(args.detector, args.face_model)
    with tempfile.TemporaryDirectory(prefix="affect4k-predict-") as work:
        source = local
        if source is None:
            source = fetch_input(args.input, Path(work))
            check_input_size(source, args.max_pixels)
        if is_photos(source):
            if any(v is not None for v in (args.start, args.end, args.overlay)):
                raise Affect4kError("--start, --end and --overlay apply to videos, not images")
            table = predict_images(
                image_files(source), model, detector, args.max_pixels, subject=args.subject
            )
        else:
            table = predict_video(
                source,
                model,
                detector,
                Path(work),
                start=args.start,
                end=args.end,
                overlay=args.overlay,
                subject=args.subject,
            )
        write_atomic(args.output, lambda tmp: table.to_csv(tmp, index=False))
        figure = args.output.with_suffix(".png")
        drawn = Path(work) / "figure.png"
        prediction_figure(table, drawn, f"{args.input} ({model.name})")
        write_atomic(figure, lambda tmp: mark_png(drawn, tmp))
    log.info(
        "wrote %s (%d rows, %d with a face) and %s",
        args.output,
        len(table),
        int(table["face"].sum()),
        figure,
    )
    return 0


@dataclasses.dataclass(frozen=True)
class RunModel:
    """A trained model with what its run fixed: name, sequence length, crop size."""

    name: str
    model: Any
    sequence_length: int
    crop_size: int


def load_run(path: Path) -> RunModel:
    """The model of a run directory (its ``model.keras``) or a ``.keras`` file of a run.

    The run's ``config.json`` (written by :func:`affect4k.model.train.train`) sits in the run
    directory: beside ``model.keras`` / ``best.keras``, one level up for ``checkpoints/``.
    """
    import keras

    import affect4k.model.architectures  # noqa: F401  (registers the custom layers load_model needs)

    path = Path(path)
    if path.is_dir():
        model_file, run_dir = path / "model.keras", path
    elif path.suffix == ".keras" and path.is_file():
        model_file = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise Affect4kError(f"--model {path}: no such run directory or .keras file")
    if not model_file.is_file():
        raise Affect4kError(f"--model {path}: {model_file} does not exist (run not trained?)")
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise Affect4kError(
            f"--model {path}: {config_path} is missing; the sequence length comes from the "
            "run's config.json, which training writes into results/models/RUN/"
        )
    # Only the sequence length is read from it (the model file holds the rest), and the file
    # may have been edited or copied from elsewhere: checked here, not by TrainConfig's asserts.
    try:
        settings = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise Affect4kError(f"{config_path}: not a training config ({exc})") from None
    length = settings.get("sequence_length") if isinstance(settings, dict) else None
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise Affect4kError(
            f"{config_path}: sequence_length must be a positive integer, not {length!r}"
        )
    try:
        model = keras.models.load_model(model_file, compile=False)
    except Exception as exc:  # keras raises several types for a bad archive
        raise Affect4kError(f"cannot load model {model_file} ({exc})") from None
    return RunModel(
        name=run_dir.name,
        model=model,
        sequence_length=length,
        crop_size=int(model.input_shape[-2]),
    )


class PhotoSubject:
    """Which face of a photo is scored, as :func:`affect4k.faces.extract.subject_crop` asks its
    tracker: the largest, or, given the ``reference`` embedding of a ``--subject`` photo, the face
    nearest to it if within ``threshold`` (``faces.subject_threshold``), else none. ``faces`` is how
    many faces the photo showed, which the CSV reports beside the scored one's box.
    """

    def __init__(
        self,
        rgb: np.ndarray,
        small: np.ndarray,
        reference: np.ndarray | None = None,
        embedder: Any = None,
        threshold: float = 0.0,
        identity: Any = None,
    ) -> None:
        self.rgb, self.scale = rgb, rgb.shape[1] / small.shape[1]
        self.reference, self.embedder, self.threshold = reference, embedder, threshold
        self.identity = identity
        self.faces = 0

    def update(self, detections: list[Any]) -> Any:
        """The face to score among ``detections`` (pixels of the detection copy), or None."""
        self.faces = len(detections)
        if not detections:
            return None
        if self.reference is None:
            return max(detections, key=lambda d: float(np.prod(d.bbox[2:] - d.bbox[:2])))
        from affect4k.faces.identity import face_chip

        # As the face stage verifies: a face turned or too small to judge is nobody's.
        geometry = np.array(
            [
                [d.score, *(d.bbox * self.scale), *(d.landmarks * self.scale).ravel()]
                for d in detections
            ]
        )
        detections = [
            d for d, ok in zip(detections, self.identity.verifiable(geometry), strict=True) if ok
        ]
        if not detections:
            return None
        chips = [face_chip(self.rgb, d.landmarks * self.scale) for d in detections]
        distances = np.linalg.norm(self.embedder.embed(chips) - self.reference, axis=1)
        nearest = int(np.argmin(distances))
        return detections[nearest] if distances[nearest] <= self.threshold else None


def predict_images(
    files: list[Path],
    run: RunModel,
    detector: Any,
    max_pixels: int = MAX_PIXELS,
    *,
    subject: Path | None = None,
) -> pd.DataFrame:
    """One row per image (:data:`IMAGE_COLUMNS`), NaN where no face was scored; an image above
    ``max_pixels`` is refused (:func:`affect4k.core.images.read_image`).

    The scored face is the largest, or with a ``subject`` photo the one nearest to its face
    (:class:`PhotoSubject`); each row gives its box (image pixels) and how many faces the
    image showed, so a group photo says whom it scored. A single image without such a face,
    or a folder where no image has one, is refused.
    """
    from affect4k.faces.extract import subject_crop
    from affect4k.faces.identity import IdentitySettings
    from affect4k.faces.scan import detection_copy

    detect_width = schema_default("faces.detect_width")
    reference = embedder = None
    if subject is not None:
        from affect4k.faces.identity import FaceEmbedder, reference_embedding

        embedder = FaceEmbedder()
        reference = reference_embedding(subject, detector, embedder)
    threshold = schema_default("faces.subject_threshold")
    identity = from_schema(IdentitySettings, "faces")
    crops = np.zeros((len(files), run.crop_size, run.crop_size, 3), np.uint8)
    face = np.zeros(len(files), bool)
    boxes = np.full((len(files), 4), np.nan)
    faces = np.zeros(len(files), int)
    bar = progress(len(files), "faces", "image")
    with bar:
        for index, path in enumerate(files):
            rgb = read_image(path, max_pixels)
            small = detection_copy(rgb, detect_width)
            choice = PhotoSubject(rgb, small, reference, embedder, threshold, identity)
            scored, crop = subject_crop(rgb, small, detector, choice, run.crop_size)
            faces[index] = choice.faces
            if crop is not None:
                crops[index], face[index], boxes[index] = crop, True, scored.bbox
            bar.update()
    if not face.any():
        where = files[0] if len(files) == 1 else f"any of the {len(files)} images"
        who = (
            f" of the person of --subject {subject} (within faces.subject_threshold {threshold:g})"
            if subject is not None
            else ""
        )
        raise Affect4kError(f"no face{who} found in {where}")
    predicted = predict_crops(run, crops, face, static=True)
    return pd.DataFrame(
        {
            "file": [path.name for path in files],
            "faces": faces,
            "face": face,
            **{name: boxes[:, i].round(1) for i, name in enumerate(("x1", "y1", "x2", "y2"))},
            "valence": predicted[:, 0],
            "arousal": predicted[:, 1],
        }
    )


def _on_frame_grid(source: Path, start: float | None, end: float | None) -> bool:
    """Whether ``source`` can be used as it is: already 25 fps and not to be trimmed."""
    return start is None and end is None and probe_video(source).fps == CLIP_FPS


def predict_video(
    source: Path,
    run: RunModel,
    detector: Any,
    work: Path,
    *,
    start: float | None = None,
    end: float | None = None,
    overlay: Path | None = None,
    subject: Path | None = None,
) -> pd.DataFrame:
    """One row per 25 fps frame of ``source``'s ``[start, end]`` (:data:`VIDEO_COLUMNS`).

    The face stage's own subject selection picks whose face is predicted: the person nearest
    the face in the ``subject`` photo, or the one on screen the longest.

    ``time_s`` is the frame's time in ``source`` (``start + frame / 25``). Writes an overlay
    MP4 at ``overlay`` if given.
    """
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import IdentitySettings
    from affect4k.video.clip import ClipEncoding, make_clip

    clip = source
    if not _on_frame_grid(source, start, end):
        clip = work / "clip.avi"
        log.info("putting %s on the 25 fps frame grid", source)
        # A scratch clip, read once by the face stage below, encoded as the database's clips are.
        make_clip(
            source,
            clip,
            video_id=source.name,
            start=start,
            end=end,
            encoding=from_schema(ClipEncoding, "clips"),
        )
    parquet, npy = work / "faces.parquet", work / "faces.npy"
    extract_faces(
        clip,
        parquet,
        npy,
        detector=detector,
        video_id=source.name,
        detect_width=schema_default("faces.detect_width"),
        identity=from_schema(IdentitySettings, "faces"),
        crop_size=run.crop_size,
        subject_photo=subject,
    )
    faces = pd.read_parquet(parquet)
    face = faces["face"].to_numpy(bool)
    predicted = predict_crops(run, np.load(npy, mmap_mode="r"), face, static=False)
    table = pd.DataFrame(
        {
            "frame": faces["frame"],
            "time_s": (start or 0.0) + faces["frame"] / CLIP_FPS,
            "face": face,
            "valence": predicted[:, 0],
            "arousal": predicted[:, 1],
        }
    )
    if overlay is not None:
        write_overlay(clip, faces, table, overlay)
    return table


def predict_crops(run: RunModel, crops: np.ndarray, face: np.ndarray, *, static: bool) -> Any:
    """``(frames, 2)`` predictions of ``crops``, NaN without a face, through ``predict_frames``.

    The crops are one video (consecutive frames, cut into the run's sequences as in the
    ``predict`` rule) or, with ``static``, unrelated photos (each repeated over a sequence).
    """
    from affect4k.model.predict import predict_frames
    from affect4k.model.sequences import Video

    frames = len(crops)
    video = Video(
        name="input",
        crops=crops,
        labels=np.full((frames, 2), np.nan, np.float32),
        face=face,
        in_split=np.ones(frames, bool),
        static=static,
    )
    table = predict_frames(
        run.model,
        [video],
        sequence_length=run.sequence_length,
        batch_size=schema_default("evaluation.batch_size"),
        description=f"predict {run.name}",
    )
    return table[["valence_pred", "arousal_pred"]].to_numpy(np.float64)
