"""``affect4k annotate`` in a real browser (headless Chromium) on a small demo workspace.

One workspace is built once (two 4-second 640x360 demo clips through the real workflow up to
``results/annotations.parquet``), one app server runs over it as annotator ``a4``, and one
browser session annotates ``clip_a``'s valence along a scripted path: keyboard and a simulated
gamepad, a pause with a change while paused, a seek back whose replay overwrites, then save.
Headless playback speed varies, so the expected path is built from the video times the page
reports just before and just after each scripted input.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (
    REPO,
    demo_config,
    headless_chromium,
    planned_jobs,
    run_snakemake,
    write_config,
)

from affect4k import CLIP_FPS, cli
from affect4k.annotate_app.server import AnnotationApp, AppServer
from affect4k.annotate_app.webcopy import make_web_copy
from affect4k.database import agreement_table
from affect4k.errors import Affect4kError
from affect4k.media import ffmpeg_exe, probe_video
from affect4k.traces import read_trace, resample_trace

DEMO = {"clip_a": (30, "astronaut"), "clip_b": (29.97, "t1:3")}
SECONDS = 4
ANNOTATORS = ["a1", "a2", "a3", "a4"]
ME = "a4"
SCHEMA_PATH = "workflow/schemas/config.schema.yaml"
#: One frame in time, and the value tolerance of the issue.
FRAME_S, VALUE_TOL = 1 / CLIP_FPS, 0.02

#: Stands in for a gamepad before any page script runs: the page polls navigator.getGamepads().
FAKE_GAMEPAD = """
window.__pad = {
  id: "affect4k test pad", index: 0, connected: true, mapping: "standard",
  axes: [0, 0, 0, 0],
  buttons: Array.from({length: 17}, () => ({pressed: false, touched: false, value: 0})),
};
Object.defineProperty(Navigator.prototype, "getGamepads", {
  value: () => [window.__pad, null, null, null], configurable: true,
});
"""


def videos_tsv() -> str:
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in DEMO]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("annotate")
    (work / "videos.tsv").write_text(videos_tsv())
    write_config(work, demo_config(DEMO, seconds=SECONDS, annotators=ANNOTATORS))
    run_snakemake(work, "results/annotations.parquet")
    return work


@pytest.fixture(scope="module")
def server(workspace: Path):
    app = AnnotationApp.from_config(
        ME, workspace / "config.yaml", workdir=workspace, snakefile=REPO / "Snakefile"
    )
    server = AppServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(
        "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900"
    )
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_GAMEPAD})
    yield driver
    driver.quit()


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

    def values_near(self, t: float) -> list[float]:
        """Values this run's path may hold within one frame of ``t``."""
        changes = [(self.start, self.start, self.value), *self.steps]
        return [
            value
            for index, (earliest, _, value) in enumerate(changes)
            if earliest <= t + FRAME_S
            and (index + 1 == len(changes) or changes[index + 1][1] >= t - FRAME_S)
        ]


def expected_values(t: float, runs: list[Run]) -> list[float]:
    """What a saved sample at ``t`` may be: the latest run that played ``t`` wins (a replay
    overwrites), and within a frame of a run's edge the neighbour run is allowed too."""
    allowed: list[float] = []
    for run in reversed(runs):
        start_latest = run.start if run.start_latest is None else run.start_latest
        if run.start - FRAME_S <= t <= run.end + FRAME_S:
            allowed += run.values_near(t)
        if start_latest + FRAME_S <= t <= run.end - FRAME_S:
            break
    return allowed


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


