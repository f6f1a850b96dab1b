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
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import ffmpeg
import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.config.schema import from_schema, schema_default
from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path, write_atomic
from affect4k.core.images import MAX_PIXELS, check_image_size, read_image
from affect4k.core.media import iter_frames, probe_video, read_container, write_frames
from affect4k.core.progress import progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_COLUMNS = ("frame", "time_s", "face", "valence", "arousal")
IMAGE_COLUMNS = ("file", "faces", "face", "x1", "y1", "x2", "y2", "valence", "arousal")
#: The photo CSV's header before it named the scored face (an output a rerun may replace).
OLD_IMAGE_COLUMNS = ("file", "face", "valence", "arousal")
#: Written into the figure (a PNG text chunk) and the overlay (its ``comment`` tag): an existing
#: output is replaced only if it carries this (a CSV: if its header is one of the two above).
MARK = "affect4k predict"
#: The largest video frame taken, either orientation: 8K (DCI 8192x4320 covers UHD 7680x4320).
MAX_VIDEO_SIDES = (8192, 4320)


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
        if _is_images(source):
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
        write_atomic(figure, lambda tmp: _marked_png(drawn, tmp))
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


def local_input(text: str) -> Path | None:
    """The local file or folder ``text`` names (None for a URL).

    Only a regular file or a folder is taken: reading a FIFO or a device would wait for a
    writer or never end.
    """
    from affect4k.video.download import local_source

    local = local_source(text)
    if local is None:
        return None
    if not local.exists():
        raise Affect4kError(f"{text}: no such file or folder")
    _check_readable(local)
    return local


def fetch_input(url: str, work: Path) -> Path:
    """The video at ``url``, fetched by yt-dlp into ``work`` (at most 2160p, as downloads are)."""
    from affect4k.video.download import download_video

    return download_video(
        "input", url, work / "download.mkv", max_height=schema_default("download.max_height")
    )


def _check_readable(path: Path) -> None:
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise Affect4kError(
            f"{path}: not a regular file or folder (a FIFO, device or socket is not read)"
        )


def _is_images(source: Path) -> bool:
    return source.is_dir() or source.suffix.lower() in IMAGE_SUFFIXES


def check_input_size(source: Path, max_pixels: int) -> None:
    """Refuse images above ``max_pixels`` and videos above 8K, from their headers alone."""
    if _is_images(source):
        for path in image_files(source):
            check_image_size(path, max_pixels)
    else:
        check_video_size(source)


