"""The ``database`` stage: every video's labels in one table with their agreement.

It pools the videos (the frame-index contract's ``(video, frame)`` rows) and reports the
inter-annotator agreement, for any number of videos: a one-video pilot builds its database. The
train/validation/test sides are the ``split`` stage's (:mod:`affect4k.labels.split`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table, write_atomic
from affect4k.core.metrics import ccc, pearson
from affect4k.labels.annotate import RAW_PREFIX
from affect4k.labels.fusion import (
    agreement_with_others,
    ewe_weights,
    fuse,
    krippendorff_alpha,
    screen_annotators,
)
from affect4k.labels.traces import check_annotators

log = logging.getLogger(__name__)


def agreement_table(
    table: pd.DataFrame, annotators: Sequence[str], prefix: str = ""
) -> pd.DataFrame:
    """Pearson r, CCC and Krippendorff's alpha (interval) of each unordered annotator pair per
    dimension, over frames both define; ``prefix`` picks other trace columns (``raw.``: before
    lag compensation).

    Frames are pooled across videos, as in the study's 4x4 table (0.60-0.88, mean 0.74).
    """
    rows = []
    for dim in DIMENSIONS:
        for a, b in itertools.combinations(annotators, 2):
            pair = table[[f"{prefix}{dim}_{a}", f"{prefix}{dim}_{b}"]].to_numpy(np.float64).T
            x, y = pair
            both = int((np.isfinite(x) & np.isfinite(y)).sum())
            rows.append((dim, a, b, pearson(x, y), ccc(x, y), krippendorff_alpha(pair), both))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS[1:]))


AGREEMENT_COLUMNS = (
    "stage",
    "dimension",
    "annotator_a",
    "annotator_b",
    "pearson_r",
    "ccc",
    "alpha",
    "frames",
)


ANNOTATOR_COLUMNS = (
    "annotator",
    "dimension",
    "lag_s",
    "weight",
    "pearson_r_raw",
    "ccc_raw",
    "pearson_r",
    "ccc",
    "ccc_label",
    "frames",
    "calibration_lag_s",
    "calibration_ccc",
)


#: The annotator names of agreement.csv's rows about every annotator at once.
EVERYONE = "*"


#: Decimals of the numbers in agreement.csv and annotators.csv: what a reader compares (a lag to
#: the millisecond, a weight or correlation to 1e-4), not 0.44000000000000006.
CSV_DECIMALS = 4


def _stacks(
    database: pd.DataFrame, annotators: Sequence[str], columns: str
) -> dict[str, np.ndarray]:
    """Per video, the ``(annotators, frames)`` array of the columns named ``columns.format(a)``."""
    names = [columns.format(name) for name in annotators]
    return {
        str(video): rows[names].to_numpy(np.float64).T
        for video, rows in database.groupby("video", sort=True)
    }


def _ewe(stacks: Sequence[np.ndarray], kept: np.ndarray, where: str) -> np.ndarray:
    """EWE weights of the ``kept`` annotators (0 for the others), from their stacks alone."""
    weights = np.zeros(len(kept))
    try:
        weights[kept] = ewe_weights(agreement_with_others([s[kept] for s in stacks])[0])
    except Affect4kError as error:
        raise Affect4kError(f"annotation.fusion ({where}): {error}") from None
    return weights


def fuse_labels(
    database: pd.DataFrame,
    annotators: Sequence[str],
    lags: pd.DataFrame,
    fusion: str = "mean",
    per_video: bool = False,
    *,
    min_r: float = 0.2,
    keep_unreliable: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fuse the annotators into the labels, and say how reliable they and the labels are.

    ``database`` holds each annotator's lag-compensated trace (``valence_a1``), the same before
    compensation (``raw.valence_a1``) and the annotate stage's mean label, NaN where too few
    annotators cover a frame; ``fusion`` replaces the mean there
    (:func:`affect4k.labels.fusion.fuse`;
    EWE weights pooled over videos or, with ``per_video``, per video). ``lags`` is the applied
    lag per ``(video, annotator, dimension)`` (:func:`affect4k.labels.annotate.lag_table`).

    Before fusing, :func:`affect4k.labels.fusion.screen_annotators` judges the compensated traces as
    they are: a trace that never moves on a video is left out of that video's label, and an
    annotator whose r with the others' mean is at or below 0 or below ``min_r`` is named in a
    warning and left out of every video's label (all fusions) unless ``keep_unreliable``; the
    label is then refused only if nobody is left.

    Returns the labels (``valence``, ``arousal``) and the annotators table
    (``ANNOTATOR_COLUMNS`` but the calibration's, which :func:`build_database` adds): lag and
    weight (means over videos where they differ per video; 0 for one left out; no weight for
    the median), Pearson r and CCC with the others' mean before (``_raw``) and after lag
    compensation, CCC with the fused label, and the frames compared.
    """
    labels = database[list(DIMENSIONS)].copy()
    rows = []
    for dim in DIMENSIONS:
        aligned = _stacks(database, annotators, f"{dim}_{{}}")
        raw = _stacks(database, annotators, f"{RAW_PREFIX}{dim}_{{}}")
        videos = list(aligned)
        screen = screen_annotators(list(aligned.values()), 0, min_r)
        pooled_kept = screen.kept(keep_unreliable)
        left_out = [
            *screen.named("constant", annotators),
            *([] if keep_unreliable else screen.named("unreliable", annotators)),
        ]
        if left_out:
            log.warning(
                f"{dim}: {', '.join(left_out)} never moved the bar, or correlate at or below 0 "
                f"or below annotation.min_annotator_r {min_r:g} with the others' mean: left "
                "out of the fused labels"
            )
        if not pooled_kept.any():
            raise Affect4kError(
                f"{dim}: no annotator is left to fuse (each never moved the bar or disagrees "
                "with the others); set annotation.keep_unreliable or check the traces"
            )
        kept = {
            video: pooled_kept & ~flat for video, flat in zip(videos, screen.constant, strict=True)
        }
        for video in videos:
            if not kept[video].any():
                log.warning(f"video {video}: {dim}: no annotator is left to fuse, no label")
        if fusion == "ewe" and not per_video:
            pooled = _ewe(list(aligned.values()), pooled_kept, f"{dim}, all videos")
            weights = {video: pooled for video in videos}
        elif fusion == "ewe":
            weights = {
                video: _ewe([aligned[video]], kept[video], f"{dim}, video {video}")
                if kept[video].any()
                else np.zeros(len(annotators))
                for video in videos
            }
        elif fusion == "mean":
            weights = {video: kept[video] / max(kept[video].sum(), 1) for video in videos}
        else:
            weights = {video: np.full(len(annotators), np.nan) for video in videos}
        everyone = all(kept[video].all() for video in videos)
        if fusion != "mean" or not everyone:
            fused = np.concatenate(
                [
                    fuse(
                        np.where(kept[video][:, None], aligned[video], np.nan),
                        fusion,
                        weights[video],
                    )
                    for video in videos
                ]
            )
            labels[dim] = np.where(np.isfinite(labels[dim].to_numpy()), fused, np.nan)
        label = _stacks(labels.assign(video=database["video"]), [dim], "{}")
        r_raw, ccc_raw, _ = agreement_with_others(list(raw.values()))
        r, agreement, frames = agreement_with_others(list(aligned.values()))
        mean_weight = np.mean(list(weights.values()), axis=0)
        for index, name in enumerate(annotators):
            own = np.concatenate([aligned[video][index] for video in videos])
            with_label = ccc(own, np.concatenate([label[video][0] for video in videos]))
            lag = lags.loc[(lags["annotator"] == name) & (lags["dimension"] == dim), "lag_s"]
            rows.append(
                (
                    name,
                    dim,
                    float(lag.mean()) if len(lag) else 0.0,
                    float(mean_weight[index]),
                    r_raw[index],
                    ccc_raw[index],
                    r[index],
                    agreement[index],
                    with_label,
                    int(frames[index]),
                )
            )
    return labels, pd.DataFrame(rows, columns=list(ANNOTATOR_COLUMNS[:-2]))


