"""The annotation web app: a small HTTP server over the videos of one config.

Standard library only (``http.server``): one annotator on one machine needs no framework, and
every route is a few lines that can be read for what they let through. The server binds to
127.0.0.1 unless told otherwise, answers only to its own host name (so a web page elsewhere
cannot reach it through DNS rebinding), serves nothing but its packaged pages and the web
copies of the config's clips, and writes nothing but this annotator's traces and drafts in the
config's annotations folder. Every path segment is decoded once and must then be a known page,
a video of the config or a dimension; anything else (``..``, encoded slashes, unknown ids) is
a 4xx answer before any file is opened.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import yaml

from affect4k import CLIP_FPS
from affect4k.annotate_app.traces import (
    TraceFiles,
    check_dimension,
    framewise,
    trace_from_payload,
    uncovered_frames,
    video_agreement,
    write_trace,
)
from affect4k.errors import Affect4kError
from affect4k.layout import DIMENSIONS
from affect4k.manifest import read_videos
from affect4k.media import count_frames

log = logging.getLogger(__name__)

#: The workflow's config schema, relative to the directory of its Snakefile.
SCHEMA = Path("workflow/schemas/config.schema.yaml")
#: Packaged files the pages need, by the name they are requested under.
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "annotate.html": "text/html; charset=utf-8",
    "videos.js": "text/javascript; charset=utf-8",
    "annotate.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: A 3-minute clip is 4,500 samples (about 100 kB of JSON); this leaves room for an hour.
MAX_BODY_BYTES = 8 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


def read_config(configfile: Path, schema: Path) -> dict[str, Any]:
    """The config file alone, checked against the workflow's schema (which fills in defaults)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        config = yaml.safe_load(Path(configfile).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise Affect4kError(f"{configfile}: cannot read the config ({error})") from None
    if not isinstance(config, dict):
        raise Affect4kError(f"{configfile}: the config must be a mapping of keys")
    try:
        validate(config, str(schema), set_default=True)
    except WorkflowError as error:
        raise Affect4kError(f"{configfile}: {error}") from None
    return config


class WebCopies:
    """Builds ``results/web/{video}.mp4`` on demand with Snakemake, once per video per server.

    Running the workflow (rather than writing the file directly) builds a missing clip too and
    leaves Snakemake's records consistent; builds are serialised because Snakemake locks its
    working directory.
    """

    def __init__(self, workdir: Path, snakefile: Path, configfile: Path, cores: int) -> None:
        self.workdir, self.snakefile, self.configfile = workdir, snakefile, configfile
        self.cores = cores
        self._frames: dict[str, int] = {}
        self._lock = threading.Lock()

    def path(self, video_id: str) -> Path:
        """Where Snakemake puts the web copy of ``video_id``."""
        return self.workdir / "results" / "web" / f"{video_id}.mp4"

    def frames(self, video_id: str) -> int:
        """The web copy's frame count, after bringing it up to date."""
        with self._lock:
            if video_id not in self._frames:
                self._build(video_id)
                self._frames[video_id] = count_frames(self.path(video_id))
            return self._frames[video_id]

    def _build(self, video_id: str) -> None:
        target = f"results/web/{video_id}.mp4"
        argv = [sys.executable, "-m", "snakemake", "--snakefile", str(self.snakefile)]
        argv += ["--directory", str(self.workdir), "--cores", str(self.cores), target]
        # --configfile takes several values: last, so it cannot swallow the target.
        argv += ["--configfile", str(self.configfile)]
        log.info("building %s", target)
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise Affect4kError(f"video {video_id}: snakemake {target} failed:\n{tail}")


