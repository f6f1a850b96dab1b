"""The annotation web app: a small HTTP server over the videos of one config.

Standard library only (``http.server``): one annotator on one machine needs no framework, and
every route is a few lines that can be read for what they let through. The server binds to
127.0.0.1 unless told otherwise, answers only to its own host name (so a web page elsewhere
cannot reach it through DNS rebinding), serves nothing but its packaged pages, the web copies
of the config's clips and the calibration clip (:mod:`affect4k.labels.calibration`), and writes
nothing but this annotator's traces and drafts in the config's annotations folder. Every path
segment is decoded once and must then be a known page, a video of the config (or the
calibration clip's id) or a dimension; anything else (``..``, encoded slashes, unknown ids) is
a 4xx answer before any file is opened.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.calibration_clip import make_calibration_clip
from affect4k.commands.annotation_app.trace_store import (
    StaleTrace,
    TraceBusy,
    TraceFiles,
    check_dimension,
    framewise,
    pooled_agreement,
    trace_from_payload,
    uncovered_frames,
    video_columns,
    write_trace,
)
from affect4k.config.schema import SCHEMA_PATH
from affect4k.config.settings import check_calibration_id, check_values
from affect4k.config.video_list import read_videos
from affect4k.core.columns import BOX_COLUMNS, DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table
from affect4k.core.media import count_frames
from affect4k.labels.calibration import CALIBRATION_ID, check_calibration, measure
from affect4k.labels.traces import read_trace

log = logging.getLogger(__name__)

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
        check_values(config)
        validate(config, str(schema), set_default=True)
    except (Affect4kError, WorkflowError) as error:
        raise Affect4kError(f"{configfile}: {error}") from None
    return config


class WebCopies:
    """Builds ``results/web/{video}.mp4`` on demand with Snakemake, once per video per server.

    Running the workflow (rather than writing the file directly) builds a missing clip too and
    leaves Snakemake's records consistent. Each video has its own lock, so a request about one
    video never waits for another's build; the Snakemake runs themselves take turns, because
    Snakemake locks its working directory. While a build runs, :meth:`progress` says how far
    it got, from Snakemake's own output and the running job's log.
    """

    def __init__(self, workdir: Path, snakefile: Path, configfile: Path, cores: int) -> None:
        self.workdir, self.snakefile, self.configfile = workdir, snakefile, configfile
        self.cores = cores
        self._frames: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._snakemake = threading.Lock()
        self._progress: dict[str, dict[str, Any]] = {}

    def path(self, video_id: str) -> Path:
        """Where Snakemake puts the web copy of ``video_id``."""
        return self.workdir / "results" / "web" / f"{video_id}.mp4"

    def frames(self, video_id: str) -> int:
        """The web copy's frame count, after bringing it up to date."""
        if video_id in self._frames:
            return self._frames[video_id]
        with self._locks_lock:
            lock = self._locks.setdefault(video_id, threading.Lock())
        with lock:
            if video_id not in self._frames:
                self._build(video_id)
                self._frames[video_id] = count_frames(self.path(video_id))
            return self._frames[video_id]

    def known_frames(self, video_id: str) -> int | None:
        """The frame count without building anything: this server's web copy, else the rows of
        the workflow's faces table (one per clip frame), else ``None``."""
        if video_id in self._frames:
            return self._frames[video_id]
        faces = self.workdir / "results" / "faces" / f"{video_id}.parquet"
        try:
            return pq.read_metadata(faces).num_rows
        except (OSError, ValueError):
            return None

    def progress(self, video_id: str) -> dict[str, Any] | None:
        """How far the running build of ``video_id`` got; ``None`` when none runs."""
        state = self._progress.get(video_id)
        if state is None:
            return None
        answer = {key: value for key, value in state.items() if key != "log"}
        if state.get("log"):
            answer["log"] = last_line(self.workdir / state["log"])
        return answer

    def _build(self, video_id: str) -> None:
        if video_id == CALIBRATION_ID:  # the package's own clip, no workflow stage
            make_calibration_clip(self.path(video_id))
            return
        target = f"results/web/{video_id}.mp4"
        argv = [sys.executable, "-m", "snakemake", "--snakefile", str(self.snakefile)]
        argv += ["--directory", str(self.workdir), "--cores", str(self.cores), target]
        # --configfile takes several values: last, so it cannot swallow the target.
        argv += ["--configfile", str(self.configfile)]
        state: dict[str, Any] = {"target": target, "waiting": True, "done": 0, "total": None}
        self._progress[video_id] = state
        try:
            with self._snakemake:
                state["waiting"] = False
                log.info("building %s", target)
                output = self._run(argv, state)
        finally:
            del self._progress[video_id]
        if output is not None:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise Affect4kError(f"video {video_id}: snakemake {target} failed:\n{tail}")

    @staticmethod
    def _run(argv: list[str], state: dict[str, Any]) -> str | None:
        """Run Snakemake, noting its progress in ``state``; its output if it failed."""
        lines = []
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if match := re.match(r"(?:local)?rule (\w+):", line):
                    state["job"], state["log"] = match.group(1), None
                elif match := re.match(r"\s+log: (\S+)", line):
                    state["log"] = match.group(1)
                elif match := re.search(r"(\d+) of (\d+) steps", line):
                    state["done"], state["total"] = int(match.group(1)), int(match.group(2))
                elif match := re.fullmatch(r"total\s+(\d+)\s*", line):
                    state["total"] = int(match.group(1))
        return None if process.returncode == 0 else "".join(lines)


