"""The ``tables`` stage: every number of ``results/tables.csv`` recomputed from predictions.

Predictions are stored per ``(video, frame)`` next to the labels, with NaN where no face was
found, so each score is a pure function of a predictions parquet: rows with a NaN are dropped
and all frames of the set pooled (the ABAW evaluation convention). NumPy and pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.errors import Affect4kError
from affect4k.files import read_table, write_atomic
from affect4k.layout import DIMENSIONS, PREDICTION_COLUMNS, TABLE_COLUMNS
from affect4k.metrics import va_metrics


def score(predictions: pd.DataFrame) -> dict[str, float]:
    """:func:`affect4k.metrics.va_metrics` over all rows pooled, plus the number of videos.

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
    #: Which frames of the set were scored: ``test`` (the database's test split), ``held_out``
    #: (a corpus's held-out part, when a pretraining trained on the rest) or ``all``.
    scored: str = "all"


def build_table(entries: Sequence[TableEntry], out_csv: Path) -> pd.DataFrame:
    """Recompute every row's scores from its predictions parquet and write :data:`TABLE_COLUMNS`."""
    if not entries:
        raise Affect4kError("build_table: no entries given")
    rows = []
    for entry in entries:
        predictions = read_table(entry.predictions, PREDICTION_COLUMNS, f"run {entry.run}")
        rows.append(
            {
                "run": entry.run,
                "model": entry.model,
                "resolution": entry.resolution,
                "eval_set": entry.eval_set,
                "scored": entry.scored,
                **score(predictions),
            }
        )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    write_atomic(Path(out_csv), lambda tmp: table.to_csv(tmp, index=False))
    return table