@dataclass
class AnnotationApp:
    """What the server needs to know: who annotates, which videos, where traces go."""

    annotator: str
    videos: list[str]
    annotations: Path
    annotators: list[str]
    max_gap_s: float
    copies: WebCopies
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(
        cls,
        annotator: str,
        configfile: Path,
        *,
        workdir: Path,
        snakefile: Path,
        cores: int = 1,
    ) -> AnnotationApp:
        """The app of ``annotator`` over ``configfile``; paths in it are relative to ``workdir``.

        ``annotator`` must be one of the config's ``annotators``: the ``annotate`` stage reads no
        other trace, so any other name would label nothing.
        """
        workdir, snakefile = Path(workdir).resolve(), Path(snakefile).resolve()
        configfile = Path(configfile).resolve()
        config = read_config(configfile, snakefile.parent / SCHEMA)
        if annotator not in config["annotators"]:
            raise Affect4kError(
                f"{configfile}: annotator {annotator!r} is not in the config key 'annotators' "
                f"({', '.join(config['annotators'])})"
            )
        try:
            videos = read_videos(workdir / config["videos"])
        except Affect4kError as error:
            raise Affect4kError(f"{configfile}: config key 'videos': {error}") from None
        return cls(
            annotator=annotator,
            videos=[entry.video_id for entry in videos],
            annotations=workdir / config["annotations"],
            annotators=list(config["annotators"]),
            max_gap_s=config["annotation"]["max_gap_s"],
            copies=WebCopies(workdir, snakefile, configfile, cores),
        )

    def files(self, video_id: str, dimension: str) -> TraceFiles:
        """This annotator's trace and draft of one video and dimension."""
        return TraceFiles.of(self.annotations, video_id, self.annotator, dimension)

    def overview(self) -> dict[str, Any]:
        """Every video with this annotator's status in each dimension."""
        return {
            "annotator": self.annotator,
            "videos": [
                {"video": video, **{d: self.files(video, d).status() for d in DIMENSIONS}}
                for video in self.videos
            ],
        }

    def annotation(self, video_id: str, dimension: str) -> dict[str, Any]:
        """What the annotation page starts from: the clip, the trace to resume, the agreement."""
        n_frames = self.copies.frames(video_id)
        files = self.files(video_id, dimension)
        resumable = files.resumable()
        return {
            "annotator": self.annotator,
            "video": video_id,
            "dimension": dimension,
            "fps": CLIP_FPS,
            "frames": n_frames,
            "media": f"/media/{video_id}.mp4",
            "values": framewise(resumable, n_frames, self.max_gap_s) if resumable else None,
            "status": files.status(),
            "agreement": self.agreement(video_id, dimension, n_frames),
        }

    def agreement(self, video_id: str, dimension: str, n_frames: int) -> dict[str, Any]:
        """Pearson r of this annotator's finished trace with each other finished one."""
        try:
            table = video_agreement(
                self.annotations / video_id, self.annotators, n_frames, self.max_gap_s
            )
        except Affect4kError as error:
            return {"error": str(error)}
        table = table[table["dimension"] == dimension]
        mine = (table["annotator_a"] == self.annotator) | (table["annotator_b"] == self.annotator)

        def r(value: float) -> float | None:
            return None if np.isnan(value) else round(float(value), 3)

        others = table.loc[~mine, "pearson_r"].dropna()
        return {
            "pairs": [
                {
                    "annotator": row.annotator_b
                    if row.annotator_a == self.annotator
                    else row.annotator_a,
                    "pearson_r": r(row.pearson_r),
                    "frames": int(row.frames),
                }
                for row in table[mine].itertuples()
            ],
            "others_mean_r": r(others.mean()) if len(others) else None,
        }

    def save(self, video_id: str, dimension: str, payload: Any) -> dict[str, Any]:
        """Write the page's trace: as the finished trace if ``done``, else as the draft."""
        n_frames = self.copies.frames(video_id)
        done = payload.get("done") if isinstance(payload, dict) else None
        if not isinstance(done, bool):
            raise Affect4kError("the request needs done: true (finished) or false (draft)")
        times, values = trace_from_payload(payload, n_frames / CLIP_FPS)
        files = self.files(video_id, dimension)
        with self._write_lock:
            if done:
                missing = uncovered_frames(times, n_frames, self.max_gap_s)
                if missing.size:
                    first = int(missing[0])
                    raise Affect4kError(
                        f"{missing.size} of {n_frames} frames are not annotated yet (the first "
                        f"at {first / CLIP_FPS:.2f} s): play them, or save a draft"
                    )
                write_trace(files.final, times, values)
                files.draft.unlink(missing_ok=True)
            else:
                write_trace(files.draft, times, values)
        log.info(
            "%s: saved %s (%d samples)", video_id, files.final if done else files.draft, len(times)
        )
        return self.annotation(video_id, dimension)


