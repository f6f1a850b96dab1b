"""``affect4k annotate``: serve the annotation app of one annotator over a config's videos."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotator", required=True, help="your name, one of the config's")
    parser.add_argument(
        "--configfile",
        type=Path,
        default=Path("config/config.yaml"),
        help="the workflow config naming videos, annotations and annotators (read alone)",
    )
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; only this machine by default (0.0.0.0 = every address)",
    )
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=Path("Snakefile"),
        help="the workflow that builds the web copies; run from its working directory",
    )
    parser.add_argument("--cores", type=int, default=1, help="cores for building a web copy")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl+C); paths in the config are relative to the current dir."""
    from affect4k.annotate_app.server import AnnotationApp, AppServer
    from affect4k.errors import Affect4kError

    if not args.snakefile.is_file():
        raise Affect4kError(f"{args.snakefile}: no Snakefile here; run from the workflow's folder")
    app = AnnotationApp.from_config(
        args.annotator,
        args.configfile,
        workdir=Path.cwd(),
        snakefile=args.snakefile,
        cores=args.cores,
    )
    try:
        server = AppServer(app, args.host, args.port)
    except OSError as error:
        raise Affect4kError(f"cannot listen on {args.host}:{args.port} ({error})") from None
    log.info("annotating as %s: open %s (Ctrl+C stops)", args.annotator, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
