"""The resolution ablation's table: does 4K help, and for which faces and input sizes?

Every grid cell (a run trained on clips scaled to one source height, at one network input
size) is scored on the database's validation and test splits per face-size bin, each number
with a 95 % bootstrap interval over groups; the cell a configuration would keep is chosen on
validation. A face's size is the width of
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
from affect4k.layout import ABLATION_COLUMNS, DIMENSIONS, METRIC_NAMES, PREDICTION_COLUMNS
from affect4k.metrics import bootstrap, group_sums, interval
from affect4k.tables import VALIDATION, group_keys, read_groups, score


@dataclass(frozen=True)
class AblationCell:
    """One grid cell on one set: the configuration it repeats (or the configuration itself),
    where, with which seed, and its predictions on ``eval_set`` (validation or test)."""

    run: str
    model: str
    resolution: str
    input_size: int
    predictions: Path
    seed: int = 0
    eval_set: str = VALIDATION


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


def _binned(
    cell: AblationCell, widths: pd.DataFrame, face_bins: Sequence[float], labels: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """A cell's predictions with each frame's face-size bin label (None: in no bin)."""
    predictions = read_table(cell.predictions, PREDICTION_COLUMNS, f"run {cell.run}")
    merged = predictions.merge(widths, on=["video", "frame"], how="left", validate="1:1")
    index = np.digitize(merged["face_width"].to_numpy(), face_bins) - 1
    bins = np.where(
        np.isfinite(merged["face_width"]) & (index >= 0),
        np.array(labels, dtype=object)[np.clip(index, 0, len(labels) - 1)],
        None,
    )
    return merged, bins


def build_ablation(
    cells: Sequence[AblationCell],
    native_faces_dir: Path,
    face_bins: Sequence[float],
    out_csv: Path,
    *,
    groups: Path | None = None,
    resamples: int,
    seed: int = 0,
) -> pd.DataFrame:
    """Score every cell per face-size bin (and over ``all`` frames); write :data:`ABLATION_COLUMNS`.

    Bins follow ``face_bins`` edges on the face width in ``native_faces_dir``'s tables; a frame
    whose native detection found no face is in no bin (it counts in ``all`` only if the cell's
    own detection found one). Each metric has a 95 % interval from a bootstrap over the groups
    of ``groups`` (``results/split.csv``; None: every video a group), the same resamples for
    every cell and bin of a set. ``selected`` marks, per configuration, the cell (resolution x
    input size) with the best validation mean CCC over all frames (mean over its seeds): the
    test rows are scored but never read by that choice.
    """
    if not cells:
        raise Affect4kError("ablation: no grid cells given")
    if len(face_bins) < 2 or any(b <= a for a, b in zip(face_bins, face_bins[1:], strict=False)):
        raise Affect4kError(f"ablation face_bins must increase, got {list(face_bins)}")
    labels = bin_labels(face_bins)
    group_table = None if groups is None else read_groups(groups)
    videos = set()
    for cell in cells:
        videos |= set(read_table(cell.predictions, ("video",), f"run {cell.run}")["video"])
    widths = face_widths(native_faces_dir, sorted(videos))
    rows = []
    for eval_set in dict.fromkeys(cell.eval_set for cell in cells):
        members = [cell for cell in cells if cell.eval_set == eval_set]
        parts = []
        for cell in members:
            merged, bins = _binned(cell, widths, face_bins, labels)
            keys = group_keys(merged, group_table, f"run {cell.run}")
            parts += [(cell, "all", merged, keys)]
            parts += [(cell, label, merged[bins == label], keys[bins == label]) for label in labels]
        universe = sorted(set().union(*(set(keys) for *_, keys in parts)))
        sums = []
        for _, _, frames, keys in parts:
            codes = pd.Categorical(keys, categories=universe).codes
            labels_array = frames[list(DIMENSIONS)].to_numpy(np.float64)
            predicted = frames[[f"{d}_pred" for d in DIMENSIONS]].to_numpy(np.float64)
            sums.append(group_sums(labels_array, predicted, codes, len(universe)))
        replicates = bootstrap(sums, resamples, seed)
        for (cell, label, frames, _), reps in zip(parts, replicates, strict=True):
            row = {
                "run": cell.run,
                "model": cell.model,
                "resolution": cell.resolution,
                "input_size": cell.input_size,
                "seed": cell.seed,
                "eval_set": eval_set,
                "face_bin": label,
                **score(frames),
            }
            for name in METRIC_NAMES:
                row[f"{name}_lo"], row[f"{name}_hi"] = interval(reps[name])
            rows.append(row)
    table = pd.DataFrame(rows)
    table["selected"] = _selected(table)
    table = table[list(ABLATION_COLUMNS)]
    write_atomic(Path(out_csv), lambda tmp: table.to_csv(tmp, index=False))
    return table


def _selected(table: pd.DataFrame) -> np.ndarray:
    """Per row: whether its cell is its configuration's best on validation (all frames, mean
    over seeds). Only validation rows are read."""
    cell = ["run", "resolution", "input_size"]
    validation = table[(table["eval_set"] == VALIDATION) & (table["face_bin"] == "all")]
    means = validation.groupby(cell, sort=True)["mean_ccc"].mean().dropna().reset_index()
    best = means.sort_values("mean_ccc", ascending=False).drop_duplicates("run")
    chosen = set(best[cell].itertuples(index=False, name=None))
    return np.array([key in chosen for key in table[cell].itertuples(index=False, name=None)])
