"""Small synthetic corpora: test sets in the Aff-Wild2 and AffectNet layouts, rendered like the
demo videos, so a model trained on the demo can be evaluated "on other databases"; and a toy
database in our own layout for the tests and benchmarks of training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_dir, write_atomic
from affect4k.demo.affect_faces import (
    DEMO_FACES,
    FACE_FRACTION,
    face_portrait,
    latent_va,
    render_face,
    seeded_rng,
)
from affect4k.evaluation.import_corpus import annotation_rows, write_annotations, write_faces


def _aligned_crop(
    portrait: np.ndarray,
    size: int,
    *,
    margin: float,
    rng: np.random.Generator,
    roll_deg: float,
    shift: float,
) -> np.ndarray:
    """Warp the portrait's face square (times ``margin``) to ``size`` px with a little jitter."""
    side = portrait.shape[0]
    scale = size / (FACE_FRACTION * side * margin) * rng.uniform(0.97, 1.03)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-roll_deg, roll_deg), scale)
    matrix[:, 2] += size / 2 - side / 2 + rng.uniform(-shift, shift, size=2) * size
    return cv2.warpAffine(
        portrait, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    if not ok:
        raise Affect4kError("OpenCV could not encode a JPEG")
    return buffer.tobytes()


def _build_directory(root: Path, fill: Callable[[Path], None]) -> None:
    """Build a dataset folder under a temp name beside ``root``, then rename it into place."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise Affect4kError(f"{root}: already exists and is not empty; remove it to regenerate")
    with atomic_dir(root) as temp:
        fill(temp)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise Affect4kError(f"{name} must be a positive integer, got {value!r}")


#: Frame rate the synthetic Aff-Wild2 videos' latent is sampled at (most of Aff-Wild2 is 30 fps).
AFFWILD2_FPS = 30


def make_affwild2_set(root: Path, *, videos: int, frames: int, seed: int) -> None:
    """Write a small synthetic Aff-Wild2-style validation set under ``root``.

    Layout as released: ``cropped_aligned/{video}/{frame:05d}.jpg`` (112x112, 1-based: 00001.jpg
    is the first annotation line) and
    ``annotations/VA_Estimation_Challenge/Validation_Set/{video}.txt`` (header ``valence,arousal``,
    one line per frame). As in the real release a span of lines is ``-5,-5`` (unannotated) and a
    few frames have no jpg.
    """
    _check_count("videos", videos)
    _check_count("frames", frames)

    def fill(folder: Path) -> None:
        labels = folder / "annotations" / "VA_Estimation_Challenge" / "Validation_Set"
        labels.mkdir(parents=True)
        for index in range(videos):
            rng = seeded_rng(seed, "affwild2", str(index))
            video, video_seed = f"video{index + 1}", int(rng.integers(2**31))
            portrait = face_portrait(DEMO_FACES[int(rng.integers(len(DEMO_FACES)))])
            valence, arousal = latent_va(video_seed, np.arange(frames) / AFFWILD2_FPS)
            unannotated = np.zeros(frames, dtype=bool)
            span = max(1, frames // 20)
            start = int(rng.integers(0, frames - span + 1))
            unannotated[start : start + span] = True
            missing = set(rng.choice(frames, size=max(1, frames // 50), replace=False).tolist())
            crops = folder / "cropped_aligned" / video
            crops.mkdir(parents=True)
            lines = ["valence,arousal"]
            for frame in range(frames):
                lines.append(
                    "-5,-5" if unannotated[frame] else f"{valence[frame]:.3f},{arousal[frame]:.3f}"
                )
                if frame in missing:
                    continue
                face = render_face(portrait, float(valence[frame]), float(arousal[frame]))
                crop = _aligned_crop(face, 112, margin=1.0, rng=rng, roll_deg=3, shift=0.02)
                (crops / f"{frame + 1:05d}.jpg").write_bytes(_jpeg(crop))
            (labels / f"{video}.txt").write_text("\n".join(lines) + "\n")

    _build_directory(root, fill)


#: AffectNet's code for "Uncertain"; its rows carry valence = arousal = -2.
AFFECTNET_UNCERTAIN = 9


def _affectnet_expression(valence: float, arousal: float) -> int:
    """A plausible AffectNet category for a point of the circumplex (codes 0-7)."""
    if abs(valence) <= 0.3:
        return 3 if arousal > 0.4 else 0  # surprise, neutral
    if valence > 0.3:
        return 1  # happy
    if arousal > 0.65:
        return 4  # fear
    return 6 if arousal > 0.3 else 2  # anger, sad


def make_affectnet_set(root: Path, *, images: int, seed: int) -> None:
    """Write a small synthetic AffectNet-style set under ``root``.

    ``images/{n}.jpg`` (n from 1) are static upright face crops of 150-300 px with the face
    roughly centred; ``labels.csv`` has columns ``subDirectory_filePath,expression,valence,
    arousal`` (paths relative to ``images``) and, as in AffectNet, a few rows of the Uncertain
    category with valence and arousal -2.
    """
    _check_count("images", images)

    def fill(folder: Path) -> None:
        (folder / "images").mkdir()
        rng = seeded_rng(seed, "affectnet")
        uncertain = set(rng.choice(images, size=max(1, images // 12), replace=False).tolist())
        lines = ["subDirectory_filePath,expression,valence,arousal"]
        for number in range(1, images + 1):
            face = DEMO_FACES[int(rng.integers(len(DEMO_FACES)))]
            valence, arousal = rng.uniform(-0.9, 0.9, size=2)
            rendered = render_face(face_portrait(face), float(valence), float(arousal))
            size = int(rng.integers(150, 301))
            crop = _aligned_crop(rendered, size, margin=1.2, rng=rng, roll_deg=8, shift=0.04)
            (folder / "images" / f"{number}.jpg").write_bytes(_jpeg(crop))
            if number - 1 in uncertain:
                lines.append(f"{number}.jpg,{AFFECTNET_UNCERTAIN},-2,-2")
            else:
                code = _affectnet_expression(valence, arousal)
                lines.append(f"{number}.jpg,{code},{valence:.6f},{arousal:.6f}")
        (folder / "labels.csv").write_text("\n".join(lines) + "\n")

    _build_directory(root, fill)


def write_toy_corpus(
    out_dir: Path,
    *,
    videos: int,
    frames: int,
    test_videos: int = 1,
    validation_videos: int = 0,
    crop_size: int = 112,
    seed: int = 0,
) -> Path:
    """A synthetic database whose crop colour encodes the label; returns its annotations path.

    Crops are flat colours, red = valence and green = arousal (128 + 100 * value), so a model
    that reads its inputs in sync with its labels learns them within a few epochs and one fed
    shuffled labels cannot: the tests' and benchmark's stand-in for a real database. Labels are
    slow random sinusoids; each video has a span without a face (zero crop) and a span without
    labels (NaN), its last ``test_videos`` videos form the test split and the
    ``validation_videos`` before them the validation split.
    """
    held_out = test_videos + validation_videos
    if videos < 2 or frames < 20 or test_videos < 1 or validation_videos < 0 or held_out >= videos:
        raise Affect4kError(
            f"toy corpus needs videos >= 2, frames >= 20, test_videos >= 1, validation_videos "
            f">= 0 and test_videos + validation_videos < videos, got {videos}, {frames}, "
            f"{test_videos}, {validation_videos}"
        )
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    tables = []
    for index in range(videos):
        video = f"toy{index:03d}"
        time = np.arange(frames) / 25
        period, phase = rng.uniform(2, 6, 2), rng.uniform(0, 2 * np.pi, 2)
        labels = (0.8 * np.sin(2 * np.pi * time[:, None] / period + phase)).astype(np.float32)
        face = np.ones(frames, dtype=bool)
        no_face, unlabelled = rng.choice(frames - frames // 10, size=2, replace=False)
        face[no_face : no_face + frames // 10] = False
        labels[unlabelled : unlabelled + frames // 20] = np.nan
        colour = np.stack([128 + 100 * labels[:, 0], 128 + 100 * labels[:, 1]], axis=1)
        crops = np.zeros((frames, crop_size, crop_size, 3), dtype=np.uint8)
        crops[..., :2] = np.nan_to_num(colour, nan=128)[:, None, None, :].astype(np.uint8)
        crops[..., 2] = 128
        crops[~face] = 0
        write_atomic(out_dir / "faces" / f"{video}.npy", lambda tmp, c=crops: np.save(tmp, c))
        write_faces(out_dir / "faces", video, face)
        rows = annotation_rows(video, labels, face, static=False)
        rows["time_s"] = time
        sides = ("train", "validation", "test")
        rows["split"] = sides[(index >= videos - held_out) + (index >= videos - test_videos)]
        tables.append(pd.DataFrame(rows))
    return write_annotations(out_dir, pd.concat(tables, ignore_index=True))
