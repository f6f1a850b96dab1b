"""The ``tables`` stage: every number of ``results/tables.csv`` recomputed from predictions.

Predictions are stored per ``(video, frame)`` next to the labels, with NaN where no face was
found, so each score is a pure function of a predictions parquet: rows with a NaN are dropped
and all frames of the set pooled (the ABAW evaluation convention). NumPy and pandas only.

Three rules make the table one a reviewer can accept (docs/design.md, "What a table number
means"). Every choice (the best configuration of a grid entry, the best ablation cell, the
report's best run) reads the *validation* rows only, never a test score (:func:`choose`).
Every CCC and MSE has a 95 % interval from a bootstrap over groups (sources or people, not
frames, since frames of one video are far from independent): Student's t with G - 1 degrees
of freedom times the inflated bootstrap standard error (:func:`affect4k.core.metrics.interval`),
whose coverage ``bench/coverage.py`` measures, and none at all (a reason in
``interval_note``) below ``evaluation.min_interval_groups``. Runs repeated with several seeds
also get their mean and standard deviation. Beside the pooled CCC, ``video_ccc`` is the mean
of per-video CCCs, which does not reward getting the differences between videos right. And a
run is never scored on frames its weights saw: those videos are excluded with their whole
groups, or, where they cannot be, the row is ``contaminated``; so are people it saw in another
set (``results/identity_overlap.csv``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.columns import DIMENSIONS, METRIC_NAMES, PREDICTION_COLUMNS, TABLE_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.core.metrics import (
    group_sums,
    interval,
    metrics_of_sums,
    ratio,
    resampled_totals,
    va_metrics,
    video_ccc_sums,
)
from affect4k.faces.persons import OVERLAP_COLUMNS, overlap_touched

#: The evaluation set every choice is made on.
VALIDATION = "validation"
#: The ``seed`` of the row that averages a configuration's seeds.
MEAN_SEED = "mean"
#: The per-video CCC's name among an entry's metrics (:func:`affect4k.core.metrics.video_ccc_sums`).
VIDEO_CCC = "video_ccc"
#: What ``evaluation.overlap`` does with rows of people a run's weights saw elsewhere.
OVERLAP_ACTIONS = ("mark", "exclude")


def score(predictions: pd.DataFrame) -> dict[str, float]:
    """:func:`affect4k.core.metrics.va_metrics` over all rows pooled, plus the number of videos.

    ``videos`` counts videos with at least one scored frame (label and prediction finite).
    """
    labels = predictions[list(DIMENSIONS)].to_numpy(np.float64)
    predicted = predictions[[f"{d}_pred" for d in DIMENSIONS]].to_numpy(np.float64)
    metrics = va_metrics(labels, predicted)
    scored = np.isfinite(labels).all(axis=1) & np.isfinite(predicted).all(axis=1)
    metrics["videos"] = int(predictions.loc[scored, "video"].nunique())
    return metrics


@dataclass(frozen=True)
class TableEntry:
    """One row of the results table: what was evaluated, and its predictions parquet."""

    run: str
    model: str
    resolution: str
    eval_set: str
    predictions: Path
    #: Which frames of the set were scored: ``validation`` or ``test`` (the database's splits),
    #: ``held_out`` (a corpus's held-out part, when a pretraining trained on the rest), ``all``,
    #: or ``unseen`` (all but the videos the run's weights declare they were trained on).
    scored: str = "all"
    #: The configuration the run repeats with one seed (the run itself when it has one seed).
    config: str | None = None
    seed: int = 0
    #: The run entry of the config (its grid is chosen among) and the configuration an
    #: ablation cell repeats (its cells are chosen among).
    entry: str | None = None
    ablation_of: str | None = None
    #: A table mapping ``video`` (and ``frame``, for a corpus of unrelated images) to the
    #: ``group`` the bootstrap resamples; None: every video is a group.
    groups: Path | None = None
    #: Videos the run's weights were trained on: never scored, nor any video of their group
    #: (``groups``), since a group is what must not straddle train and test.
    exclude: Sequence[str] = ()
    #: The weights saw an unknown part of this set, so the scores may be optimistic.
    contaminated: bool = False
    #: Whether the set is one of the database's own (validation, test) or a corpus.
    database: bool = False
    #: Corpora whose people the weights saw: corpus -> ``train`` (a pretraining's part) or
    #: ``all`` (declared whole in ``trained_on``); see
    # :func:`affect4k.faces.persons.overlap_touched`.
    seen_corpora: Mapping[str, str] = dataclasses.field(default_factory=dict)


def group_keys(predictions: pd.DataFrame, groups: pd.DataFrame | None, where: str) -> np.ndarray:
    """Each prediction row's group: from ``groups`` (by ``video``, and ``frame`` if it has
    one), else its video. A row whose video the groups table lacks is refused by name."""
    if groups is None:
        return predictions["video"].astype(str).to_numpy()
    keys = ["video", "frame"] if "frame" in groups.columns else ["video"]
    merged = predictions[keys].merge(
        groups[[*keys, "group"]].drop_duplicates(keys), on=keys, how="left", validate="m:1"
    )
    missing = merged["group"].isna()
    if missing.any():
        video = merged.loc[missing, "video"].iat[0]
        raise Affect4kError(f"{where}: video {video} has no group")
    return merged["group"].astype(str).to_numpy()


def read_groups(path: Path) -> pd.DataFrame:
    """A groups table: ``results/split.csv`` or an imported corpus's ``annotations.parquet``."""
    if Path(path).suffix == ".csv":
        try:
            table = pd.read_csv(path, dtype={"video": str, "group": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise Affect4kError(f"groups: cannot read {path} ({exc})") from None
        if not {"video", "group"} <= set(table.columns):
            raise Affect4kError(f"groups: {path} lacks a video or group column")
        return table
    return read_table(path, ("video", "frame", "group"), "groups")


@dataclass
class _Scored:
    """One entry's scores: point estimates and bootstrap replicates per metric (the pooled
    metrics and :data:`VIDEO_CCC`), and the number of groups scored."""

    entry: TableEntry
    point: dict[str, float]
    replicates: dict[str, np.ndarray]
    groups: int


def _video_ccc(
    labels: np.ndarray, predicted: np.ndarray, videos: np.ndarray, groups: np.ndarray, n: int
) -> np.ndarray:
    """The ``(n, 2)`` group rows of the per-video CCC
    (:func:`affect4k.core.metrics.video_ccc_sums`):
    each video's own sums, its CCC counted in the group it belongs to (a video whose frames
    are in several groups, as a corpus of unrelated images, counts in each; a single image
    has no CCC of its own and counts in none)."""
    names, video_codes = np.unique(videos, return_inverse=True)
    video_sums = group_sums(labels, predicted, video_codes, len(names))
    pairs = np.unique(np.stack([video_codes, groups]), axis=1)
    return video_ccc_sums(video_sums[pairs[0]], pairs[1], n)


def excluded_groups(exclude: Sequence[str], groups: pd.DataFrame | None) -> set[str]:
    """The groups of the videos a run declares it was trained on (``trained_on:
    <set>/<video>``): the whole group is unseen-only, never just the video."""
    if groups is None:
        return set(exclude)
    return set(groups.loc[groups["video"].astype(str).isin(exclude), "group"].astype(str))


def read_overlap(path: Path | None) -> pd.DataFrame:
    """``results/identity_overlap.csv`` (:data:`affect4k.faces.persons.OVERLAP_COLUMNS`); empty
    where no corpus is compared."""
    if path is None:
        return pd.DataFrame(columns=list(OVERLAP_COLUMNS))
    try:
        table = pd.read_csv(path, dtype={"videos": str, "corpus_video": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise Affect4kError(f"identity overlap: cannot read {path} ({exc})") from None
    if not set(OVERLAP_COLUMNS) <= set(table.columns):
        raise Affect4kError(f"identity overlap: {path} lacks columns of {OVERLAP_COLUMNS}")
    return table


def _score_entries(
    entries: Sequence[TableEntry],
    resamples: int,
    seed: int,
    overlap: pd.DataFrame,
    overlap_action: str,
) -> list[_Scored]:
    """Point scores and paired bootstrap replicates of every entry (per evaluation set, every
    entry sees the same resamples of the same groups), less the groups its weights declare
    and, by ``overlap_action``, the people ``overlap`` says they saw elsewhere."""
    group_tables: dict[Path, pd.DataFrame] = {}
    prepared = []
    for entry in entries:
        where = f"run {entry.run}"
        predictions = read_table(entry.predictions, PREDICTION_COLUMNS, where)
        groups = None
        if entry.groups is not None:
            if entry.groups not in group_tables:
                group_tables[entry.groups] = read_groups(entry.groups)
            groups = group_tables[entry.groups]
        keys = group_keys(predictions, groups, where)
        kept = ~pd.Series(keys).isin(excluded_groups(entry.exclude, groups)).to_numpy()
        touched = overlap_touched(
            predictions, overlap, entry.eval_set, entry.database, entry.seen_corpora
        )
        if overlap_action == "exclude" and (touched & kept).any():
            kept &= ~touched
            entry = dataclasses.replace(entry, scored="unseen")
        elif (touched & kept).any():
            entry = dataclasses.replace(entry, contaminated=True)
        prepared.append((entry, predictions[kept], keys[kept]))
    scored: list[_Scored] = []
    for eval_set in dict.fromkeys(entry.eval_set for entry in entries):
        members = [item for item in prepared if item[0].eval_set == eval_set]
        universe = sorted(set().union(*(set(keys) for _, _, keys in members)))
        sums, per_video = [], []
        for _, predictions, keys in members:
            codes = pd.Categorical(keys, categories=universe).codes
            labels = predictions[list(DIMENSIONS)].to_numpy(np.float64)
            predicted = predictions[[f"{d}_pred" for d in DIMENSIONS]].to_numpy(np.float64)
            sums.append(group_sums(labels, predicted, codes, len(universe)))
            videos = predictions["video"].astype(str).to_numpy()
            per_video.append(_video_ccc(labels, predicted, videos, codes, len(universe)))
        totals = resampled_totals(sums + per_video, resamples, seed) if universe else []
        for index, (entry, predictions, _) in enumerate(members):
            point = score(predictions)
            point[VIDEO_CCC] = float(ratio(per_video[index].sum(axis=0)))
            reps: dict[str, np.ndarray] = {}
            if totals:
                reps = dict(metrics_of_sums(totals[index]))
                reps[VIDEO_CCC] = ratio(totals[len(members) + index])
            groups_scored = int((sums[index][:, 0, 0] > 0).sum())
            scored.append(_Scored(entry, point, reps, groups_scored))
    return scored


def choose(validation: pd.DataFrame) -> dict[str, list[str]]:
    """What each configuration is selected for, from its validation mean CCC alone.

    ``validation`` has one row per configuration (``config``, ``entry``, ``ablation_of``,
    ``mean_ccc``: over seeds where there are several). ``best``: the highest of all; ``sweep:
    <entry>``: the highest of a grid entry's configurations (ablation cells aside), where the
    entry has several; ``ablation:<config>``: the highest of a configuration and its ablation
    cells. A configuration without a validation score is never chosen. Test rows are not an
    input: no choice can read them.
    """
    rows = validation[np.isfinite(validation["mean_ccc"].astype(float))]
    chosen: dict[str, list[str]] = {}

    def pick(candidates: pd.DataFrame, label: str) -> None:
        if len(candidates):
            winner = candidates.sort_values(["mean_ccc", "config"], ascending=[False, True])
            chosen.setdefault(str(winner["config"].iat[0]), []).append(label)

    pick(rows, "best")
    plain = rows[rows["ablation_of"].isna()]
    for entry, configs in plain.groupby("entry", sort=True):
        if validation.loc[validation["ablation_of"].isna(), "entry"].eq(entry).sum() > 1:
            pick(configs, f"sweep:{entry}")
    for base in sorted(rows["ablation_of"].dropna().unique()):
        pick(rows[(rows["config"] == base) | (rows["ablation_of"] == base)], f"ablation:{base}")
    return chosen


def interval_note(groups: int, min_groups: int) -> str | None:
    """Why a row scored on ``groups`` groups has no interval (None if it has one)."""
    if groups >= min_groups:
        return None
    return f"no interval: {groups} group(s) < evaluation.min_interval_groups {min_groups}"


def _intervals(
    row: dict[str, object],
    point: Mapping[str, float],
    replicates: Mapping[str, np.ndarray],
    groups: int,
    min_groups: int,
) -> None:
    """Fill ``row``'s point values and intervals of every metric (none below ``min_groups``,
    the reason in ``interval_note``)."""
    note = interval_note(groups, min_groups)
    row["interval_note"] = note
    for name in (*METRIC_NAMES, VIDEO_CCC):
        low, high = np.nan, np.nan
        if note is None and name in replicates:
            low, high = interval(replicates[name], estimate=point[name], groups=groups)
        row.update({name: point[name], f"{name}_lo": low, f"{name}_hi": high})


def _row(item: _Scored, min_groups: int, **extra: object) -> dict[str, object]:
    entry = item.entry
    row: dict[str, object] = {
        "run": entry.run,
        "config": entry.config or entry.run,
        "seed": entry.seed,
        "model": entry.model,
        "resolution": entry.resolution,
        "eval_set": entry.eval_set,
        "scored": entry.scored,
        "contaminated": entry.contaminated,
        "frames": item.point["frames"],
        "videos": item.point["videos"],
        "groups": item.groups,
        **extra,
    }
    _intervals(row, item.point, item.replicates, item.groups, min_groups)
    for name in (*METRIC_NAMES, VIDEO_CCC):
        row[f"{name}_sd"] = np.nan
    return row


def _mean_row(items: list[_Scored], min_groups: int) -> dict[str, object]:
    """The row of a configuration's seeds: mean and sd (ddof 1) of their scores, and the
    interval of the mean over seeds of their paired bootstrap replicates (frames, videos and
    groups are the first seed's: the seeds are scored on the same frames)."""
    row = _row(items[0], min_groups)
    row.update({"run": row["config"], "seed": MEAN_SEED})
    names = (*METRIC_NAMES, VIDEO_CCC)
    point = {name: float(np.mean([item.point[name] for item in items])) for name in names}
    replicates = {
        name: np.mean([item.replicates[name] for item in items], axis=0)
        for name in names
        if items[0].replicates
    }
    _intervals(row, point, replicates, items[0].groups, min_groups)
    for name in names:
        row[f"{name}_sd"] = np.std([item.point[name] for item in items], ddof=1)
    return row


def build_table(
    entries: Sequence[TableEntry],
    out_csv: Path,
    *,
    resamples: int,
    seed: int = 0,
    min_groups: int = 3,
    overlap: Path | None = None,
    overlap_action: str = "mark",
) -> pd.DataFrame:
    """Recompute every row's scores and intervals from its predictions and write
    :data:`TABLE_COLUMNS`: a row per (run, evaluation set), and a ``mean`` row per
    (configuration with several seeds, evaluation set).

    ``selected_for`` names what a configuration was chosen for (:func:`choose`, on validation
    rows only; its rows on every set carry it) and ``tied_with_best`` whether its validation
    mean CCC is not significantly below the best's: the 95 % interval of the paired bootstrap
    difference (best minus it, means over seeds), never an overlap of two intervals, reaches
    0; empty where validation has fewer than ``min_groups`` groups, which give no interval.

    ``overlap`` (``results/identity_overlap.csv``) names people of the database found in a
    corpus: a row scoring such a person whom its weights saw in the other set is marked
    ``contaminated`` (``overlap_action="mark"``) or scored without that person's frames
    (``"exclude"``, ``scored: unseen``), as ``trained_on`` does for declared sets and videos.
    """
    if not entries:
        raise Affect4kError("build_table: no entries given")
    if overlap_action not in OVERLAP_ACTIONS:
        raise Affect4kError(
            f"evaluation.overlap: unknown value {overlap_action!r}, expected one of "
            f"{', '.join(OVERLAP_ACTIONS)}"
        )
    scored = _score_entries(entries, resamples, seed, read_overlap(overlap), overlap_action)
    by_config: dict[tuple[str, str], list[_Scored]] = {}
    for item in scored:
        key = (item.entry.config or item.entry.run, item.entry.eval_set)
        by_config.setdefault(key, []).append(item)
    replicates: dict[str, np.ndarray] = {}
    points: dict[str, float] = {}
    validation_groups = min_groups
    validation_rows = []
    for (config, eval_set), items in by_config.items():
        if eval_set != VALIDATION:
            continue
        first = items[0].entry
        validation_rows.append(
            {
                "config": config,
                "entry": first.entry or config,
                "ablation_of": first.ablation_of,
                "mean_ccc": np.mean([item.point["mean_ccc"] for item in items]),
            }
        )
        points[config] = float(np.mean([item.point["mean_ccc"] for item in items]))
        validation_groups = min(validation_groups, items[0].groups)
        if items[0].replicates:
            replicates[config] = np.mean([item.replicates["mean_ccc"] for item in items], axis=0)
    validation = pd.DataFrame(
        validation_rows, columns=["config", "entry", "ablation_of", "mean_ccc"]
    )
    chosen = choose(validation)
    tied: Mapping[str, bool | None] = {}
    if validation_groups >= min_groups:
        tied = _tied_with_best(chosen, replicates, points, validation_groups)
    rows = []
    for (config, _), items in by_config.items():
        extra = {
            "selected_for": ";".join(chosen.get(config, [])),
            "tied_with_best": tied.get(config),
        }
        rows += [_row(item, min_groups, **extra) for item in items]
        if len(items) > 1:
            rows.append({**_mean_row(items, min_groups), **extra})
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    write_atomic(Path(out_csv), lambda tmp: table.to_csv(tmp, index=False))
    return table


def _tied_with_best(
    chosen: Mapping[str, list[str]],
    replicates: Mapping[str, np.ndarray],
    points: Mapping[str, float],
    groups: int,
) -> dict[str, bool]:
    """Per configuration: whether the 95 % interval of the paired difference (best - it) in
    validation mean CCC reaches 0, i.e. it is not significantly worse than the best."""
    best = next((config for config, labels in chosen.items() if "best" in labels), None)
    if best is None or best not in replicates:
        return {}
    tied = {}
    for config, values in replicates.items():
        low, _ = interval(
            replicates[best] - values, estimate=points[best] - points[config], groups=groups
        )
        tied[config] = config == best or bool(low <= 0)
    return tied