def last_line(path: Path, size: int = 512) -> str | None:
    """The last non-empty line of a log being written (its newest progress line), if any."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - size))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]
    return lines[-1] if lines else None


def _r(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 3)


@dataclass
class AnnotationApp:
    """What the server needs to know: who annotates, which videos, where traces go, and
    where the clip of each video starts in the traces' time origin."""

    annotator: str
    videos: list[str]
    annotations: Path
    annotators: list[str]
    max_gap_s: float
    copies: WebCopies
    #: ``annotation.max_lag_s``: the largest lag the calibration measures.
    max_lag_s: float = 5.0
    #: ``annotation.min_calibration_ccc``: a finished calibration trace below it is refused.
    min_calibration_ccc: float = 0.7
    #: Seconds to add to a clip time to get a trace file's time: each video's ``start`` under
    #: ``annotation.time_origin: source``, 0 under ``clip`` (the annotate stage's reading).
    offsets: dict[str, float] = field(default_factory=dict)
    #: Each video's resampled traces, by what they were read from (names, sizes, mtimes).
    _read: dict[str, tuple[tuple, pd.DataFrame]] = field(default_factory=dict, repr=False)

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
        config = read_config(configfile, SCHEMA_PATH)
        if annotator not in config["annotators"]:
            raise Affect4kError(
                f"{configfile}: annotator {annotator!r} is not in the config key 'annotators' "
                f"({', '.join(config['annotators'])})"
            )
        try:
            videos = read_videos(workdir / config["videos"])
            check_calibration_id(config["annotations"], [entry.video_id for entry in videos])
        except Affect4kError as error:
            raise Affect4kError(f"{configfile}: config key 'videos': {error}") from None
        source = config["annotation"]["time_origin"] == "source"
        return cls(
            annotator=annotator,
            videos=[entry.video_id for entry in videos],
            annotations=workdir / config["annotations"],
            annotators=list(config["annotators"]),
            max_gap_s=config["annotation"]["max_gap_s"],
            copies=WebCopies(workdir, snakefile, configfile, cores),
            max_lag_s=config["annotation"]["max_lag_s"],
            min_calibration_ccc=config["annotation"]["min_calibration_ccc"],
            # The calibration clip has no source: its traces are in its own time.
            offsets={
                CALIBRATION_ID: 0.0,
                **{entry.video_id: (entry.start or 0.0) if source else 0.0 for entry in videos},
            },
        )

    def files(self, video_id: str, dimension: str) -> TraceFiles:
        """This annotator's trace and draft of one video and dimension."""
        return TraceFiles.of(self.annotations, video_id, self.annotator, dimension)

    def overview(self) -> dict[str, Any]:
        """Every video with this annotator's status in each dimension, and the calibration
        clip's (:data:`CALIBRATION_ID`)."""
        return {
            "annotator": self.annotator,
            "calibration": {
                "video": CALIBRATION_ID,
                **{d: self.files(CALIBRATION_ID, d).status() for d in DIMENSIONS},
            },
            "videos": [
                {"video": video, **{d: self.files(video, d).status() for d in DIMENSIONS}}
                for video in self.videos
            ],
        }

    def annotation(self, video_id: str, dimension: str) -> dict[str, Any]:
        """What the annotation page starts from: the clip, the trace to resume (in clip time),
        the version a save must name, the agreement."""
        n_frames = self.copies.frames(video_id)
        files = self.files(video_id, dimension)
        with files.locked():
            version, status, resumable = files.version(), files.status(), files.resumable()
            values = (
                framewise(resumable, n_frames, self.max_gap_s, self.offsets[video_id])
                if resumable
                else None
            )
        return {
            "annotator": self.annotator,
            "video": video_id,
            "dimension": dimension,
            "fps": CLIP_FPS,
            "frames": n_frames,
            "media": f"/media/{video_id}.mp4",
            "values": values,
            "version": version,
            "status": status,
            **(
                {
                    "calibration": self.calibration(
                        dimension, files.final if status["done"] else None
                    )
                }
                if video_id == CALIBRATION_ID
                else {"agreement": self.agreement(video_id, dimension)}
            ),
        }

    def calibration(self, dimension: str, trace: Path | None) -> dict[str, Any] | None:
        """This annotator's reaction lag and accuracy on the calibration clip, measured from
        their saved ``trace`` of ``dimension`` as the ``calibration`` stage measures it
        (``None`` before it is saved)."""
        if trace is None:
            return None
        try:
            lag_s, agreement = measure(
                *read_trace(trace), dimension, self.max_lag_s, self.max_gap_s
            )
        except Affect4kError as error:
            return {"error": str(error)}
        return {"lag_s": round(lag_s, 3), "ccc": _r(agreement), "max_lag_s": self.max_lag_s}

    def subject_boxes(self, video_id: str) -> dict[str, Any]:
        """The subject's box on every clip frame (clip pixels, ``None`` where the database has
        no face), from the face stage's table, so the page can show annotators the person whose
        crops get their labels. ``boxes`` is ``None`` until the faces stage has run."""
        path = self.copies.workdir / "results" / "faces" / f"{video_id}.parquet"
        if not path.is_file():
            return {"boxes": None}
        table = read_table(path, ("face", *BOX_COLUMNS), f"video {video_id}: subject boxes")
        boxes = np.round(table[list(BOX_COLUMNS)].to_numpy(float), 1)
        face = table["face"].to_numpy(bool) & np.isfinite(boxes).all(axis=1)
        return {
            "boxes": [box.tolist() if ok else None for box, ok in zip(boxes, face, strict=True)]
        }

    def _columns(self, video_id: str, n_frames: int) -> pd.DataFrame:
        """:func:`video_columns` of one video, read again only when a trace file changed (the
        pooled agreement reads every video's traces on each save)."""
        folder = self.annotations / video_id
        try:
            # Every save renames a new file into place: a new inode, whatever the clock says.
            stats = [(path.name, path.stat()) for path in folder.glob("*.csv")]
            key = (n_frames, *sorted((n, s.st_ino, s.st_size, s.st_mtime_ns) for n, s in stats))
        except OSError:
            key = None
        cached = self._read.get(video_id)
        if key is None or cached is None or cached[0] != key:
            columns = video_columns(
                folder, self.annotators, n_frames, self.max_gap_s, self.offsets[video_id]
            )
            self._read[video_id] = (key, columns)
            return columns
        return cached[1]

    def agreement(self, video_id: str, dimension: str) -> dict[str, Any]:
        """Pearson r of this annotator's finished trace with each other finished one, on this
        video and pooled over every video whose frame count is known (as ``agreement.csv``
        pools them), each trace read in the config's time origin as the annotate stage does."""
        try:
            this = self._columns(video_id, self.copies.frames(video_id))
            pooled = [this]
            for other in self.videos:
                n_frames = self.copies.known_frames(other) if other != video_id else None
                if n_frames is not None:
                    pooled.append(self._columns(other, n_frames))
            skipped = {
                name
                for name in self.annotators
                if TraceFiles.of(self.annotations, video_id, name, dimension).status()["skipped"]
            }
            return {
                "video": self._pairs(pooled_agreement([this], self.annotators), dimension),
                "pooled": {
                    **self._pairs(pooled_agreement(pooled, self.annotators), dimension),
                    "videos": len(pooled),
                    "of": len(self.videos),
                },
                "skipped": sorted(skipped),
            }
        except Affect4kError as error:
            return {"error": str(error)}

    def _pairs(self, table: pd.DataFrame, dimension: str) -> dict[str, Any]:
        table = table[table["dimension"] == dimension]
        mine = (table["annotator_a"] == self.annotator) | (table["annotator_b"] == self.annotator)
        others = table.loc[~mine, "pearson_r"].dropna()
        return {
            "pairs": [
                {
                    "annotator": row.annotator_b
                    if row.annotator_a == self.annotator
                    else row.annotator_a,
                    "pearson_r": _r(row.pearson_r),
                    "frames": int(row.frames),
                }
                for row in table[mine].itertuples()
            ],
            "others_mean_r": _r(others.mean()) if len(others) else None,
        }

    def save(self, video_id: str, dimension: str, payload: Any) -> dict[str, Any]:
        """Write the page's trace: as the finished trace if ``done``, else as the draft.

        A finished calibration trace that :func:`affect4k.labels.calibration.check_calibration`
        refuses (flat, inverted, below ``min_calibration_ccc``) is not written: the page shows
        why, and the annotator traces it again (a draft is saved as any other).

        ``version`` must be the one the page last loaded or saved: a save from a tab that
        missed another tab's (or server's) save is refused with :class:`StaleTrace`.
        """
        n_frames = self.copies.frames(video_id)
        done = payload.get("done") if isinstance(payload, dict) else None
        if not isinstance(done, bool):
            raise Affect4kError("the request needs done: true (finished) or false (draft)")
        times, values = trace_from_payload(payload, n_frames / CLIP_FPS)
        base = payload.get("version")
        if not isinstance(base, str):
            raise Affect4kError("the request needs the version of the trace it continues")
        files = self.files(video_id, dimension)
        with files.locked():
            if files.version() != base:
                raise StaleTrace(
                    "this trace was saved elsewhere (another tab or server) after this page "
                    "loaded it: reload the page to continue from that save"
                )
            if done:
                missing = uncovered_frames(times, n_frames, self.max_gap_s)
                if missing.size:
                    first = int(missing[0])
                    raise Affect4kError(
                        f"{missing.size} of {n_frames} frames are not annotated yet (the first "
                        f"at {first / CLIP_FPS:.2f} s): play them, or save a draft"
                    )
                if video_id == CALIBRATION_ID:  # refused here, so it is never written
                    check_calibration(
                        times,
                        values,
                        dimension,
                        max_lag_s=self.max_lag_s,
                        max_gap_s=self.max_gap_s,
                        min_ccc=self.min_calibration_ccc,
                    )
            path = files.final if done else files.draft
            write_trace(path, times + self.offsets[video_id], values)
            if done:
                files.draft.unlink(missing_ok=True)
        log.info("%s: saved %s (%d samples)", video_id, path, len(times))
        return self.annotation(video_id, dimension)


