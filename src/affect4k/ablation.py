"""The resolution ablation's table: does 4K help, and for which faces and input sizes?

Every grid cell (a run trained on clips scaled to one source height, at one network input
size) is scored on the database's test split per face-size bin. A face's size is the width of
its detected box in the native clip's pixels, so one bin holds the same frames in every cell:
where the scores of the native and the downscaled cells meet, resolution stopped mattering
for faces of that size. Every number is recomputed from the saved predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.errors import Affect4kError
from affect4k.files import read_table, write_atomic
from affect4k.layout import ABLATION_COLUMNS, PREDICTION_COLUMNS
from affect4k.tables import score


@dataclass(frozen=True)
class AblationCell:
    """One grid cell: the run it repeats (or the run itself), where, and its predictions."""

    run: str
    model: str
    resolution: str
    input_size: int
    predictions: Path


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``[0, 100, 200]`` -> ``["0-100", "100-200", "200+"]``: the last bin is open-ended."""
    edges = [f"{edge:g}" for edge in edges]
    return [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)] + [f"{edges[-1]}+"]


def face_widths(faces_dir: Path, videos: Sequence[str]) -> pd.DataFrame:
    """``video, frame, face_width`` (native pixels, NaN without a face) of ``videos``."""
    tables = []
    for video in videos:
        path = Path(faces_dir) / f"{video}.parquet"
        faces = read_table(path, ("frame", "x1", "x2"), f"video {video}")
        tables.append(
            pd.DataFrame(
                {"video": video, "frame": faces["frame"], "face_width": faces["x2"] - faces["x1"]}
            )
        )
    return pd.concat(tables, ignore_index=True)


def build_ablation(
    cells: Sequence[AblationCell],
    native_faces_dir: Path,
    face_bins: Sequence[float],
    out_csv: Path,
) -> pd.DataFrame:
    """Score every cell per face-size bin (and over ``all`` frames); write :data:`ABLATION_COLUMNS`.

    Bins follow ``face_bins`` edges on the face width in ``native_faces_dir``'s tables; a frame
    whose native detection found no face is in no bin (it counts in ``all`` only if the cell's
    own detection found one).
    """
    if not cells:
        raise Affect4kError("ablation: no grid cells given")
    if len(face_bins) < 2 or any(b <= a for a, b in zip(face_bins, face_bins[1:], strict=False)):
        raise Affect4kError(f"ablation face_bins must increase, got {list(face_bins)}")
    labels = bin_labels(face_bins)
    rows = []
    widths = None
    for cell in cells:
        predictions = read_table(cell.predictions, PREDICTION_COLUMNS, f"run {cell.run}")
        if widths is None:
            widths = face_widths(native_faces_dir, sorted(predictions["video"].unique()))
        merged = predictions.merge(widths, on=["video", "frame"], how="left", validate="1:1")
        index = np.digitize(merged["face_width"].to_numpy(), face_bins) - 1
        bins = np.where(
            np.isfinite(merged["face_width"]) & (index >= 0),
            np.array(labels, dtype=object)[np.clip(index, 0, len(labels) - 1)],
            None,
        )
        groups = [("all", merged), *((label, merged[bins == label]) for label in labels)]
        for label, frames in groups:
            scores = score(frames)
            rows.append(
                {
                    "run": cell.run,
                    "model": cell.model,
                    "resolution": cell.resolution,
                    "input_size": cell.input_size,
                    "face_bin": label,
                    **scores,
                }
            )
    table = pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))
    write_atomic(Path(out_csv), lambda tmp: table.to_csv(tmp, index=False))
    return table
