"""The app's HTTP server: the hosts it listens on and answers to, and a held trace lock
(affect4k.commands.annotation_app.server)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading

import pytest
from helpers.annotation_app import ME, http_request, idle_app, raw_exchange, request

from affect4k.commands import cli
from affect4k.commands.annotation_app.app import AnnotationApp
from affect4k.commands.annotation_app.server import AppServer
from affect4k.labels.calibration import CALIBRATION_ID, FRAMES


@contextlib.contextmanager
def serving(app: AnnotationApp, host: str, **keys: object):
    server = AppServer(app, host, 0, **keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
@pytest.mark.parametrize("host", ["::1", "::"])
def test_ipv6_hosts_listen_and_answer_to_their_bracketed_name(tmp_path, host):
    with serving(idle_app(tmp_path), host, allow_hosts=["fe80::1"]) as server:
        port = server.server_address[1]
        connection = http.client.HTTPConnection("::1", port, timeout=60)
        connection.request("GET", "/api/videos")  # Host: [::1]:port
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["annotator"] == ME
        connection.close()
        if host == "::":
            assert server.url == f"http://[fe80::1]:{port}/"
            assert f"[fe80::1]:{port}" in server.allowed_hosts
        else:
            assert server.url == f"http://[::1]:{port}/"


def test_every_address_prints_a_url_its_host_check_answers_to(tmp_path):
    with serving(idle_app(tmp_path), "0.0.0.0", allow_hosts=["Annotate.LAN"]) as server:
        port = server.server_address[1]
        assert server.url == f"http://annotate.lan:{port}/"
        headers = {"Host": f"annotate.lan:{port}"}
        assert request(server, "GET", "/api/videos", headers=headers)[0] == 200


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--allow-host", ""], "--allow-host '': a host name"),
        (["--allow-host", "annotate.lan:8025"], "give the name alone"),
        (["--allow-host", "two words"], "--allow-host 'two words'"),
        (["--host", "[::1]"], "--host [::1]: not an IPv6 address"),
    ],
)
def test_host_flags_that_could_never_work_are_refused_at_start(
    tmp_path, monkeypatch, capsys, flags, message
):
    monkeypatch.chdir(tmp_path)
    argv = ["annotate", "--annotator", ME, "--host", "0.0.0.0", *flags]
    assert cli.main(argv) == 1  # before the config is even read
    assert message in capsys.readouterr().err


def test_a_duplicate_host_header_is_refused(tmp_path):
    with serving(idle_app(tmp_path), "127.0.0.1") as server:
        host = f"127.0.0.1:{server.server_address[1]}"
        twice = http_request("GET", "/api/videos", host, {"Host": host})
        assert raw_exchange(server, twice).startswith(b"HTTP/1.1 400")
        once = http_request("GET", "/api/videos", host, {"Connection": "close"})
        assert raw_exchange(server, once).startswith(b"HTTP/1.1 200")


def test_a_held_trace_lock_answers_503_instead_of_hanging(tmp_path, monkeypatch):
    import fcntl
    import os

    from affect4k.commands.annotation_app import trace_store

    monkeypatch.setattr(trace_store, "LOCK_TIMEOUT_S", 0.3)
    app = idle_app(tmp_path)
    app.copies._frames[CALIBRATION_ID] = FRAMES  # no clip to build for this request
    folder = app.files(CALIBRATION_ID, "valence").final.parent
    folder.mkdir(parents=True)
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # another process's stuck save
        with serving(app, "127.0.0.1") as server:
            status, answer = request(server, "GET", f"/api/traces/{CALIBRATION_ID}/valence")
    finally:
        os.close(descriptor)
    assert status == 503 and "is locked by another process" in answer["error"]