def image_files(source: Path) -> list[Path]:
    """``source`` itself, or the images directly inside the folder ``source``, by name."""
    if not source.is_dir():
        return [source]
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise Affect4kError(f"{source}: folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
    for path in files:
        _check_readable(path)
    return files


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same resolved path, or hard links."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _input_files(text: str) -> list[Path]:
    """The local files and folders ``text`` makes the command read (none for a URL)."""
    from affect4k.video.download import local_source

    local = local_source(text)
    if local is None or not local.exists():
        return []
    if local.is_dir():
        return [local, *(p for p in local.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)]
    return [local]


def written_by_predict(path: Path) -> bool:
    """Whether the existing ``path`` is an output of this command (see :data:`MARK`)."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as file:
        start = file.read(64 * 1024)
    if path.suffix.lower() == ".csv":
        header = start.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
        return header in (",".join(c) for c in (VIDEO_COLUMNS, IMAGE_COLUMNS, OLD_IMAGE_COLUMNS))
    if start.startswith(b"\x89PNG"):
        from PIL import Image, UnidentifiedImageError

        try:
            # Pillow decodes the whole image to find text chunks after the pixels: sized first.
            check_image_size(path)
            with Image.open(path) as image:
                return image.text.get("Software") == MARK
        except (Affect4kError, OSError, UnidentifiedImageError, ValueError):
            return False
    try:
        return read_container(path).tags.get("comment") == MARK
    except Affect4kError:
        return False


def check_outputs(inputs: list[str], outputs: dict[str, Path]) -> None:
    """Refuse an output that is an input (or an image of an input folder), an image written
    into an input folder (the next run would score the figure as a photo), another output, or
    an existing file this command did not write, naming both paths; before any work.

    ``inputs`` as the user gave them (paths or URLs); ``outputs`` by how the user named them.
    """
    sources = [source for text in inputs for source in _input_files(text)]
    folders = [source for source in sources if source.is_dir()]
    named = list(outputs.items())
    for index, (name, path) in enumerate(named):
        for source in sources:
            if _same_file(path, source):
                raise Affect4kError(f"{name} would overwrite the input {source}")
        for folder in folders:
            if path.suffix.lower() in IMAGE_SUFFIXES and _same_file(path.parent, folder):
                raise Affect4kError(
                    f"{name} would land in the input folder {folder}, where the next run "
                    "would read it as a photo; write -o elsewhere"
                )
        for other_name, other in named[index + 1 :]:
            if _same_file(path, other):
                raise Affect4kError(f"{name} and {other_name} are the same file")
        if (path.exists() or path.is_symlink()) and not written_by_predict(path):
            raise Affect4kError(
                f"{name}: {path} exists and was not written by affect4k predict; "
                "move it away or choose another output"
            )


def _marked_png(drawn: Path, out: Path) -> None:
    """Copy the PNG ``drawn`` to ``out`` with :data:`MARK` as its Software text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", MARK)
    with Image.open(drawn) as image:
        image.save(out, format="png", pnginfo=info)


def check_video_size(path: Path) -> None:
    """Refuse a video whose frames are above 8K (:data:`MAX_VIDEO_SIDES`), from its header."""
    info = probe_video(path)
    long_side, short_side = max(MAX_VIDEO_SIDES), min(MAX_VIDEO_SIDES)
    if max(info.width, info.height) > long_side or min(info.width, info.height) > short_side:
        raise Affect4kError(
            f"{path}: {info.width}x{info.height} frames are above 8K "
            f"({long_side}x{short_side}); scale the video down first"
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
    from affect4k.faces.extract import IdentitySettings, detection_copy, subject_crop

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
    from affect4k.faces.extract import IdentitySettings, extract_faces
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


def _overlay_frames(clip: Path, faces: pd.DataFrame, table: pd.DataFrame) -> Iterator[np.ndarray]:
    """Each clip frame with the subject's box and a valence/arousal gauge drawn on it."""
    boxes = faces[["x1", "y1", "x2", "y2"]].to_numpy()
    values = table[list(DIMENSIONS)].to_numpy()
    for index, frame in enumerate(iter_frames(clip)):
        if index >= len(boxes):
            break
        height, width = frame.shape[:2]
        scale = max(1, round(width / 640))
        if np.isfinite(boxes[index]).all():
            x1, y1, x2, y2 = boxes[index].round().astype(int)
            cv2.rectangle(frame, (x1, y1), (x2, y2), (60, 220, 60), 2 * scale)
        _draw_gauge(frame, values[index], scale)
        yield frame


def _draw_gauge(frame: np.ndarray, value: np.ndarray, scale: int) -> None:
    """A valence-arousal disc in the top-left corner with the current prediction as a dot."""
    radius = 60 * scale
    centre = (radius + 10 * scale, radius + 10 * scale)
    region = frame[: 2 * radius + 20 * scale, : 2 * radius + 20 * scale]
    region[:] = (region * 0.4).astype(np.uint8)
    cv2.circle(frame, centre, radius, (200, 200, 200), scale)
    cv2.line(frame, (centre[0] - radius, centre[1]), (centre[0] + radius, centre[1]), (150,) * 3)
    cv2.line(frame, (centre[0], centre[1] - radius), (centre[0], centre[1] + radius), (150,) * 3)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if np.isfinite(value).all():
        dot = (int(centre[0] + value[0] * radius), int(centre[1] - value[1] * radius))
        cv2.circle(frame, dot, 6 * scale, (255, 80, 80), -1)
        text = f"V {value[0]:+.2f}  A {value[1]:+.2f}"
    else:
        text = "subject not found"
    cv2.putText(frame, text, (10 * scale, 2 * radius + 40 * scale), font, 0.5 * scale,
                (255, 255, 255), scale, cv2.LINE_AA)  # fmt: skip


def write_overlay(clip: Path, faces: pd.DataFrame, table: pd.DataFrame, out_path: Path) -> None:
    """An H.264 MP4 of ``clip`` at 25 fps with the tracked box and the live prediction."""
    info = probe_video(clip)
    with atomic_path(Path(out_path)) as temp:
        encoder = (
            ffmpeg.input(
                "pipe:",
                format="rawvideo",
                pix_fmt="rgb24",
                s=f"{info.width}x{info.height}",
                r=CLIP_FPS,
            )  # fmt: skip
            .filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
            .output(
                str(temp),
                format="mp4",
                vcodec="libx264",
                preset="veryfast",
                pix_fmt="yuv420p",
                crf=20,
                metadata=f"comment={MARK}",
            )  # fmt: skip
            .global_args("-hide_banner", "-nostdin")
        )
        write_frames(encoder, _counted_frames(clip, faces, table), f"the overlay {out_path}")


def _counted_frames(clip: Path, faces: pd.DataFrame, table: pd.DataFrame) -> Iterator[memoryview]:
    """The overlay's frames as they go to the encoder, counted on a progress bar."""
    with progress(len(table), "overlay", "frame") as bar:
        for frame in _overlay_frames(clip, faces, table):
            yield frame.data
            bar.update()