class HttpError(Exception):
    """A request refused with ``status`` and a message for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """Routes: pages, ``/static/``, ``/api/videos``, ``/api/traces/{video}/{dimension}``,
    ``/media/{video}.mp4``."""

    server: AppServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def _refuse_method(self) -> None:
        self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} not allowed"})

    do_HEAD = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            self._route(method, self._segments())
        except HttpError as error:
            self.close_connection = True  # a refused request's body may still be unread
            self._send_json(error.status, {"error": str(error)})
        except Affect4kError as error:
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(error)})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser dropped a media request it no longer needs

    def _check_host(self) -> None:
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host") not in allowed:
            raise HttpError(HTTPStatus.FORBIDDEN, "unexpected Host header")

    def _segments(self) -> list[str]:
        path = urlsplit(self.path).path
        if not path.startswith("/"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed path")
        try:
            segments = [unquote(part, errors="strict") for part in path.split("/")[1:]]
        except UnicodeDecodeError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "path is not UTF-8") from None
        for segment in segments:
            if segment in (".", "..") or re.search(r"[/\\\x00]", segment):
                raise HttpError(HTTPStatus.BAD_REQUEST, "path segments must be plain names")
        return [segment for segment in segments if segment]

    def _video(self, video_id: str) -> str:
        if video_id not in self.server.app.videos:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no video {video_id!r} in the config")
        return video_id

    def _dimension(self, dimension: str) -> str:
        try:
            return check_dimension(dimension)
        except Affect4kError as error:
            raise HttpError(HTTPStatus.NOT_FOUND, str(error)) from None

    def _route(self, method: str, parts: list[str]) -> None:
        app = self.server.app
        match method, parts:
            case "GET", []:
                self._send_static("index.html")
            case "GET", ["annotate", video, dimension]:
                self._video(video), self._dimension(dimension)
                self._send_static("annotate.html")
            case "GET", ["static", name] if name in STATIC_TYPES:
                self._send_static(name)
            case "GET", ["api", "videos"]:
                self._send_json(HTTPStatus.OK, app.overview())
            case "GET", ["api", "traces", video, dimension]:
                answer = app.annotation(self._video(video), self._dimension(dimension))
                self._send_json(HTTPStatus.OK, answer)
            case "PUT", ["api", "traces", video, dimension]:
                video, dimension = self._video(video), self._dimension(dimension)
                payload = self._read_json()
                try:
                    answer = app.save(video, dimension, payload)
                except Affect4kError as error:
                    raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None
                self._send_json(HTTPStatus.OK, answer)
            case "GET", ["media", name] if name.endswith(".mp4"):
                video = self._video(name.removesuffix(".mp4"))
                app.copies.frames(video)
                self._send_file(app.copies.path(video), "video/mp4")
            case _:
                raise HttpError(HTTPStatus.NOT_FOUND, "no such page")

    def _read_json(self) -> Any:
        if self.headers.get_content_type() != "application/json":
            raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the trace as JSON")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host')}":
            raise HttpError(HTTPStatus.FORBIDDEN, "cross-origin writes are refused")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "Content-Length needed") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "trace too large")
        try:
            return json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None

    def _send_json(self, status: HTTPStatus, body: Any) -> None:
        data = json.dumps(body).encode()
        self._send_head(status, "application/json", len(data), {"Cache-Control": "no-store"})
        self.wfile.write(data)

    def _send_static(self, name: str) -> None:
        data = (resources.files(__package__) / "static" / name).read_bytes()
        self._send_head(HTTPStatus.OK, STATIC_TYPES[name], len(data), {"Cache-Control": "no-cache"})
        self.wfile.write(data)

    def _send_file(self, path: Path, content_type: str) -> None:
        """``path`` whole or the one byte range asked for (browsers seek in video that way)."""
        size = path.stat().st_size
        start, end, status = 0, size - 1, HTTPStatus.OK
        requested = self.headers.get("Range")
        if requested:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", requested.strip())
            if not match or match.groups() == ("", ""):
                raise HttpError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "bad Range")
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start = max(0, size - int(last))
            if start > end or start >= size:
                raise HttpError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "bad Range")
            status = HTTPStatus.PARTIAL_CONTENT
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        if status == HTTPStatus.PARTIAL_CONTENT:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send_head(status, content_type, end - start + 1, headers)
        with path.open("rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def _send_head(
        self, status: HTTPStatus, content_type: str, length: int, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


class AppServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its app and the Host headers it answers to."""

    daemon_threads = True

    def __init__(self, app: AnnotationApp, host: str, port: int) -> None:
        super().__init__((host, port), Handler)
        self.app = app
        port = self.server_address[1]
        names = LOOPBACK if host in LOOPBACK else (host,)
        #: None when bound to every address: the server cannot know the names it is reached by.
        self.allowed_hosts: set[str] | None = (
            None
            if host in ANY_ADDRESS
            else {f"{name}:{port}" for name in names} | {f"[::1]:{port}"}
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"