class HttpError(Exception):
    """A request refused with ``status`` and a message for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """Routes: pages, ``/static/``, ``/api/videos``, ``/api/traces/{video}/{dimension}``,
    ``/api/build/{video}`` (web-copy progress), ``/api/subject/{video}`` (the subject's box per
    frame), ``/media/{video}.mp4``.

    Only GET and PUT are served. Every refused request closes the connection after its answer:
    a body the server did not read must never be parsed as the next request (a text/plain POST,
    which any web page may send, could otherwise carry a whole PUT inside it).
    """

    server: AppServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # StreamRequestHandler applies `timeout` to the socket: a silent client is dropped.
        self.timeout = self.server.request_timeout
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    do_PUT = do_HEAD = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        try:
            try:
                self._check_host()
                if self.command not in ("GET", "PUT"):
                    raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} not allowed")
                if self.command != "PUT" and self._declares_body():
                    self.close_connection = True  # the body is never read
                self._route(self.command, self._segments())
            except HttpError as error:
                self.close_connection = True  # a refused request's body may still be unread
                self._send_json(error.status, {"error": str(error)})
            except Affect4kError as error:
                self.close_connection = True
                status = (
                    HTTPStatus.SERVICE_UNAVAILABLE
                    if isinstance(error, TraceBusy)
                    else HTTPStatus.INTERNAL_SERVER_ERROR
                )
                self._send_json(status, {"error": str(error)})
        except OSError:
            # The browser dropped a media request it no longer needs, or a client went silent.
            self.close_connection = True

    def _declares_body(self) -> bool:
        length = self.headers.get("Content-Length")
        return "Transfer-Encoding" in self.headers or (length is not None and length != "0")

    def _check_host(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:  # which one a proxy or the page meant is anybody's guess
            raise HttpError(HTTPStatus.BAD_REQUEST, "exactly one Host header needed")
        if hosts[0].lower() not in self.server.allowed_hosts:
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
        if video_id not in self.server.app.videos and video_id != CALIBRATION_ID:
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
            case "GET", ["api", "subject", video]:
                self._send_json(HTTPStatus.OK, app.subject_boxes(self._video(video)))
            case "GET", ["api", "build", video]:
                self._send_json(HTTPStatus.OK, {"build": app.copies.progress(self._video(video))})
            case "PUT", ["api", "traces", video, dimension]:
                video, dimension = self._video(video), self._dimension(dimension)
                payload = self._read_json()
                try:
                    answer = app.save(video, dimension, payload)
                except StaleTrace as error:
                    raise HttpError(HTTPStatus.CONFLICT, str(error)) from None
                except TraceBusy as error:
                    raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, str(error)) from None
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
        if "Transfer-Encoding" in self.headers:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send the trace with a Content-Length")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "Content-Length needed") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "trace too large")
        try:
            return json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None

    def _send_json(self, status: HTTPStatus, body: Any) -> None:
        data = json.dumps(body).encode()
        self._send_head(status, "application/json", len(data), {"Cache-Control": "no-store"})
        self._write(data)

    def _send_static(self, name: str) -> None:
        data = (resources.files(__package__) / "static" / name).read_bytes()
        self._send_head(HTTPStatus.OK, STATIC_TYPES[name], len(data), {"Cache-Control": "no-cache"})
        self._write(data)

    def _write(self, data: bytes) -> None:
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(data)

    def _send_file(self, path: Path, content_type: str) -> None:
        """``path`` whole or the one byte range asked for (browsers seek in video that way)."""
        size = path.stat().st_size
        start, end, status = 0, size - 1, HTTPStatus.OK
        requested = self.headers.get("Range")
        if requested:
            # At most 18 digits: int() of a 5,000-digit value raises instead of answering 416.
            match = re.fullmatch(r"bytes=(\d{0,18})-(\d{0,18})", requested.strip())
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
                self._write(chunk)
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
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()


#: A host name as a browser sends it in the Host header (lower case, no port).
_HOST_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")


def check_hosts(host: str, allow: Sequence[str]) -> list[str]:
    """``allow`` as Host header names (an IPv6 address in brackets, names in lower case),
    after refusing, naming the flag, a ``--host`` that cannot be listened on as given and an
    ``--allow-host`` that could never match a Host header (empty, with a port, not a name)."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise Affect4kError(
                f"--host {host}: not an IPv6 address (give it without brackets or port, "
                "e.g. --host ::1)"
            ) from None
    names = []
    for name in allow:
        bare = name.removeprefix("[").removesuffix("]") if name.startswith("[") else name
        try:
            names.append(f"[{ipaddress.IPv6Address(bare).compressed}]")
            continue
        except ValueError:
            pass
        if not _HOST_NAME_RE.fullmatch(name.lower()):
            hint = (
                "give the name alone, the port is the server's (--port)"
                if re.fullmatch(r".+:\d+", name)
                else "a host name or IP address, as typed in the browser"
            )
            raise Affect4kError(f"--allow-host {name!r}: {hint}")
        names.append(name.lower())
    return names


