"""Reader for Aff-Wild2's per-frame valence/arousal files, the external evaluation set.

Aff-Wild2 ships one ``valence,arousal`` CSV per video with one line per video frame: line ``k``
after the header is frame ``k - 1`` (0-based, image ``0000k.jpg``). Frames the annotators did not
label carry the marker ``-5``; they become NaN so they drop out of metrics exactly like the
masked frames of our own database.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.columns import DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.labels.traces import read_numeric_csv

#: Aff-Wild2's value for "not annotated".
UNANNOTATED = -5.0


def read_affwild2_va(path: Path) -> pd.DataFrame:
    """Columns ``frame, valence, arousal``, one row per line after the header; -5 -> NaN.

    ``-5`` is accepted as the unannotated marker (normally as a pair, also for one dimension
    alone); any other value outside [-1, 1], or a non-numeric, empty or NaN value, is refused
    naming the file and its 1-based line (header = line 1).
    """
    values = read_numeric_csv(path, DIMENSIONS)
    if len(values) == 0:
        raise Affect4kError(f"{path}: no frame lines after the header")
    unannotated = values == UNANNOTATED
    bad_rows, bad_cols = np.nonzero((np.abs(values) > 1) & ~unannotated)
    if bad_rows.size:
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raise Affect4kError(
            f"{path}, line {row + 2}: {DIMENSIONS[col]} {values[row, col]} is outside [-1, 1] "
            f"and is not the unannotated marker {UNANNOTATED:g}"
        )
    values[unannotated] = np.nan
    return pd.DataFrame(
        {"frame": np.arange(len(values)), "valence": values[:, 0], "arousal": values[:, 1]}
    )
