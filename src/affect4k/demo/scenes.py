"""Synthetic source videos: a shipped face photo moving over a textured background, its
expression driven by a latent valence/arousal, written as a bit-exact MP4 with its traces."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic
from affect4k.core.mp4 import encode_mp4
from affect4k.demo.affect_faces import (
    DEMO_FACES,
    FACE_FRACTION,
    PORTRAIT_SIZE,
    face_portrait,
    latent_va,
    portrait_alpha,
    render_face,
    seeded_rng,
    slow_wave,
)
from affect4k.demo.annotators import annotator_profile, annotator_trace, trace_csv


def exact_frame_rate(fps: float | Fraction) -> Fraction:
    """``fps`` as the exact rational a camera writes: 29.97 -> 30000/1001, 50 -> 50/1."""
    if not fps > 0:
        raise Affect4kError(f"frame rate must be positive, got {fps}")
    ntsc = Fraction(round(float(fps) * 1.001) * 1000, 1001)
    if float(fps) != round(float(fps)) and abs(float(ntsc) - float(fps)) < 0.005:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


@dataclass(frozen=True)
class FaceTrack:
    """Ground-truth placement of the demo face at some frame times (arrays of equal length).

    ``centre_x``/``centre_y`` locate the centre of the ArcFace square in frame pixels,
    ``face_height`` is that square's side in pixels, ``angle_deg`` is the in-plane roll
    (positive = counter-clockwise on screen) and ``visible`` is False where no face is drawn.
    """

    centre_x: np.ndarray
    centre_y: np.ndarray
    face_height: np.ndarray
    angle_deg: np.ndarray
    visible: np.ndarray


def _hidden_spans(seed: int, seconds: float) -> list[tuple[float, float]]:
    """Two or three 0.3-0.7 s spans without a face, one in each slot of the clip's middle."""
    rng = seeded_rng(seed, "hidden")
    count = int(rng.integers(2, 4))
    slot = 0.85 * seconds / count
    spans = []
    for index in range(count):
        length = min(rng.uniform(0.3, 0.7), slot / 2)
        start = 0.1 * seconds + index * slot + rng.uniform(0, slot - length)
        spans.append((start, start + length))
    return spans


def face_track(
    seed: int,
    times: np.ndarray,
    *,
    seconds: float,
    width: int,
    height: int,
    face_size: float = 0.25,
) -> FaceTrack:
    """Where the face of the demo clip made with ``seed`` is at ``times`` (seconds): its
    ArcFace square's side varies by up to 40 % around ``face_size`` times the frame height."""
    times = np.asarray(times, dtype=np.float64)
    rng = seeded_rng(seed, "head")
    face_height = height * face_size * (1 + 0.4 * slow_wave(rng, times, (2.0, 8.0)))
    angle = 30 * np.clip(1.5 * slow_wave(rng, times, (2.0, 8.0)), -1, 1)
    # Keep the rotated face square (half-diagonal 0.71 of its side) inside the frame.
    margin = 0.75 * face_height
    centre_x = width / 2 + (width / 2 - margin) * slow_wave(rng, times, (3.0, 10.0))
    centre_y = height / 2 + (height / 2 - margin) * slow_wave(rng, times, (3.0, 10.0))
    visible = np.ones(times.shape, dtype=bool)
    for start, end in _hidden_spans(seed, seconds):
        visible &= ~((times >= start) & (times < end))
    return FaceTrack(centre_x, centre_y, face_height, angle, visible)