def reliability_table(database: pd.DataFrame, annotators: Sequence[str]) -> pd.DataFrame:
    """agreement.csv: per stage (``raw``: before lag compensation, ``aligned``: after) every
    pair of annotators (:func:`agreement_table`) and a row for all of them (annotators
    :data:`EVERYONE`): mean pairwise r and CCC, Krippendorff's alpha of all annotators at once,
    and the frames at least two of them cover."""
    parts = []
    for stage, prefix in (("raw", RAW_PREFIX), ("aligned", "")):
        pairs = agreement_table(database, annotators, prefix)
        for dim in DIMENSIONS:
            stack = database[[f"{prefix}{dim}_{a}" for a in annotators]].to_numpy(np.float64).T
            mine = pairs[pairs["dimension"] == dim]
            everyone = pd.DataFrame(
                [
                    (
                        dim,
                        EVERYONE,
                        EVERYONE,
                        mine["pearson_r"].mean(),
                        mine["ccc"].mean(),
                        krippendorff_alpha(stack),
                        int((np.isfinite(stack).sum(axis=0) >= 2).sum()),
                    )
                ],
                columns=list(AGREEMENT_COLUMNS[1:]),
            )
            parts.append(pd.concat([mine, everyone]).assign(stage=stage))
    return pd.concat(parts, ignore_index=True)[list(AGREEMENT_COLUMNS)]


