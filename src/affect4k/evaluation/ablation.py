"""The resolution ablation's table: does 4K help, and for which faces, crops and inputs?

Every grid cell (a run trained on crops cut from the clips scaled to one source height, at one
crop size and network input size; :mod:`affect4k.faces.ablation_crops`) is scored on the database's
validation and test splits, over all frames and per face bin, each number with a 95 %
interval from a bootstrap over groups (:func:`affect4k.core.metrics.interval`); the cell a
configuration would keep is chosen on validation. Every cell is scored on exactly the same
frames, those with a native subject face (refused otherwise), so cells differ in their pixels
only, and that is what the table measures: each cell's paired difference in mean CCC against
the native cell of its run, crop size and input size (same frames, groups, resamples and
seeds), with its interval and p, and Holm's correction over every such difference of a set
(``delta_significant``). Cells with several seeds get a ``mean`` row, whose difference is the
mean over the seeds of the paired differences: seed noise (0.35 against 0.75 between two
seeds of one cell) dwarfs most effects, so marginal intervals that overlap say little.

Face bins are derived, not chosen: a frame's bin, for a crop size C, is the lowest grid height
at which its crop still holds all the detail a C-pixel crop can (the face's crop square spans
at least C pixels there; :func:`resolved_from`). Above that height, more lines cannot help that
face at that crop size; below it they can. Every number is recomputed from the saved
predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.config.runs import NATIVE, height_label, parse_resolution
from affect4k.core.columns import (
    ABLATION_COLUMNS,
    DIMENSIONS,
    METRIC_NAMES,
    PREDICTION_COLUMNS,
    SPAN_COLUMNS,
)
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.core.metrics import (
    group_sums,
    holm,
    interval,
    metrics_of_sums,
    p_value,
    resampled_totals,
)
from affect4k.evaluation.tables import (
    MEAN_SEED,
    VALIDATION,
    group_keys,
    interval_note,
    read_groups,
    score,
)

#: Face bin of frames whose crop lacks detail even at the clip's own height.
UNRESOLVED = "unresolved"
#: Family-wise error rate of ``delta_significant`` (Holm over a set's differences).
ALPHA = 0.05


@dataclass(frozen=True)
class AblationCell:
    """One grid cell on one set: the configuration it repeats (or the configuration itself),
    its crops (``resolution``, :func:`affect4k.config.runs.cell_resolution`), input size and seed,
    and its predictions on ``eval_set`` (validation or test)."""

    run: str
    model: str
    resolution: str
    input_size: int
    predictions: Path
    seed: int = 0
    eval_set: str = VALIDATION

    @property
    def height(self) -> str:
        """The source height: ``native`` or ``h<lines>``."""
        height, _ = parse_resolution(self.resolution)
        return height_label(NATIVE if height is None else height)

    @property
    def crop_size(self) -> int:
        return parse_resolution(self.resolution)[1]


def bin_order(heights: Sequence[int | str]) -> list[str]:
    """The face bins of a grid, from the faces only full resolution resolves to the largest:
    ``unresolved``, ``native``, then the grid's heights from high to low."""
    lines = sorted((h for h in heights if h != NATIVE), reverse=True)
    return [UNRESOLVED, NATIVE, *(f"h{h}" for h in lines)]


def resolved_from(
    span: np.ndarray, source_height: np.ndarray, heights: Sequence[int | str], crop_size: int
) -> np.ndarray:
    """Per frame, the lowest of ``heights`` at which its crop holds all the detail a
    ``crop_size`` crop can: where its crop square, ``span`` native pixels of a clip
    ``source_height`` lines high, still spans ``crop_size`` pixels once the clip is scaled to
    that height (a height at or above the clip's own is the clip itself: ``native``).
    :data:`UNRESOLVED` where even the clip's own height is not enough; None without a face.

    With a 4K clip and crop 112, a face spanning 200 px is resolved from 1440 lines (200 x
    1440/2160 = 133 >= 112) but not at 1080 (100 < 112): its bin is ``h1440``.
    """
    span = np.asarray(span, np.float64)
    source = np.asarray(source_height, np.float64)
    labels = np.full(span.shape, None, dtype=object)
    labels[np.isfinite(span)] = UNRESOLVED
    best = np.full(span.shape, np.inf)
    for height in heights:
        lines = source if height == NATIVE else np.minimum(float(height), source)
        resolved = np.isfinite(span) & (span * lines / source >= crop_size) & (lines < best)
        best[resolved] = lines[resolved]
        labels[resolved] = np.where(lines[resolved] >= source[resolved], NATIVE, f"h{height}")
    return labels


def read_spans(spans_dir: Path, videos: Sequence[str]) -> pd.DataFrame:
    """``video, frame, span, source_height`` of ``videos`` (span NaN without a face)."""
    tables = []
    for video in videos:
        spans = read_table(Path(spans_dir) / f"{video}.parquet", SPAN_COLUMNS, f"video {video}")
        tables.append(spans.assign(video=video)[["video", "frame", "span", "source_height"]])
    return pd.concat(tables, ignore_index=True)


