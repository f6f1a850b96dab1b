"""What each figure rule of the Snakemake report makes from the workflow's outputs.

Every function reads finished outputs (tables, histories, face tables, predictions), refuses a
malformed one by name, and writes its figure or table page atomically through
:mod:`affect4k.report.plots`, so ``snakemake --report`` embeds files that are complete. The column
lists of the training and evaluation modules are imported where needed: those modules load
Keras, which the per-video figures should not wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.core.columns import (
    ABLATION_COLUMNS,
    DIMENSIONS,
    HISTORY_COLUMNS,
    PREDICTION_COLUMNS,
    TABLE_COLUMNS,
)
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table
from affect4k.evaluation.tables import MEAN_SEED
from affect4k.report import plots
from affect4k.report.table_page import sortable_table


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """The CSV at ``path``, refused naming ``what`` if missing, unreadable or lacking a column."""
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise Affect4kError(f"{what}: cannot read {path} ({exc})") from None
    missing = [name for name in columns if name not in table.columns]
    if missing:
        raise Affect4kError(f"{what}: {path} lacks column(s) {', '.join(missing)}")
    return table


def _read_results(tables_csv: Path) -> pd.DataFrame:
    return _read_csv(tables_csv, TABLE_COLUMNS, "results table")


def draw_results_page(tables_csv: Path, out_html: Path, out_png: Path) -> None:
    """The results table as a sortable page, and its mean CCCs with their intervals as a figure.

    Validation first (where every choice is made), then test, then the corpora; within each
    set, rows in the order of their *validation* mean CCC (:func:`validation_order`), never
    their own, so the test rows' order is no choice made on test. Rows of configurations not
    significantly worse than the best on validation (``tied_with_best``) are shaded; rows
    without an interval and contaminated rows are listed in notes above the table.
    """
    table = validation_order(_read_results(tables_csv))
    notes = [
        "Every choice (selected_for: best run, grid cell, ablation cell) was made on the "
        "validation rows; test is scored once and never chosen on, and its rows are listed in "
        "the order of their validation mean CCC. [lo, hi] is the 95 % interval over groups "
        "(sources or people, not frames): estimate +/- Student's t (groups - 1 df) times the "
        "group-bootstrap standard error, whose coverage bench/coverage.py measured at 92 % or "
        "more. mean_ccc pools every frame; video_ccc is the mean of per-video CCCs, which does "
        "not reward getting the differences between videos' means right. Seed 'mean' rows "
        "give the mean and sd over a configuration's seeds. Shaded: not significantly worse "
        "than the best on validation (paired difference interval)."
    ]
    without = table[table["interval_note"].notna()]
    if len(without):
        notes.append(
            f"{len(without)} row(s) have no interval: "
            + "; ".join(
                sorted(set(without["eval_set"] + ": " + without["interval_note"].astype(str)))
            )
        )
    contaminated = table[table["contaminated"].astype(bool)]
    if len(contaminated):
        pairs = sorted(set(zip(contaminated["run"], contaminated["eval_set"], strict=True)))
        notes.append(
            "Contaminated (the weights saw an unknown part of the set, so these scores may be "
            "optimistic): " + ", ".join(f"{run} on {eval_set}" for run, eval_set in pairs)
        )
    sortable_table(
        [("CCC and MSE per run and evaluation set", table)],
        out_html,
        notes=notes,
        shade="tied_with_best",
    )
    plots.results_figure(table, out_png)


def validation_order(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` sorted by set (:func:`_set_order`), then by each row's validation mean CCC:
    the validation row of the same run (a seed ``mean`` row: of its configuration's mean),
    best first; rows without one after, by run."""
    seed = table["seed"].astype(str)
    validation = table[table["eval_set"] == "validation"]
    score = dict(
        zip(
            zip(validation["run"], validation["seed"].astype(str), strict=True),
            validation["mean_ccc"],
            strict=True,
        )
    )
    rank = [-score.get(key, np.nan) for key in zip(table["run"], seed, strict=True)]
    ordered = table.assign(_rank=rank).sort_values(
        ["eval_set", "_rank", "run"], key=_set_order, na_position="last"
    )
    return ordered.drop(columns="_rank")


def _set_order(column: pd.Series) -> pd.Series:
    """Sort key: validation, then test, then the external corpora by name."""
    if column.name != "eval_set":
        return column
    order = {"validation": "0", "test": "1"}
    return column.map(lambda value: order.get(value, f"2{value}"))


def draw_ablation(ablation_csv: Path, out_png: Path) -> None:
    """Test mean CCC of every ablation cell against the source height, with its interval and
    seeds, over all frames and per face bin (:func:`plots.ablation_figure`)."""
    plots.ablation_figure(_read_csv(ablation_csv, ABLATION_COLUMNS, "ablation table"), out_png)


