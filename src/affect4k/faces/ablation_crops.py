"""The resolution ablation's crops: one subject, one set of landmarks, many resolutions.

Every cell of the ablation (a source height x a crop size) must differ from the others in
pixels only. So nothing is detected, tracked or aligned per cell: the face stage's native
table (``results/faces/{video}.parquet``: the subject chosen at the clip's own size and its 5
landmarks per frame) is read once, each frame is decoded once, scaled to every grid height
low-passed for its factor (:func:`affect4k.faces.align.downscale`: what a camera of that many lines
would have recorded, less its own compression, never an aliased copy), and the subject is
cut from each scaled frame at the native landmarks scaled to it, with
:func:`affect4k.faces.align.align_face`'s anti-aliased sampling, at every crop size. Every cell thus
has exactly the native table's frames, and its table is that table.

Beside the crops, ``spans`` records per frame how many native pixels the crop square spans (the
ArcFace template's side in the frame) and the clip's height: what
:func:`affect4k.evaluation.ablation.resolved_from` needs to bin faces by the height at which their
crop stops holding all the detail its size could.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from insightface.utils.face_align import estimate_norm
from tqdm import tqdm

from affect4k.core.columns import LANDMARK_COLUMNS, SPAN_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_path, read_table
from affect4k.core.media import VideoInfo, iter_frames, prefetch, probe_video
from affect4k.core.progress import progress as progress_bar
from affect4k.faces.align import align_face, downscale


@dataclass(frozen=True)
class CropCell:
    """One grid cell's crops of one video: the source height (None: the clip as it is), the
    crop side, and where its ``.npy`` and face table go."""

    height: int | None
    crop_size: int
    crops: Path
    table: Path


def scaled_size(width: int, height: int, lines: int | None) -> tuple[int, int] | None:
    """(width, height) of a ``width x height`` frame scaled to ``lines`` lines with the aspect
    ratio kept (width rounded to even, as encoders want); None to keep it: no ``lines``, or
    ``lines`` at or above its own (a frame is never upscaled)."""
    if lines is None or lines >= height:
        return None
    return max(2, 2 * round(width * lines / height / 2)), lines


def crop_span(landmarks: np.ndarray) -> float:
    """Side, in the pixels of the frame ``landmarks`` (5, 2) lie in, of the square an aligned
    crop of any size covers."""
    to_template = estimate_norm(np.asarray(landmarks, np.float64), 112)
    return 112.0 / float(np.sqrt(abs(np.linalg.det(to_template[:, :2]))))


def write_cell_crops(
    clip: Path,
    native_table: Path,
    cells: Sequence[CropCell],
    spans: Path,
    *,
    video_id: str,
    progress: bool = True,
) -> None:
    """Crop the native subject of ``clip`` for every cell, in one decode (see the module doc).

    Each cell's ``.npy`` is uint8 ``(frames, crop_size, crop_size, 3)``, row i = frame i,
    zeros where the native table has no face; its table is a copy of ``native_table``. All
    outputs are written atomically: a clip that decodes to another frame count than the
    native table's fails, naming the video, and leaves nothing.
    """
    if not cells:
        raise Affect4kError(f"video {video_id}: no ablation cell to crop")
    native = read_table(native_table, ("frame", "face", *LANDMARK_COLUMNS), f"video {video_id}")
    total = len(native)
    face = native["face"].to_numpy(bool)
    landmarks = native[list(LANDMARK_COLUMNS)].to_numpy(np.float64).reshape(total, 5, 2)
    info = probe_video(clip)
    sizes = {cell.height: scaled_size(info.width, info.height, cell.height) for cell in cells}
    try:
        with ExitStack() as stack:
            files = []
            for cell in cells:
                temp = stack.enter_context(atomic_path(cell.crops))
                handle = stack.enter_context(open(temp, "wb"))
                shape = (total, cell.crop_size, cell.crop_size, 3)
                header = {"descr": "|u1", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(handle, header)
                files.append(handle)
            bar = stack.enter_context(
                progress_bar(total, f"ablation crops {video_id}", "frame")
                if progress
                else tqdm(total=total, disable=True)
            )
            decoded = 0
            for frame in prefetch(iter_frames(clip)):
                if decoded == total:
                    raise Affect4kError(f"{clip} has more frames than {native_table}'s {total}")
                scaled = _scaled_frames(frame, sizes) if face[decoded] else {}
                for cell, handle in zip(cells, files, strict=True):
                    handle.write(_cell_crop(cell, scaled, landmarks[decoded], info).data)
                decoded += 1
                bar.update()
            if decoded != total:
                raise Affect4kError(f"{clip} has {decoded} frames, {native_table} {total} rows")
            for cell in cells:
                with atomic_path(cell.table) as temp:
                    shutil.copyfile(native_table, temp)
            span = np.full(total, np.nan)
            span[face] = [crop_span(points) for points in landmarks[face]]
            columns = (np.arange(total), face, span, np.full(total, info.height))
            table = pa.table(dict(zip(SPAN_COLUMNS, columns, strict=True)))
            with atomic_path(spans) as temp:
                pq.write_table(table, temp)
    except Affect4kError as error:
        raise Affect4kError(f"video {video_id}: {error}") from error


def _scaled_frames(
    frame: np.ndarray, sizes: dict[int | None, tuple[int, int] | None]
) -> dict[int | None, np.ndarray]:
    """``frame`` at every grid height (:func:`affect4k.faces.align.downscale`, low-passed for its
    factor), each scaled once for all crop sizes."""
    return {
        height: frame if size is None else downscale(frame, size) for height, size in sizes.items()
    }


def _cell_crop(
    cell: CropCell, scaled: dict[int | None, np.ndarray], landmarks: np.ndarray, info: VideoInfo
) -> np.ndarray:
    """The cell's crop of one frame (zeros without a native face: ``scaled`` is empty)."""
    if not scaled:
        return np.zeros((cell.crop_size, cell.crop_size, 3), np.uint8)
    image = scaled[cell.height]
    factor = np.array([image.shape[1] / info.width, image.shape[0] / info.height])
    return np.ascontiguousarray(align_face(image, landmarks * factor, cell.crop_size))
