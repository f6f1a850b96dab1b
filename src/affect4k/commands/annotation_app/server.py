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
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from affect4k.commands.annotation_app.app import AnnotationApp
from affect4k.commands.annotation_app.trace_store import (
    StaleTrace,
    TraceBusy,
    check_dimension,
)
from affect4k.core.errors import Affect4kError
from affect4k.labels.calibration import CALIBRATION_ID

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