def draw_training_curves(history_csv: Path, out_png: Path, run: str) -> None:
    """Training curves of one run."""
    history = _read_csv(history_csv, HISTORY_COLUMNS, f"run {run}")
    if history.empty:
        raise Affect4kError(f"run {run}: {history_csv} has no epoch")
    plots.training_curves(history, out_png, run)


def database_summary(annotations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per video (frames, seconds, frames with a face, labelled frames, split) and per split.

    A video cut into several splits (``database.split: sequence``) is listed under each of its
    splits joined by ``+``; the per-split totals count its frames where they belong.
    """
    labelled = annotations[list(DIMENSIONS)].notna().all(axis=1)
    frames = annotations.assign(labelled=labelled)
    per_video = frames.groupby("video", sort=True).agg(
        frames=("frame", "size"),
        face_frames=("face", "sum"),
        labelled_frames=("labelled", "sum"),
        split=("split", lambda splits: "+".join(sorted(set(splits)))),
    )
    per_video.insert(1, "seconds", per_video["frames"] / CLIP_FPS)
    per_split = frames.groupby("split", sort=True).agg(
        videos=("video", "nunique"),
        frames=("frame", "size"),
        face_frames=("face", "sum"),
        labelled_frames=("labelled", "sum"),
    )
    per_split.insert(2, "hours", per_split["frames"] / CLIP_FPS / 3600)
    total = pd.DataFrame(
        {
            "videos": [annotations["video"].nunique()],
            "frames": [len(frames)],
            "hours": [len(frames) / CLIP_FPS / 3600],
            "face_frames": [int(frames["face"].sum())],
            "labelled_frames": [int(labelled.sum())],
        },
        index=pd.Index(["all"], name="split"),
    )
    return per_video.reset_index(), pd.concat([per_split, total]).reset_index()


def draw_database(
    annotations_parquet: Path,
    agreement_csv: Path,
    out_html: Path,
    out_overview: Path,
    out_agreement: Path,
) -> None:
    """The database's size table, its frames-per-video figure and the agreement heatmaps."""
    annotations = read_table(
        annotations_parquet, ("video", "frame", "valence", "arousal", "face", "split"), "database"
    )
    per_video, per_split = database_summary(annotations)
    sortable_table([("Splits", per_split), ("Videos", per_video)], out_html)
    plots.database_overview(per_video, out_overview)
    agreement = _read_csv(
        agreement_csv,
        ("stage", "dimension", "annotator_a", "annotator_b", "pearson_r"),
        "agreement",
    )
    pairs = agreement[(agreement["stage"] == "aligned") & (agreement["annotator_a"] != "*")]
    plots.agreement_heatmaps(pairs, out_agreement)


def draw_annotator_reliability(annotators_csv: Path, agreement_csv: Path, out_png: Path) -> None:
    """Each annotator's lag, weight and agreement, and the agreement before and after."""
    from affect4k.labels.database import AGREEMENT_COLUMNS, ANNOTATOR_COLUMNS

    plots.annotator_reliability(
        _read_csv(annotators_csv, ANNOTATOR_COLUMNS, "annotators table"),
        _read_csv(agreement_csv, AGREEMENT_COLUMNS, "agreement"),
        out_png,
    )


def draw_quality_control(
    faces_parquet: Path, crops_npy: Path, identities_parquet: Path, out_png: Path, video: str
) -> None:
    """One video's identities, its subject's presence over time and a contact sheet of crops."""
    faces = read_table(faces_parquet, ("frame", "face", "faces", "verification"), f"video {video}")
    columns = ("identity", "frames", "seconds", "subject", "thumbnail")
    identities = read_table(identities_parquet, columns, f"video {video}")
    try:
        crops = np.load(crops_npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise Affect4kError(f"video {video}: cannot read {crops_npy} ({exc})") from None
    plots.face_quality(faces, crops, identities, out_png, video)


def best_run(tables_csv: Path) -> str:
    """The run whose configuration was chosen ``best`` on validation (its first seed's run).

    Read from ``selected_for``, which :func:`affect4k.evaluation.tables.choose` fills from
    validation rows alone: no test score decides which run the report shows.
    """
    table = _read_results(tables_csv)
    labels = table["selected_for"].astype("string").fillna("").str.split(";")
    chosen = labels.map(lambda selected: "best" in selected).astype(bool)
    runs = table[chosen & (table["seed"].astype(str) != MEAN_SEED)]
    if runs.empty:
        raise Affect4kError(f"{tables_csv}: no configuration was chosen best on validation")
    return str(runs["run"].iat[0])


def draw_best_predictions(tables_csv: Path, predictions: Mapping[str, Path], out_png: Path) -> None:
    """Labels against predictions over time on the test videos of the best run."""
    run = best_run(tables_csv)
    if run not in predictions:
        raise Affect4kError(f"{tables_csv}: best run {run} has no test predictions given")
    table = read_table(predictions[run], PREDICTION_COLUMNS, f"run {run}")
    plots.predictions_over_time(table, out_png, run)
