"""The demo workspace, apps and scripted annotator that the annotation app's tests share, in
tests/unit/commands/annotation_app/, tests/workflow/ and tests/browser/. Its fixtures
(``workspace``, ``calibration_app``) reach every test through ``pytest_plugins`` in
tests/conftest.py."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.app import AnnotationApp
from affect4k.commands.annotation_app.server import AppServer
from helpers import REPO
from helpers.workflow import demo_config, run_snakemake, write_config

DEMO = {"clip_a": (30, "astronaut"), "clip_b": (29.97, "t1:3")}
SECONDS = 4
ANNOTATORS = ["a1", "a2", "a3", "a4"]
ME = "a4"
#: One frame in time, and the value tolerance of the issue.
FRAME_S, VALUE_TOL = 1 / CLIP_FPS, 0.02


def videos_tsv() -> str:
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in DEMO]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 4 s demo clips built up to results/annotations.parquet, once a session: the browser
    tests annotate in it as ME, the workflow tests read its sources."""
    work = tmp_path_factory.mktemp("annotate")
    (work / "videos.tsv").write_text(videos_tsv())
    # Two videos build a database (the split, which would need three groups, is not asked for).
    write_config(work, demo_config(DEMO, seconds=SECONDS, annotators=ANNOTATORS))
    run_snakemake(work, "results/annotations.parquet")
    return work


def request(
    server: AppServer, method: str, path: str, body: object = None, headers: dict | None = None
) -> tuple[int, dict]:
    """Send ``path`` exactly as written (no normalisation); the status and the JSON answer."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=120)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    if data is not None:
        headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    is_json = response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(raw) if is_json else {}


# ---- the scripted annotation


@dataclass
class Run:
    """One stretch of playback: from ``start`` (video time, known to lie between ``start`` and
    ``start_latest``) to ``end``, a step path of values starting at ``value``."""

    start: float
    value: float
    start_latest: float | None = None
    end: float = float("inf")
    #: (earliest, latest) video time of each change and the value it sets.
    steps: list[tuple[float, float, float]] = field(default_factory=list)
    #: A replay after a seek: until its first step it keeps what earlier runs recorded.
    follows: bool = False

    def values_near(self, t: float) -> list[float]:
        """Values this run's path may hold within one frame of ``t``."""
        first = [] if self.follows else [(self.start, self.start, self.value)]
        changes = [*first, *self.steps]
        return [
            value
            for index, (earliest, _, value) in enumerate(changes)
            if earliest <= t + FRAME_S
            and (index + 1 == len(changes) or changes[index + 1][1] >= t - FRAME_S)
        ]


class Annotator:
    """Drives the page and writes down, in video time, what it did."""

    def __init__(self, driver) -> None:
        self.driver = driver
        self.runs: list[Run] = []
        self.value = 0.0

    def time(self) -> float:
        return self.driver.execute_script("return document.getElementById('video').currentTime")

    def wait_for(self, condition: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.driver.execute_script(f"return Boolean({condition})"):
            assert time.monotonic() < deadline, f"timed out waiting for {condition}"
            time.sleep(0.01)

    def wait_until_video_time(self, seconds: float) -> None:
        self.wait_for(f"document.getElementById('video').currentTime >= {seconds}")

    def press(self, key: str, *, shift: bool = False) -> tuple[float, float]:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        before = self.time()
        actions = ActionChains(self.driver)
        if shift:
            actions.key_down(Keys.SHIFT).send_keys(key).key_up(Keys.SHIFT)
        else:
            actions.send_keys(key)
        actions.perform()
        return before, self.time()

    def change(self, key: str, delta: float, *, shift: bool = False) -> None:
        before, after = self.press(key, shift=shift)
        self.value = round(self.value + delta, 4)
        self.runs[-1].steps.append((before, after, self.value))

    def stick(self, axis: float) -> None:
        """Move the gamepad's stick; the page polls it on its next animation frame."""
        before, after = self.driver.execute_async_script(
            """const [axis, done] = arguments;
            const video = document.getElementById("video");
            const before = video.currentTime;
            window.__pad.axes[1] = axis;
            requestAnimationFrame(() => requestAnimationFrame(
              () => done([before, video.currentTime])));""",
            axis,
        )
        self.value = -axis
        self.runs[-1].steps.append((before, after, self.value))

    def gamepad_button(self) -> None:
        """Press and release button A (play / pause), one animation frame each."""
        self.driver.execute_async_script(
            """const done = arguments[0];
            window.__pad.buttons[0] = {pressed: true, touched: true, value: 1};
            requestAnimationFrame(() => requestAnimationFrame(() => {
              window.__pad.buttons[0] = {pressed: false, touched: false, value: 0};
              requestAnimationFrame(() => requestAnimationFrame(done));
            }));"""
        )


# ---- raw HTTP, and apps over a folder


def raw_exchange(server: AppServer, data: bytes) -> bytes:
    """Send ``data`` as is on one connection; everything the server answers until it closes."""
    with socket.create_connection(server.server_address[:2], timeout=120) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def http_request(method: str, path: str, host: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def app_of(workspace: Path, config: Path | None = None, annotator: str = ME) -> AnnotationApp:
    return AnnotationApp.from_config(
        annotator,
        config or workspace / "config.yaml",
        workdir=workspace,
        snakefile=REPO / "Snakefile",
    )


def curve(frames: int) -> list[float]:
    """A trace no shift leaves correlated with itself at r = 1."""
    return [round(0.2 + 0.7 * np.sin(f / 6) * np.exp(-f / 60), 4) for f in range(frames)]


# ---- calibration

#: The reaction delay the scripted annotator has on the calibration clip.
DELAY_S = 1.0


@pytest.fixture
def calibration_app(tmp_path: Path):
    """An app over a config whose videos are never built: the calibration clip needs none."""
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    write_config(tmp_path, demo_config(DEMO, seconds=SECONDS, annotators=ANNOTATORS))
    app = AnnotationApp.from_config(
        ME, tmp_path / "config.yaml", workdir=tmp_path, snakefile=REPO / "Snakefile"
    )
    server = AppServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, tmp_path
    server.shutdown()
    server.server_close()


def idle_app(root: Path) -> AnnotationApp:
    """An app over a config whose videos are never built (what start-up and Host checks see)."""
    (root / "videos.tsv").write_text(videos_tsv())
    write_config(root, demo_config(DEMO, seconds=SECONDS, annotators=ANNOTATORS))
    return app_of(root)