def _frames_of(cell: AblationCell, spans: pd.DataFrame, heights: Sequence[int | str]):
    """A cell's predictions with each frame's face bin for the cell's crop size."""
    predictions = read_table(cell.predictions, PREDICTION_COLUMNS, f"run {cell.run}")
    merged = predictions.merge(spans, on=["video", "frame"], how="left", validate="1:1")
    bins = resolved_from(merged["span"], merged["source_height"], heights, cell.crop_size)
    return merged, bins


def _check_same_frames(cells: Sequence[AblationCell], eval_set: str) -> None:
    """Refuse cells of one set scored on different frames (the comparison would be unfair)."""
    reference = None
    for cell in cells:
        frames = read_table(cell.predictions, ("video", "frame"), f"run {cell.run}")
        keys = set(frames[["video", "frame"]].itertuples(index=False, name=None))
        if reference is None:
            reference = (cell, keys)
        elif keys != reference[1]:
            first = reference[0]
            raise Affect4kError(
                f"ablation: {cell.predictions} holds {len(keys)} {eval_set} frames, "
                f"{first.predictions} {len(reference[1])}, not all the same; every cell of "
                f"run {cell.run} must be scored on the same frames (the native subject's)"
            )


def build_ablation(
    cells: Sequence[AblationCell],
    spans_dir: Path,
    heights: Sequence[int | str],
    out_csv: Path,
    *,
    groups: Path | None = None,
    resamples: int,
    seed: int = 0,
    min_groups: int = 3,
) -> pd.DataFrame:
    """Score every cell over ``all`` frames and per face bin; write :data:`ABLATION_COLUMNS`.

    A frame's bin for a cell is :func:`resolved_from` of its span (``spans_dir``, written by
    :mod:`affect4k.faces.ablation_crops`) at the cell's crop size over the grid's ``heights``. Each
    metric has a 95 % interval from a bootstrap over the groups of ``groups``
    (``results/split.csv``; None: every video a group), the same resamples for every cell and
    bin of a set, so cells compare pairwise; below ``min_groups`` groups there is no interval
    (``interval_note`` says so). ``delta_ccc`` is the paired difference against the native
    cell (:func:`_deltas`). ``selected`` marks, per configuration, the cell (resolution x
    input size) with the best validation mean CCC over all frames (mean over its seeds): the
    test rows are scored but never read by that choice.
    """
    if not cells:
        raise Affect4kError("ablation: no grid cells given")
    labels = bin_order(heights)
    group_table = None if groups is None else read_groups(groups)
    videos = set()
    for cell in cells:
        videos |= set(read_table(cell.predictions, ("video",), f"run {cell.run}")["video"])
    spans = read_spans(spans_dir, sorted(videos))
    rows, replicates = [], []
    for eval_set in dict.fromkeys(cell.eval_set for cell in cells):
        members = [cell for cell in cells if cell.eval_set == eval_set]
        _check_same_frames(members, eval_set)
        parts = []
        for cell in members:
            merged, bins = _frames_of(cell, spans, heights)
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
        totals = resampled_totals(sums, resamples, seed)
        for (cell, label, frames, _), array, total in zip(parts, sums, totals, strict=True):
            rows.append(
                {
                    "run": cell.run,
                    "model": cell.model,
                    "resolution": cell.resolution,
                    "height": cell.height,
                    "crop_size": cell.crop_size,
                    "input_size": cell.input_size,
                    "seed": cell.seed,
                    "eval_set": eval_set,
                    "face_bin": label,
                    "groups": int((array[:, 0, 0] > 0).sum()),
                    **score(frames),
                }
            )
            replicates.append(metrics_of_sums(total))
    table = pd.DataFrame(rows)
    table, replicates = _add_seed_means(table, replicates)
    _intervals(table, replicates, min_groups)
    _deltas(table, replicates, _native_again(table, spans))
    table["selected"] = _selected(table)
    table = table[list(ABLATION_COLUMNS)]
    write_atomic(Path(out_csv), lambda tmp: table.to_csv(tmp, index=False))
    return table


#: The columns that name one cell of one set and bin, seeds aside.
_CELL = ["run", "model", "resolution", "height", "crop_size", "input_size", "eval_set", "face_bin"]


def _add_seed_means(
    table: pd.DataFrame, replicates: list[dict[str, np.ndarray]]
) -> tuple[pd.DataFrame, list[dict[str, np.ndarray]]]:
    """A ``mean`` row per cell, set and bin with several seeds: the mean of the seeds' scores
    and, for its interval, of their paired replicates (the same resamples)."""
    rows, extra = [], []
    for _, seeds in table.groupby(_CELL, sort=False):
        if len(seeds) < 2:
            continue
        row = seeds.iloc[0].to_dict()
        row.update({name: seeds[name].mean() for name in METRIC_NAMES})
        row.update({"seed": MEAN_SEED, "frames": int(seeds["frames"].iat[0])})
        rows.append(row)
        extra.append(
            {
                name: np.mean([replicates[index][name] for index in seeds.index], axis=0)
                for name in METRIC_NAMES
            }
        )
    if not rows:
        return table, replicates
    table = pd.concat([table.astype({"seed": object}), pd.DataFrame(rows)], ignore_index=True)
    return table, replicates + extra