def _background(seed: int, width: int, height: int, pad: int) -> np.ndarray:
    """Muted blotchy texture larger than the frame by ``pad`` on each side, to drift over.

    Blobs are sized relative to the frame so every resolution shows the same scene. It is
    drawn at a quarter of the size and upscaled: only low and middle spatial frequencies,
    since fine noise would take most of x264's time.
    """
    rng = seeded_rng(seed, "background")
    size = (width + 2 * pad, height + 2 * pad)
    small = (max(2, size[0] // 4), max(2, size[1] // 4))

    def blobs(across: int, channels: int) -> np.ndarray:
        rows = max(2, round(across * size[1] / size[0]))
        grid = rng.normal(size=(rows + 1, across + 1, channels)).astype(np.float32)
        return cv2.resize(grid, small, interpolation=cv2.INTER_CUBIC).reshape(
            small[1], small[0], channels
        )

    shade = blobs(8, 1) + 0.4 * blobs(40, 1)
    tint = rng.uniform(80, 170, size=3).astype(np.float32)
    texture = np.clip(tint + 40 * shade + 15 * blobs(5, 3), 0, 255).astype(np.uint8)
    return cv2.resize(texture, size, interpolation=cv2.INTER_LINEAR)


def _paste_portrait(
    frame: np.ndarray,
    portrait: np.ndarray,
    alpha: np.ndarray,
    *,
    centre_x: float,
    centre_y: float,
    face_height: float,
    angle_deg: float,
    graded: tuple[float, float] | None = None,
) -> None:
    """Blend ``portrait`` into ``frame`` in place, its face square placed as the track says.

    ``graded`` (the graded cue, :data:`CUES`) adds, over the face's left and right halves (as
    seen in the image), a grating along the face's horizontal axis of these two peak-to-peak
    amplitudes (grey levels), at the periods :data:`GRADED_PERIODS` give in pixels of a 112 px
    crop of the face: fixed in the face's own scale, so whether a crop can hold each depends
    on how many pixels the face spans at a height, which is what the ablation's face bins
    measure. A grating too fine for the frame itself (a period under 2 frame pixels) is not
    drawn: it would alias in the source already.
    """
    size = portrait.shape[0]
    matrix = cv2.getRotationMatrix2D(
        (size / 2, size / 2), angle_deg, face_height / (FACE_FRACTION * size)
    )
    matrix[:, 2] += (centre_x - size / 2, centre_y - size / 2)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    placed = corners @ matrix.T
    x0, y0 = np.maximum(np.floor(placed.min(axis=0)).astype(int), 0)
    x1 = min(int(np.ceil(placed[:, 0].max())), frame.shape[1])
    y1 = min(int(np.ceil(placed[:, 1].max())), frame.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    matrix[:, 2] -= (x0, y0)
    roi_size = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(portrait, matrix, roi_size, flags=cv2.INTER_LINEAR)
    weight = cv2.warpAffine(alpha, matrix, roi_size, flags=cv2.INTER_LINEAR)
    roi = frame[y0:y1, x0:x1]
    roi[...] = cv2.blendLinear(face, roi, weight, 1 - weight)
    if graded is None:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    angle = math.radians(angle_deg)
    # The face's own horizontal axis: portrait x maps to (cos, -sin) in the frame.
    along = (xs - centre_x) * math.cos(angle) - (ys - centre_y) * math.sin(angle)
    periods = [crop_px * face_height / 112 for crop_px in GRADED_PERIODS]
    amplitudes = [a if period >= 2 else 0.0 for a, period in zip(graded, periods, strict=True)]
    left = along < 0
    amplitude = np.where(left, amplitudes[0], amplitudes[1]).astype(np.float32)
    period = np.where(left, periods[0], periods[1]).astype(np.float32)
    wave = np.sin(2 * np.pi * along / period)
    texture = (amplitude / 2 * wave * weight)[..., None]
    # Rounded, not truncated: truncation would darken the face with the amplitude.
    roi[...] = np.clip(np.rint(roi + texture), 0, 255).astype(np.uint8)


#: What carries a demo clip's valence and arousal. coarse: the face's expression, tone and
#: contrast (visible at any resolution); graded: only the amplitudes of two gratings on the
#: face's left (valence) and right (arousal) half, the expression staying neutral, at periods
#: a 112 px crop can hold (:data:`GRADED_PERIODS`), so each disappears at the height where
#: the face's crop no longer resolves it (the resolution ablation's positive control).
CUES = ("coarse", "graded")
#: Largest amplitude (grey levels) of the graded cue's gratings, at valence or arousal 1.
GRADED_CUE_AMPLITUDE = 64.0
#: The graded cue's periods in pixels of a 112 px crop of the face (its ArcFace square): the
#: valence grating at 2.5 px, just above the crop's Nyquist limit of 2 (a face must span 112
#: px or more, its bin's height, for the crop to hold it); the arousal grating at 5 px, which a
#: crop of a face spanning half that still holds (one height-halving more).
GRADED_PERIODS = (2.5, 5.0)


def demo_frames(
    seed: int,
    face: str,
    *,
    fps: Fraction,
    seconds: float,
    width: int,
    height: int,
    cue: str = "coarse",
    face_size: float = 0.25,
) -> Iterator[np.ndarray]:
    """The RGB frames of a demo clip, rendered one at a time (a 4K clip never sits in memory);
    ``cue`` (:data:`CUES`) says what shows the latent valence and arousal."""
    if cue not in CUES:
        raise Affect4kError(f"unknown demo cue {cue!r}; choose one of {', '.join(CUES)}")
    count = round(seconds * fps)
    times = np.arange(count) / float(fps)
    track = face_track(
        seed, times, seconds=seconds, width=width, height=height, face_size=face_size
    )
    valence, arousal = latent_va(seed, times)
    pad = max(width, height) // 32
    background = _background(seed, width, height, pad)
    drift = seeded_rng(seed, "drift")
    offset_x = np.rint(pad * (1 + slow_wave(drift, times, (6.0, 15.0)))).astype(int)
    offset_y = np.rint(pad * (1 + slow_wave(drift, times, (6.0, 15.0)))).astype(int)
    portrait = face_portrait(face, PORTRAIT_SIZE)
    alpha = portrait_alpha(face, PORTRAIT_SIZE)
    neutral = render_face(portrait, 0.0, 0.0)
    if cue == "graded":
        # Tones kept clear of black and white so that no grating value is clipped: a clipped
        # grating would darken or brighten the face with its amplitude, a coarse cue.
        margin = GRADED_CUE_AMPLITUDE / 2
        neutral = (margin + neutral * ((255 - 2 * margin) / 255)).astype(np.uint8)
    for index in range(count):
        frame = background[
            offset_y[index] : offset_y[index] + height, offset_x[index] : offset_x[index] + width
        ].copy()
        if track.visible[index]:
            v, a = float(valence[index]), float(arousal[index])
            graded = cue == "graded"
            _paste_portrait(
                frame,
                neutral if graded else render_face(portrait, v, a),
                alpha,
                graded=(GRADED_CUE_AMPLITUDE * (1 + v) / 2, GRADED_CUE_AMPLITUDE * (1 + a) / 2)
                if graded
                else None,
                centre_x=track.centre_x[index],
                centre_y=track.centre_y[index],
                face_height=track.face_height[index],
                angle_deg=track.angle_deg[index],
            )
        yield frame


#: Frames of grain drawn once and cycled: fresh grain for every 4K frame would cost more than
#: the stages a benchmark measures, and four defeat an encoder's prediction just as well.
GRAIN_FRAMES = 4


def with_grain(frames: Iterator[np.ndarray], grain: float) -> Iterator[np.ndarray]:
    """``frames`` (RGB uint8) plus Gaussian film grain of ``grain`` grey levels, the same for a
    given frame size every time: what makes a synthetic source cost as much to decode (and
    encode) as real 4K video, which the demo's smooth pictures do not."""
    noise: list[np.ndarray] = []
    for index, frame in enumerate(frames):
        if not noise:
            rng = np.random.default_rng(0)
            noise = [
                rng.normal(0, grain, frame.shape).astype(np.int16) for _ in range(GRAIN_FRAMES)
            ]
        yield np.clip(frame + noise[index % GRAIN_FRAMES], 0, 255).astype(np.uint8)


def _check_demo_args(
    video_id: str,
    *,
    face: str,
    fps: float,
    width: int,
    height: int,
    seconds: float,
    annotators: Sequence[str],
) -> Fraction:
    """Refuse bad arguments naming ``video_id``; return the exact frame rate."""
    if not (fps > 0 and math.isfinite(fps)):
        raise Affect4kError(f"{video_id}: frame rate must be positive, got {fps}")
    rate = exact_frame_rate(fps)
    if face not in DEMO_FACES:
        raise Affect4kError(
            f"{video_id}: unknown demo face {face!r}; choose one of {', '.join(DEMO_FACES)}"
        )
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise Affect4kError(f"{video_id}: size {width}x{height} must be even and at least 64x64")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise Affect4kError(f"{video_id}: seconds must be positive, got {seconds}")
    if round(seconds * rate) < 1:
        raise Affect4kError(f"{video_id}: {seconds} s at {rate} fps holds no frame")
    names = list(annotators)
    if not names or len(set(names)) != len(names):
        raise Affect4kError(f"{video_id}: annotators must be distinct and non-empty: {names}")
    for name in names:
        if not name or name.startswith(".") or os.sep in name or "/" in name:
            raise Affect4kError(f"{video_id}: annotator name {name!r} is not a plain file name")
    return rate


def video_seed(seed: int, video_id: str) -> int:
    """The seed of one video of a corpus generated with ``seed``."""
    return int(seeded_rng(seed, video_id).integers(2**31))


def make_demo_video(
    video_id: str,
    video_path: Path,
    annotation_dir: Path,
    *,
    fps: float,
    face: str,
    width: int,
    height: int,
    seconds: float,
    seed: int,
    annotators: Sequence[str],
    cue: str = "coarse",
    face_size: float = 0.25,
) -> None:
    """Generate one demo source: an H.264/AAC MP4 and each annotator's valence/arousal CSVs.

    The MP4 is ``width x height`` at ``fps`` (fractional rates written exactly, 29.97 as
    30000/1001) with ``round(seconds * fps)`` frames and a quiet tone as audio. Traces go to
    ``annotation_dir/{annotator}.{valence,arousal}.csv`` with columns ``time_s,value``; the
    annotator at position i of ``annotators`` reacts with the lag and noise of
    :func:`~affect4k.demo.annotators.annotator_profile`.
    Motion, latent trajectory and annotators are drawn from ``(seed, video_id)``: every video
    of a corpus has its own label trace, or shuffling labels across videos would change nothing
    and a model could learn the clock instead of the face. ``cue`` and ``face_size`` are
    :func:`demo_frames`' (what shows the labels; the face's size over the frame height).
    """
    seed = video_seed(seed, video_id)
    rate = _check_demo_args(
        video_id,
        face=face,
        fps=fps,
        width=width,
        height=height,
        seconds=seconds,
        annotators=annotators,
    )
    video_path, annotation_dir = Path(video_path), Path(annotation_dir)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    annotation_dir.mkdir(parents=True, exist_ok=True)
    encode_mp4(
        demo_frames(
            seed,
            face,
            fps=rate,
            seconds=seconds,
            width=width,
            height=height,
            cue=cue,
            face_size=face_size,
        ),
        video_path,
        what=f"{video_id} (writing {video_path})",
        rate=rate,
        width=width,
        height=height,
        tone_seconds=seconds,
    )
    write_demo_traces(annotation_dir, seed=seed, seconds=seconds, annotators=annotators)


def write_demo_traces(
    annotation_dir: Path, *, seed: int, seconds: float, annotators: Sequence[str]
) -> None:
    """Each annotator's valence and arousal trace of the demo video drawn from ``seed`` (the
    video's own, :func:`video_seed`) as ``annotation_dir/{annotator}.{dimension}.csv``; the
    annotator at position i of ``annotators`` has :func:`annotator_profile`'s lag and noise."""
    Path(annotation_dir).mkdir(parents=True, exist_ok=True)
    for position, annotator in enumerate(annotators):
        lag_s, noise = annotator_profile(position)
        for dimension in DIMENSIONS:
            times, values = annotator_trace(
                seed, seconds, annotator, dimension, lag_s=lag_s, noise=noise
            )
            csv = trace_csv(times, values)
            write_atomic(
                Path(annotation_dir) / f"{annotator}.{dimension}.csv",
                lambda tmp, data=csv: tmp.write_bytes(data),
            )
