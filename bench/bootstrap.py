"""Time the tables' group bootstrap at the study's size; prints one JSON object.

The study's database is about 120 source videos of 2-3 minutes at 25 fps (~400k frames); its
validation and test splits hold a share of them, but the bench scores the whole size to bound
the cost from above. Reported, each the median of ``--repeats`` timings:

- ``group_sums_s``: one run's per-group sufficient statistics (one pass over the frames);
- ``bootstrap_s``: ``--resamples`` resamples of the groups for ``--runs`` runs at once (the
  same draws, paired), from those sums: the cost is resamples x groups, not frames;
- ``build_table_s``: ``affect4k.evaluation.tables.build_table`` end to end for ``--runs`` runs on
one
  set (reading the predictions parquets, point scores, intervals, choices, writing the CSV).

    PYTHONPATH=src python bench/bootstrap.py --frames 400000 --groups 120 --resamples 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.metrics import bootstrap, group_sums
from affect4k.evaluation.tables import TableEntry, build_table


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400_000)
    parser.add_argument("--groups", type=int, default=120)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7, help="runs scored on the set")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def _median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = _parse()
    rng = np.random.default_rng(0)
    groups = np.sort(rng.integers(0, args.groups, args.frames))
    labels = rng.uniform(-1, 1, (args.frames, 2))
    predicted = [labels + rng.normal(0, 0.5, labels.shape) for _ in range(args.runs)]
    sums = [group_sums(labels, p, groups, args.groups) for p in predicted]
    result = {
        "frames": args.frames,
        "groups": args.groups,
        "resamples": args.resamples,
        "runs": args.runs,
        "machine": platform.processor() or platform.machine(),
        "group_sums_s": round(
            _median_time(
                lambda: group_sums(labels, predicted[0], groups, args.groups), args.repeats
            ),
            4,
        ),
        "bootstrap_s": round(
            _median_time(lambda: bootstrap(sums, args.resamples, 0), args.repeats), 4
        ),
    }
    with tempfile.TemporaryDirectory(prefix="affect4k-bench-") as tmp:
        entries = []
        for index, values in enumerate(predicted):
            path = Path(tmp) / f"run{index}.parquet"
            pd.DataFrame(
                {
                    "video": groups.astype(str),
                    "frame": np.arange(args.frames),
                    "valence": labels[:, 0],
                    "arousal": labels[:, 1],
                    "valence_pred": values[:, 0],
                    "arousal_pred": values[:, 1],
                }
            ).to_parquet(path)
            entries.append(TableEntry(f"run{index}", "vgg16_gru", "native", "test", path))
        out = Path(tmp) / "tables.csv"
        result["build_table_s"] = round(
            _median_time(lambda: build_table(entries, out, resamples=args.resamples), args.repeats),
            3,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