def build_database(
    video_parquets: Sequence[Path],
    annotators: Sequence[str],
    out_parquet: Path,
    out_agreement: Path,
    *,
    fusion: str,
    per_video: bool,
    lags: pd.DataFrame | None = None,
    out_annotators: Path | None = None,
    calibration: pd.DataFrame | None = None,
    min_r: float = 0.2,
    keep_unreliable: bool = False,
) -> None:
    """Pool the per-video label tables into the database and write its agreement table.

    The labels are fused by ``fusion`` (``per_video`` EWE weights; ``lags`` the applied lags,
    none by default; ``min_r`` and ``keep_unreliable`` who is left out) as :func:`fuse_labels`
    says, which also gives ``out_annotators``
    (``annotators.csv``), with each annotator's lag and CCC on the calibration clip from
    ``calibration`` (:func:`affect4k.labels.calibration.calibration_table`; NaN where they have not
    traced it); the agreement table is :func:`reliability_table`'s.

    The database keeps every frame (NaN labels included, so ``(video, frame)`` stays the row
    key of the frame-index contract) sorted by video then frame. It has no split: that is
    :func:`build_split`'s, so a database of one video builds. The per-annotator columns are
    kept: they let a user re-average with another rule or recompute agreement without rerunning
    the annotation stage.
    """
    check_annotators(annotators)
    required = ("video", "frame", "time_s", "face", *DIMENSIONS)
    required += tuple(
        f"{prefix}{dim}_{name}"
        for prefix in ("", RAW_PREFIX)
        for dim in DIMENSIONS
        for name in annotators
    )
    tables = [read_table(path, required, "database input") for path in video_parquets]
    if not tables:
        raise Affect4kError("build_database: no per-video tables given")
    seen: dict[str, Path] = {}
    for path, table in zip(video_parquets, tables, strict=True):
        for video in table["video"].unique():
            if video in seen:
                raise Affect4kError(f"video {video} appears in both {seen[video]} and {path}")
            seen[video] = path
    database = pd.concat(tables, ignore_index=True).sort_values(["video", "frame"])
    database = database.reset_index(drop=True)
    if lags is None:
        lags = pd.DataFrame(columns=["video", "annotator", "dimension", "lag_s"])
    labels, annotator_table = fuse_labels(
        database,
        annotators,
        lags,
        fusion,
        per_video,
        min_r=min_r,
        keep_unreliable=keep_unreliable,
    )
    measured = (
        calibration.set_index(["annotator", "dimension"])
        if calibration is not None
        else pd.DataFrame(columns=["lag_s", "ccc"])
    )
    keys = pd.MultiIndex.from_frame(annotator_table[["annotator", "dimension"]])
    annotator_table["calibration_lag_s"] = measured["lag_s"].reindex(keys).to_numpy(np.float64)
    annotator_table["calibration_ccc"] = measured["ccc"].reindex(keys).to_numpy(np.float64)
    agreement = reliability_table(database, annotators)
    database[list(DIMENSIONS)] = labels
    database = database.drop(columns=[c for c in database if c.startswith(RAW_PREFIX)])
    for row in agreement[agreement["annotator_a"] == EVERYONE].itertuples():
        log.info(
            f"{row.stage} {row.dimension} agreement: r = {row.pearson_r:.3f} (mean of "
            f"pairs), CCC = {row.ccc:.3f}, Krippendorff's alpha = {row.alpha:.3f}"
        )
    write_atomic(out_parquet, lambda tmp: database.to_parquet(tmp, index=False))
    write_atomic(out_agreement, lambda tmp: agreement.round(CSV_DECIMALS).to_csv(tmp, index=False))
    if out_annotators is not None:
        rounded = annotator_table.round(CSV_DECIMALS)
        write_atomic(out_annotators, lambda tmp: rounded.to_csv(tmp, index=False))