def allowed_hosts(host: str, port: int, allow: Sequence[str] = ()) -> set[str]:
    """The Host headers the server answers to (anything else is a DNS-rebinding attempt).

    Bound to a loopback address: this machine's names for it. Bound to one other address:
    that address. Bound to every address: the loopback names and the names in ``allow``, the
    ones others type in their browser (``--allow-host``, see :func:`check_hosts`). Browsers
    leave out ``:80``, so on port 80 each name is also accepted bare.
    """
    names = set(check_hosts(host, allow))
    if host in LOOPBACK or host in ANY_ADDRESS:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    else:
        names.add(f"[{host}]" if ":" in host else host)
    return {f"{name}:{port}" for name in names} | (names if port == 80 else set())


class AppServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its app and the Host headers it answers to.

    At most ``max_connections`` connections are served at once (the rest wait in the listen
    backlog) and a connection silent for ``request_timeout`` seconds is closed, so slow or
    idle clients cannot pile up threads.
    """

    daemon_threads = True

    def __init__(
        self,
        app: AnnotationApp,
        host: str,
        port: int,
        *,
        allow_hosts: Sequence[str] = (),
        max_connections: int = 32,
        request_timeout: float = 60.0,
    ) -> None:
        # Set before binding: a failed bind calls server_close, which reads _connections.
        self.app = app
        self.request_timeout = request_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        names = check_hosts(host, allow_hosts)
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        port = self.server_address[1]
        self.allowed_hosts = allowed_hosts(host, port, names)
        # What the start-up line tells the user to open: a name the Host check answers to.
        if host in ANY_ADDRESS:
            shown = names[0] if names else "localhost"
        else:
            shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()
        self._connections.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.discard(request)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.discard(request)
            self._slots.release()

    def server_close(self) -> None:
        """Stop listening and end every open connection: a browser's kept-alive connection
        must not go on being served by a stopped server."""
        super().server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A dropped connection is routine (one line at debug level); anything else is logged
        with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("%s: connection dropped (%s)", client_address, error)
        else:
            log.exception("%s: request failed", client_address)