def _intervals(table: pd.DataFrame, replicates: list, min_groups: int) -> None:
    """Every row's metric intervals, none below ``min_groups`` (the reason in a column)."""
    table["interval_note"] = [interval_note(int(g), min_groups) for g in table["groups"]]
    for name in METRIC_NAMES:
        bounds = [
            interval(reps[name], estimate=row[name], groups=int(row["groups"]))
            if pd.isna(row["interval_note"])
            else (np.nan, np.nan)
            for reps, (_, row) in zip(replicates, table.iterrows(), strict=True)
        ]
        table[f"{name}_lo"], table[f"{name}_hi"] = np.array(bounds).reshape(-1, 2).T


def _native_again(table: pd.DataFrame, spans: pd.DataFrame) -> np.ndarray:
    """Per row: whether its height is at or above every scored clip's own (2160 on 4K
    sources): its crops are the native cell's pixels, so it is the native cell trained again,
    not a height, and its difference from native is training noise alone."""
    tallest = float(spans.loc[spans["span"].notna(), "source_height"].max())
    lines = pd.to_numeric(table["height"].astype(str).str.removeprefix("h"), errors="coerce")
    return (lines >= tallest).to_numpy()


def _deltas(table: pd.DataFrame, replicates: list, native_again: np.ndarray) -> None:
    """Each row's paired difference in mean CCC against its native cell, and Holm over a set.

    The native cell of a row has the same run, crop size, input size, seed (or seeds, for a
    ``mean`` row), set and face bin, and height ``native``; the difference of their paired
    replicates (the same resamples of the same groups) gives the interval and p
    (:func:`affect4k.core.metrics.p_value`). Holm's correction runs per set over every non-native
    row of the summary level (the ``mean`` row of a cell with several seeds, the only seed's
    otherwise); ``delta_significant`` is its decision at :data:`ALPHA` there, empty elsewhere.
    A cell that is the native one again (``native_again``, :func:`_native_again`) keeps its
    difference but no test, and says so in ``interval_note``.
    """
    key = ["run", "crop_size", "input_size", "seed", "eval_set", "face_bin"]
    native = {
        tuple(row[k] for k in key): index
        for index, row in table[table["height"] == NATIVE].iterrows()
    }
    for column in ("delta_ccc", "delta_ccc_lo", "delta_ccc_hi", "delta_p"):
        table[column] = np.nan
    for index, row in table.iterrows():
        reference = native.get(tuple(row[k] for k in key))
        if reference is None or row["height"] == NATIVE:
            continue
        difference = replicates[index]["mean_ccc"] - replicates[reference]["mean_ccc"]
        estimate = row["mean_ccc"] - table.at[reference, "mean_ccc"]
        groups = int(row["groups"])
        table.at[index, "delta_ccc"] = estimate
        if native_again[index]:
            table.at[index, "interval_note"] = (
                "the native cell again: its height is at or above every clip's own, so its "
                "crops are the native pixels and its difference is training noise, not tested"
            )
            continue
        if not pd.isna(row["interval_note"]):
            continue
        low, high = interval(difference, estimate=estimate, groups=groups)
        table.loc[index, ["delta_ccc_lo", "delta_ccc_hi"]] = low, high
        table.at[index, "delta_p"] = p_value(difference, estimate, groups)
    several = table.groupby(_CELL)["seed"].transform(lambda s: (s == MEAN_SEED).any())
    summary = (table["seed"] == MEAN_SEED) | ~several.astype(bool)
    table["delta_p_holm"] = np.nan
    table["delta_significant"] = pd.Series(np.nan, index=table.index, dtype=object)
    for _, rows in table[summary & table["delta_p"].notna()].groupby("eval_set"):
        adjusted = holm(rows["delta_p"].to_numpy())
        table.loc[rows.index, "delta_p_holm"] = adjusted
        table.loc[rows.index, "delta_significant"] = adjusted <= ALPHA


def _selected(table: pd.DataFrame) -> np.ndarray:
    """Per row: whether its cell is its configuration's best on validation (all frames, mean
    over seeds). Only validation rows are read."""
    cell = ["run", "resolution", "input_size"]
    validation = table[
        (table["eval_set"] == VALIDATION)
        & (table["face_bin"] == "all")
        & (table["seed"].astype(str) != MEAN_SEED)
    ]
    means = validation.groupby(cell, sort=True)["mean_ccc"].mean().dropna().reset_index()
    best = means.sort_values("mean_ccc", ascending=False).drop_duplicates("run")
    chosen = set(best[cell].itertuples(index=False, name=None))
    return np.array([key in chosen for key in table[cell].itertuples(index=False, name=None)])
