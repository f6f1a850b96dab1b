"""``affect4k annotate``: serve the annotation app of one annotator over a config's videos.

Run it from the folder the config's paths are relative to: the workflow's own folder for the
demo, or a study folder of your own. The web copies are built by the workflow the package was
installed from (an editable install of a clone), so a study folder needs no ``--snakefile``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import affect4k
from affect4k.core.errors import Affect4kError

log = logging.getLogger(__name__)

#: The config the workflow reads when none is given (the demo's).
DEFAULT_CONFIG = Path("config/config.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotator", required=True, help="your name, one of the config's")
    parser.add_argument(
        "--configfile",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the workflow config naming videos, annotations and annotators (read alone); "
        "its paths are relative to the current folder (default: %(default)s, the demo's)",
    )
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; only this machine by default (0.0.0.0 or :: = every "
        "IPv4 or IPv6 address, then name the host names others reach it by with --allow-host; "
        "::1 = this machine over IPv6)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or address others type in their browser to reach this machine, "
        "without the port (repeatable; an IPv6 address with or without brackets); any other "
        "Host header is refused",
    )
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=None,
        help="the workflow that builds the web copies (default: ./Snakefile, else the one of "
        "the clone the package was installed from)",
    )
    parser.add_argument("--cores", type=int, default=1, help="cores for building a web copy")


def installed_snakefile() -> Path | None:
    """The Snakefile of the clone this package was installed from (editable install), if any.

    Only a Snakefile beside the ``src/affect4k`` that is this package counts: a wheel installed
    in site-packages has no workflow of its own, whatever lies two folders up.
    """
    package = Path(affect4k.__file__).resolve().parent
    clone = package.parents[1]
    candidate = clone / "Snakefile"
    is_clone = package == clone / "src" / "affect4k"
    return candidate if is_clone and candidate.is_file() else None


def find_snakefile(given: Path | None) -> Path:
    """``--snakefile`` if given, else ``./Snakefile``, else the installed clone's Snakefile."""
    if given is not None:
        if not given.is_file():
            raise Affect4kError(f"--snakefile {given}: no such file")
        return given
    for candidate in (Path("Snakefile"), installed_snakefile()):
        if candidate is not None and candidate.is_file():
            return candidate
    raise Affect4kError(
        "no Snakefile here and the package was not installed from a clone of the workflow "
        "(a pip or pipx install ships no workflow): give --snakefile ~/affect4k/Snakefile "
        "(a clone's, or a study folder's made by snakedeploy)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl+C); paths in the config are relative to the current dir."""
    from affect4k.commands.annotation_app.app import AnnotationApp
    from affect4k.commands.annotation_app.server import ANY_ADDRESS, AppServer, check_hosts

    check_hosts(args.host, args.allow_host)
    if not args.configfile.is_file():
        raise Affect4kError(
            f"{args.configfile}: no such config in {Path.cwd()}; give yours with --configfile"
        )
    if args.host in ANY_ADDRESS and not args.allow_host:
        raise Affect4kError(
            f"--host {args.host or '(all)'} listens on every address, but answers only to the "
            "names given with --allow-host (the host name or address others type in their "
            "browser, e.g. --allow-host 192.168.1.20)"
        )
    app = AnnotationApp.from_config(
        args.annotator,
        args.configfile,
        workdir=Path.cwd(),
        snakefile=find_snakefile(args.snakefile),
        cores=args.cores,
    )
    try:
        server = AppServer(app, args.host, args.port, allow_hosts=args.allow_host)
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
