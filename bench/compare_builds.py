"""Compare the outputs of two workflow builds: does a change (a refactor) change any result?

    python bench/compare_builds.py BUILD_A BUILD_B

Prints JSON: whether ``results/annotations.parquet`` and every face table are equal, whether
every crop file is byte-identical, and the largest absolute difference of any number in
``results/tables.csv`` and ``results/ablation.csv``. Exits 1 if the database or crops differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def compare(a: Path, b: Path) -> dict:
    report: dict = {}
    database = "results/annotations.parquet"
    report["annotations_equal"] = pd.read_parquet(a / database).equals(
        pd.read_parquet(b / database)
    )
    differing = []
    files = sorted((a / "results").glob("faces*/*"))
    for path in files:
        other = b / path.relative_to(a)
        if path.suffix == ".npy":
            same = other.is_file() and path.read_bytes() == other.read_bytes()
        else:
            same = other.is_file() and pd.read_parquet(path).equals(pd.read_parquet(other))
        if not same:
            differing.append(str(path.relative_to(a)))
    report["face_files"] = len(files)
    report["face_files_differing"] = differing
    for name in ("tables.csv", "ablation.csv"):
        if (a / "results" / name).is_file() and (b / "results" / name).is_file():
            x, y = pd.read_csv(a / "results" / name), pd.read_csv(b / "results" / name)
            numbers = x.select_dtypes("number").columns
            report[f"{name}_same_rows"] = bool(
                (x.drop(columns=numbers) == y.drop(columns=numbers)).all().all()
            )
            report[f"{name}_max_abs_difference"] = float(
                (x[numbers] - y[numbers]).abs().max().max()
            )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    report = compare(args.a, args.b)
    print(json.dumps(report, indent=2))
    return 0 if report["annotations_equal"] and not report["face_files_differing"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