@pytest.fixture(scope="module")
def annotated(workspace: Path, server: AppServer, browser) -> dict:
    """Annotate clip_a's valence in the browser along a scripted path and save it."""
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url)
    annotator = Annotator(browser)
    annotator.wait_for("document.querySelector('#videos tbody tr')")
    link = browser.find_element(
        "css selector", "tr[data-video='clip_a'] td[data-dimension='valence'] a"
    )
    link.click()
    annotator.wait_for("document.body.dataset.state !== 'loading'", timeout=300)
    assert browser.execute_script("return document.body.dataset.state") == "ready"
    assert "affect4k test pad" in browser.find_element("id", "input").text

    annotator.press(Keys.SPACE)  # play
    annotator.runs.append(Run(start=0.0, value=0.0))
    annotator.wait_until_video_time(0.2)
    annotator.change(Keys.ARROW_UP, +0.25, shift=True)
    annotator.wait_until_video_time(1.0)
    annotator.stick(-0.6)  # pushed up: +0.6
    annotator.wait_until_video_time(1.8)
    annotator.change(Keys.ARROW_DOWN, -0.05)
    annotator.wait_until_video_time(2.5)
    # Back 2 s while playing: what follows overwrites what was recorded from there on.
    before, after = annotator.press(Keys.ARROW_LEFT)
    # The key came at a video time between `before` and `after + 2` (read after the seek) and
    # sent playback 2 s back, to between `before - 2` and `after`.
    annotator.runs[-1].end = after + 2
    replay = Run(start=before - 2, start_latest=after, value=annotator.value)
    annotator.runs.append(replay)
    annotator.wait_for("document.getElementById('video').currentTime < 1")
    annotator.wait_until_video_time(replay.start_latest + 0.4)
    annotator.stick(0.3)  # pulled down: -0.3
    annotator.wait_until_video_time(1.5)
    annotator.press(Keys.SPACE)  # pause
    annotator.wait_for("document.getElementById('video').paused")
    time.sleep(0.5)  # wall time passes, video time does not
    annotator.change(Keys.ARROW_UP, +0.25, shift=True)
    annotator.gamepad_button()  # play again
    annotator.wait_for("!document.getElementById('video').paused")
    annotator.wait_until_video_time(2.3)
    annotator.stick(-0.9)
    annotator.wait_until_video_time(3.0)
    annotator.change(Keys.ARROW_DOWN, -0.25, shift=True)
    annotator.wait_for("document.getElementById('video').ended", timeout=120)
    annotator.runs[-1].end = SECONDS

    browser.find_element("id", "save").click()
    annotator.wait_for("document.body.dataset.saved === 'done'", timeout=120)
    agreement = {
        row.get_attribute("data-annotator"): row.find_elements("tag name", "td")[1].text
        for row in browser.find_elements("css selector", "#agreement-table tbody tr")
    }
    return {"runs": annotator.runs, "agreement": agreement}


def test_the_list_shows_every_video_and_dimension(annotated, browser, server):
    browser.get(server.url)
    Annotator(browser).wait_for("document.querySelector('#videos tbody tr')")
    rows = browser.find_elements("css selector", "#videos tbody tr")
    assert [row.get_attribute("data-video") for row in rows] == list(DEMO)
    # The demo generated every annotator's traces, so a4's are done everywhere.
    assert all(cell.text == "done" for cell in browser.find_elements("css selector", "td a"))


