"""``affect4k rehydrate``: rebuild a release's clips and crops and check them against it.

The work is :func:`affect4k.dataset.rehydrate.rehydrate`; this module parses the command line and
says what came back. Exit status 1 when a video is gone or changed, so a script notices.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from affect4k.dataset.rehydrate import HASH_TOLERANCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", type=Path, help="a release folder (results/release/NAME-VER)")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("rehydrated"),
        help="where the clips, crops and rehydrate.csv go (default: %(default)s)",
    )
    parser.add_argument(
        "--hash-tolerance",
        type=int,
        default=HASH_TOLERANCE,
        help="bits (of 64) a rebuilt crop's perceptual hash may differ by (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Rebuild, check, print the report; exit 1 when a video is gone or changed."""
    from affect4k.dataset.rehydrate import rehydrate

    report = rehydrate(args.release, args.out, hash_tolerance=args.hash_tolerance)
    print(report.to_string(index=False))
    bad = report[report["status"] != "ok"]
    if len(bad):
        print(f"{len(bad)} of {len(report)} video(s) gone or changed: {args.out / 'rehydrate.csv'}")
        return 1
    return 0
