"""The video ``affect4k predict`` draws: each frame with the subject's box and two gauges,
valence and arousal, marked as this command's output (its ``comment`` tag)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.commands.predict_inputs import MARK
from affect4k.core.columns import DIMENSIONS
from affect4k.core.files import atomic_path
from affect4k.core.media import iter_frames, probe_video, write_frames
from affect4k.core.progress import progress


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