def test_dragging_the_bar_sets_the_value_and_records_nothing_while_paused(
    annotated, browser, server, workspace
):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(f"{server.url}annotate/clip_b/valence")
    Annotator(browser).wait_for("document.body.dataset.state !== 'loading'", timeout=300)
    before = snapshot(workspace / "resources")
    bar = browser.find_element("id", "bar")
    height = bar.size["height"]
    # From a quarter above the middle (+0.5) down to a quarter below it (-0.5).
    ActionChains(browser).move_to_element_with_offset(bar, 0, -height // 4).click().perform()
    assert float(bar.get_attribute("aria-valuenow")) == pytest.approx(0.5, abs=VALUE_TOL)
    drag = ActionChains(browser).move_to_element_with_offset(bar, 0, -height // 4)
    drag.click_and_hold().move_by_offset(0, height // 2).release().perform()
    assert float(bar.get_attribute("aria-valuenow")) == pytest.approx(-0.5, abs=VALUE_TOL)
    assert snapshot(workspace / "resources") == before


def test_saved_trace_follows_the_scripted_path_in_video_time(annotated, workspace):
    trace = workspace / "resources/demo/annotations/clip_a" / f"{ME}.valence.csv"
    assert trace.read_text().startswith("time_s,value\n")
    times, values = read_trace(trace)
    n_frames = SECONDS * CLIP_FPS
    # One sample per clip frame, at the frame's own time: 25 a second of video, no gap.
    np.testing.assert_allclose(times, np.arange(n_frames) / CLIP_FPS, atol=1e-9)
    wrong = []
    for t, value in zip(times, values, strict=True):
        allowed = expected_values(t, annotated["runs"])
        if not any(abs(value - a) <= VALUE_TOL for a in allowed):
            wrong.append(f"{t:.2f} s: {value:+.3f}, expected one of {allowed}")
    assert not wrong, "\n".join(wrong)
    # Every scripted value made it in: the path is followed, not just tolerated.
    replay = annotated["runs"][1]
    assert np.isclose(values[times < replay.start - FRAME_S], 0.25, atol=VALUE_TOL).any()
    for _, _, value in replay.steps:
        assert np.isclose(values, value, atol=VALUE_TOL).any(), value
    assert not np.isclose(values, 0.6, atol=VALUE_TOL).any(), "the replay must overwrite +0.6"
    assert not (trace.parent / f"{ME}.valence.draft.csv").exists()


def test_rerun_touches_only_the_annotated_video(annotated, workspace):
    plan = run_snakemake(workspace, "--dry-run", "results/annotations.parquet")
    assert planned_jobs(plan.stdout) == {"annotate": 1, "database": 1}
    assert "video=clip_a" in plan.stdout and "video=clip_b" not in plan.stdout
    run_snakemake(workspace, "results/annotations.parquet")
    labels = pd.read_parquet(workspace / "results/annotations/clip_a.parquet")
    _, values = read_trace(workspace / "resources/demo/annotations/clip_a" / f"{ME}.valence.csv")
    np.testing.assert_allclose(labels[f"valence_{ME}"], values, atol=1e-6)


def test_page_shows_agreement_with_the_other_annotators(annotated, workspace):
    labels = pd.read_parquet(workspace / "results/annotations/clip_a.parquet")
    table = agreement_table(labels, ANNOTATORS)
    mine = table[(table["dimension"] == "valence") & (table["annotator_b"] == ME)]
    expected = {row.annotator_a: f"{row.pearson_r:.3f}" for row in mine.itertuples()}
    assert annotated["agreement"] == expected


def test_web_copy_has_the_clip_frames_on_the_25_fps_grid(annotated, workspace):
    def frames(path: Path) -> list[str]:
        argv = [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-map", "0:v"]
        argv += ["-f", "framemd5", "-"]
        lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return [line for line in lines.splitlines() if line and not line.startswith("#")]

    web = workspace / "results/web/clip_a.mp4"
    clip = workspace / "results/clips/clip_a.avi"
    # Same pts (frame f at f / 25 s) and the very same decoded pixels, frame by frame.
    assert frames(web) == frames(clip)
    assert len(frames(web)) == SECONDS * CLIP_FPS
    info = probe_video(web)
    assert info.fps == CLIP_FPS and info.has_audio


def test_web_copy_refuses_a_clip_that_is_not_25_fps(workspace, tmp_path):
    source = workspace / "resources/demo/sources/clip_a.mp4"  # 30 fps
    with pytest.raises(Affect4kError, match="clip_a.*30.*25 fps"):
        make_web_copy(source, tmp_path / "clip_a.mp4", video_id="clip_a")
    assert list(tmp_path.iterdir()) == []


def test_a_draft_resumes_and_never_reaches_the_pipeline(annotated, browser, server, workspace):
    folder = workspace / "resources/demo/annotations/clip_b"
    final = folder / f"{ME}.arousal.csv"
    before = final.read_bytes()
    partial = {"time_s": [f / CLIP_FPS for f in range(30)], "value": [0.1] * 30}
    url = "/api/traces/clip_b/arousal"
    plan_before = planned_jobs(
        run_snakemake(workspace, "--dry-run", "results/annotations.parquet").stdout
    )
    try:
        status, answer = request(server, "PUT", url, {**partial, "done": False})
        assert status == 200 and answer["status"] == {"done": True, "draft": True}
        assert read_trace(folder / f"{ME}.arousal.draft.csv")[0].size == 30
        status, answer = request(server, "GET", url)
        assert status == 200
        assert answer["values"][:30] == [0.1] * 30 and answer["values"][30:] == [None] * 70
        # The page continues where the draft stops, with the bar at the draft's last value.
        browser.get(f"{server.url}annotate/clip_b/arousal")
        Annotator(browser).wait_for("document.body.dataset.state !== 'loading'", timeout=300)
        position = browser.execute_script("return document.getElementById('video').currentTime")
        assert position == pytest.approx(30 / CLIP_FPS, abs=1e-3)
        assert float(browser.find_element("id", "bar").get_attribute("aria-valuenow")) == 0.1
        plan = run_snakemake(workspace, "--dry-run", "results/annotations.parquet")
        assert planned_jobs(plan.stdout) == plan_before, "a draft is no input of the workflow"
        status, answer = request(server, "PUT", url, {**partial, "done": True})
        # Refused with the count of frames the annotate stage would leave unlabelled.
        times, values = np.array(partial["time_s"]), np.array(partial["value"])
        unlabelled = int(np.isnan(resample_trace(times, values, SECONDS * CLIP_FPS)).sum())
        assert status == 422
        assert f"{unlabelled} of {SECONDS * CLIP_FPS} frames are not annotated" in answer["error"]
        assert final.read_bytes() == before
    finally:
        (folder / f"{ME}.arousal.draft.csv").unlink(missing_ok=True)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file() and ".snakemake" not in path.parts
    }


GOOD = {"time_s": [f / CLIP_FPS for f in range(100)], "value": [0.0] * 100, "done": True}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("GET", "/static/../server.py", None, None, 400),
        ("GET", "/static/..%2Fserver.py", None, None, 400),
        ("GET", "/static/%2e%2e%2f%2e%2e%2fconfig.yaml", None, None, 400),
        ("GET", "/static/server.py", None, None, 404),
        ("GET", "/media/..%2Fclips%2Fclip_a.avi", None, None, 400),
        ("GET", "/media/clip_a.avi", None, None, 404),
        ("GET", "/media/unknown.mp4", None, None, 404),
        ("GET", "/media/..%5C..%5Cconfig.mp4", None, None, 400),
        ("GET", "/media/%ff%fe.mp4", None, None, 400),
        ("GET", "/annotate/clip_a/dominance", None, None, 404),
        ("GET", "/api/traces/..%2F..%2Fconfig/valence", None, None, 400),
        ("GET", "/", None, {"Host": "evil.example:80"}, 403),
        ("PUT", "/api/traces/clip_a/dominance", GOOD, None, 404),
        ("PUT", "/api/traces/unknown/valence", GOOD, None, 404),
        ("PUT", "/api/traces/..%2Fclip_b/valence", GOOD, None, 400),
        ("PUT", "/api/traces/clip_a%00/valence", GOOD, None, 400),
        ("PUT", "/api/traces/clip_a/valence", b"{not json", None, 400),
        ("PUT", "/api/traces/clip_a/valence", GOOD, {"Content-Type": "text/plain"}, 415),
        ("PUT", "/api/traces/clip_a/valence", GOOD, {"Origin": "http://evil.example"}, 403),
        ("PUT", "/api/traces/clip_a/valence", b"", {"Content-Length": str(10**9)}, 413),
        ("PUT", "/api/traces/clip_a/valence", {**GOOD, "value": [2.0] * 100}, None, 422),
        ("PUT", "/api/traces/clip_a/valence", {**GOOD, "time_s": [0.0] * 100}, None, 422),
        (
            "PUT",
            "/api/traces/clip_a/valence",
            b'{"time_s": [0, NaN], "value": [0, 0], "done": false}',
            None,
            422,
        ),
        ("PUT", "/api/traces/clip_a/valence", {**GOOD, "done": "yes"}, None, 422),
        ("POST", "/api/traces/clip_a/valence", GOOD, None, 405),
    ],
)
def test_hostile_requests_get_4xx_and_write_nothing(
    annotated, server, workspace, method, path, body, headers, status
):
    # After the browser session, so clip_a's web copy exists and no build touches the files.
    before = snapshot(workspace)
    answer_status, answer = request(server, method, path, body, headers)
    assert answer_status == status, answer
    assert answer.get("error")
    assert snapshot(workspace) == before


def test_status_reads_the_trace_and_the_draft(tmp_path):
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"videos": "videos.tsv", "annotations": "traces"}))
    folder = tmp_path / "traces/clip_b"
    folder.mkdir(parents=True)
    (folder / f"{ME}.valence.csv").write_text("time_s,value\n0,0\n1,0\n")
    (folder / f"{ME}.arousal.draft.csv").write_text("time_s,value\n0,0\n1,0\n")
    (folder / "a1.arousal.csv").write_text("time_s,value\n0,0\n1,0\n")
    app = AnnotationApp.from_config(ME, config, workdir=tmp_path, snakefile=REPO / "Snakefile")
    overview = app.overview()
    assert overview["annotator"] == ME
    not_started = {"done": False, "draft": False}
    assert overview["videos"] == [
        {"video": "clip_a", "valence": not_started, "arousal": not_started},
        {
            "video": "clip_b",
            "valence": {"done": True, "draft": False},
            "arousal": {"done": False, "draft": True},
        },
    ]


def test_command_refuses_an_unknown_annotator_or_a_bad_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "Snakefile", tmp_path / "Snakefile")
    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(REPO / SCHEMA_PATH, tmp_path / SCHEMA_PATH)
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    good = {"videos": "videos.tsv", "annotations": "traces"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(good))
    assert cli.main(["annotate", "--annotator", "nobody", "--configfile", "config.yaml"]) == 1
    assert "'nobody' is not in the config key 'annotators'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**good, "annotators": "a1"}))
    assert cli.main(["annotate", "--annotator", "a1", "--configfile", "bad.yaml"]) == 1
    assert "bad.yaml" in capsys.readouterr().err
