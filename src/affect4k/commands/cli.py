"""The ``affect4k`` command (also ``python -m affect4k``): the tools around the workflow.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``;
heavy imports (keras, the detectors) happen inside ``run`` so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from affect4k import __version__
from affect4k.core.errors import Affect4kError

#: Subcommand -> (module, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "annotate": (
        "affect4k.commands.annotation_app.command",
        "Annotate valence/arousal in the browser.",
    ),
    "predict": (
        "affect4k.commands.predict_files",
        "valence/arousal of a video, photo, folder of photos or URL with a trained run",
    ),
    "rehydrate": (
        "affect4k.commands.rehydrate_release",
        "rebuild a release's clips and crops from its manifest and check them against it",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand; a refused input prints one line and exits 1."""
    parser = argparse.ArgumentParser(
        prog="affect4k", description="Tools around the affect4k workflow."
    )
    # The package's version (CHANGELOG.md), so a bug report or a release names the code it ran.
    parser.add_argument("--version", action="version", version=f"affect4k {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, summary) in COMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        modules[name].add_arguments(commands.add_parser(name, help=summary, description=summary))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return modules[args.command].run(args)
    except Affect4kError as error:
        print(f"affect4k {args.command}: error: {error}", file=sys.stderr)
        return 1
