"""Compare the outputs of two workflow builds: does a change (a refactor) change any result?

    python bench/compare_builds.py BUILD_A BUILD_B

Prints JSON: whether ``results/annotations.parquet`` and every face table are equal, whether
every crop file and clip is byte-identical, which of the annotation stage's other tables (per-video
labels, lags, annotators, agreement, split) differ, and the largest absolute difference of any
number in ``results/tables.csv`` and ``results/ablation.csv``. A table that only one build has
(a build of the database alone has no ``tables.csv``) is listed, not compared. Exits 1 if the
database, crops, clips or annotation tables differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

#: The annotation stage's outputs beside the database (annotate, lags, database, split rules).
ANNOTATION_TABLES = (
    "results/annotations/*.parquet",
    "results/lags.csv",
    "results/annotators.csv",
    "results/agreement.csv",
    "results/split.csv",
    "results/split.parquet",
)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


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
    names = {path.relative_to(a) for path in files}
    for path in sorted((b / "results").glob("faces*/*")):
        if path.relative_to(b) not in names:
            differing.append(f"{path.relative_to(b)} (only in {b})")
    report["face_files"] = len(files)
    report["face_files_differing"] = differing
    clips = sorted((a / "results" / "clips").glob("*"))
    report["clip_files"] = len(clips)
    report["clip_files_differing"] = [
        str(path.relative_to(a))
        for path in clips
        if path.read_bytes() != (b / path.relative_to(a)).read_bytes()
        if (b / path.relative_to(a)).is_file()
    ] + [str(path.relative_to(a)) for path in clips if not (b / path.relative_to(a)).is_file()]
    tables = sorted(
        {
            path.relative_to(build)
            for build in (a, b)
            for pattern in ANNOTATION_TABLES
            for path in build.glob(pattern)
        }
    )
    report["annotation_tables"] = len(tables)
    report["annotation_tables_differing"] = []
    report["only_in_one_build"] = []
    for path in tables:
        if not ((a / path).is_file() and (b / path).is_file()):
            report["only_in_one_build"].append(str(path))
        elif not _read(a / path).equals(_read(b / path)):
            report["annotation_tables_differing"].append(str(path))
    for name in ("tables.csv", "ablation.csv"):
        present = [(build / "results" / name).is_file() for build in (a, b)]
        if any(present) and not all(present):
            report["only_in_one_build"].append(f"results/{name}")
        if all(present):
            x, y = pd.read_csv(a / "results" / name), pd.read_csv(b / "results" / name)
            numbers = x.select_dtypes("number").columns
            # equals, not ==: an empty cell (NaN) on both sides is the same row.
            report[f"{name}_same_rows"] = x.drop(columns=numbers).equals(y.drop(columns=numbers))
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
    differing = (
        report["face_files_differing"]
        or report["clip_files_differing"]
        or report["annotation_tables_differing"]
    )
    return 0 if report["annotations_equal"] and not differing else 1


if __name__ == "__main__":
    raise SystemExit(main())
