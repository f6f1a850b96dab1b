"""``affect4k annotate`` in a real browser (headless Chromium) on a small demo workspace.

One workspace is built once (two 4-second 640x360 demo clips through the real workflow up to
``results/annotations.parquet``), one app server runs over it as annotator ``a4``, and one
browser session annotates ``clip_a``'s valence from scratch along a scripted path: keyboard and
a simulated gamepad, a pause with a change while paused, a seek back whose replay follows the
recorded trace until the stick moves and overwrites from there, then save.
Headless playback speed varies, so the expected path is built from the video times the page
reports just before and just after each scripted input.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from helpers.annotation_app import (
    ANNOTATORS,
    DEMO,
    FRAME_S,
    ME,
    SECONDS,
    VALUE_TOL,
    Annotator,
    Run,
    app_of,
    curve,
    http_request,
    raw_exchange,
    request,
)
from helpers.sources import framemd5
from helpers.workflow import planned_jobs, run_snakemake

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.app import AnnotationApp
from affect4k.commands.annotation_app.server import AppServer, allowed_hosts
from affect4k.commands.annotation_app.trace_store import StaleTrace
from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.media import iter_frames, probe_video
from affect4k.labels.calibration import CALIBRATION_ID
from affect4k.labels.database import agreement_table
from affect4k.labels.traces import read_trace, resample_trace

#: The workspace the app serves is built by the workflow: these tests run Snakemake too (the
#: folder gives `browser`).
pytestmark = pytest.mark.workflow


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


def expected_values(t: float, runs: list[Run]) -> list[float]:
    """What a saved sample at ``t`` may be: the latest run that played ``t`` wins (a replay
    overwrites), and within a frame of a run's edge the neighbour run is allowed too."""
    allowed: list[float] = []
    for run in reversed(runs):
        settled = run.start if run.start_latest is None else run.start_latest
        if run.follows:  # before its first step, the earlier runs' values stand
            settled = run.steps[0][1] if run.steps else run.end
        if run.start - FRAME_S <= t <= run.end + FRAME_S:
            allowed += run.values_near(t)
        if settled + FRAME_S <= t <= run.end - FRAME_S:
            break
    return allowed


@pytest.fixture(scope="module")
def annotated(workspace: Path, server: AppServer, browser) -> dict:
    """Annotate clip_a's valence in the browser along a scripted path and save it."""
    from selenium.webdriver.common.keys import Keys

    # From scratch: the demo's trace of a4 would otherwise be followed, not overwritten.
    (workspace / "resources/demo/annotations/clip_a" / f"{ME}.valence.csv").unlink()
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
    replay = Run(start=before - 2, start_latest=after, value=annotator.value, follows=True)
    annotator.runs.append(replay)
    annotator.wait_for("document.getElementById('video').currentTime < 1")
    # Before the first run's +0.6 (from 1.0 s), so that value is overwritten, not followed.
    annotator.wait_until_video_time(replay.start_latest + 0.15)
    annotator.stick(0.3)  # pulled down: -0.3
    annotator.wait_until_video_time(1.5)
    annotator.press(Keys.SPACE)  # pause
    annotator.wait_for("document.getElementById('video').paused")
    time.sleep(0.5)  # wall time passes, video time does not
    annotator.change(Keys.ARROW_UP, +0.25, shift=True)
    annotator.gamepad_button()  # play again
    annotator.wait_for("!document.getElementById('video').paused")
    # The frames between the position read at the pause and where playback resumes played
    # with the value from before the pause: the change takes effect from the resume on.
    earliest, latest, value = annotator.runs[-1].steps[-1]
    annotator.runs[-1].steps[-1] = (earliest, max(latest, annotator.time()), value)
    annotator.wait_until_video_time(2.3)
    annotator.stick(-0.9)
    annotator.wait_until_video_time(3.0)
    annotator.change(Keys.ARROW_DOWN, -0.25, shift=True)
    annotator.wait_for("document.getElementById('video').ended", timeout=120)
    annotator.runs[-1].end = SECONDS

    browser.find_element("id", "save").click()
    annotator.wait_for("document.body.dataset.saved === 'done'", timeout=120)
    agreement = {
        table: {
            row.get_attribute("data-annotator"): row.find_elements("tag name", "td")[1].text
            for row in browser.find_elements("css selector", f"#agreement-{table} tbody tr")
        }
        for table in ("video", "pooled")
    }
    captions = [e.text for e in browser.find_elements("css selector", "#agreement figcaption")]
    return {"runs": annotator.runs, "agreement": agreement, "captions": captions}


def test_the_list_shows_every_video_and_dimension(annotated, browser, server):
    browser.get(server.url)
    Annotator(browser).wait_for("document.querySelector('#videos tbody tr')")
    rows = browser.find_elements("css selector", "#videos tbody tr")
    # The calibration clip first, not traced yet.
    assert [row.get_attribute("data-video") for row in rows] == [CALIBRATION_ID, *DEMO]
    calibration = rows[0].find_elements("css selector", "td a")
    assert [cell.text for cell in calibration] == ["not started"] * 2
    # The demo generated every annotator's traces, so a4's are done on every video.
    assert all(
        cell.text == "done"
        for row in rows[1:]
        for cell in row.find_elements("css selector", "td a")
    )


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
    # The first run's +0.25, kept where the replay only followed it (before its first move).
    assert np.isclose(values[times < replay.steps[0][0] - FRAME_S], 0.25, atol=VALUE_TOL).any()
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


def test_page_shows_agreement_per_video_and_pooled(annotated, workspace):
    run_snakemake(workspace, "results/annotations.parquet")
    labels = pd.read_parquet(workspace / "results/annotations/clip_a.parquet")
    pooled = pd.read_csv(workspace / "results/agreement.csv")
    for name, table in (("video", agreement_table(labels, ANNOTATORS)), ("pooled", pooled)):
        mine = table[(table["dimension"] == "valence") & (table["annotator_b"] == ME)]
        expected = {row.annotator_a: f"{row.pearson_r:.3f}" for row in mine.itertuples()}
        assert annotated["agreement"][name] == expected, name
    # The two differ (two videos pooled), and each says which it is.
    assert annotated["agreement"]["video"] != annotated["agreement"]["pooled"]
    assert annotated["captions"][0] == "On this video"
    assert annotated["captions"][1].startswith("Pooled over all 2 videos")
    assert "agreement.csv" in annotated["captions"][1]


def test_web_copy_of_an_mpeg4_clip_is_h264_on_the_clips_frame_grid(annotated, workspace):
    """The default clips (mpeg4) are re-encoded: every frame at its clip frame's time, as
    close to it as the clips are to their sources."""
    web = workspace / "results/web/clip_a.mp4"
    clip = workspace / "results/clips/clip_a.avi"
    assert probe_video(clip).codec == "mpeg4"
    info = probe_video(web)
    assert info.codec == "h264" and info.fps == CLIP_FPS and info.has_audio
    # pts and duration, both in a 1/25 s time base: frame f at f / 25 s
    assert [line[2:4] for line in framemd5(web)] == [line[2:4] for line in framemd5(clip)]
    assert [int(line[2]) for line in framemd5(web)] == list(range(SECONDS * CLIP_FPS))
    for f, (copy, frame) in enumerate(zip(iter_frames(web), iter_frames(clip), strict=True)):
        error = float(np.mean((copy.astype(np.float32) - frame) ** 2))
        assert 10 * np.log10(255**2 / max(error, 1e-9)) > 40, f"frame {f}: MSE {error}"


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
        version = request(server, "GET", url)[1]["version"]
        status, answer = request(server, "PUT", url, {**partial, "done": False, "version": version})
        assert status == 200 and answer["status"] == {"done": True, "draft": True, "skipped": False}
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
        status, answer = request(
            server, "PUT", url, {**partial, "done": True, "version": answer["version"]}
        )
        # Refused with the count of frames the annotate stage would leave unlabelled.
        times, values = np.array(partial["time_s"]), np.array(partial["value"])
        max_gap_s = schema_default("annotation.max_gap_s")
        resampled = resample_trace(times, values, SECONDS * CLIP_FPS, max_gap_s=max_gap_s)
        unlabelled = int(np.isnan(resampled).sum())
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
        ("GET", "/media/clip_a.mp4", None, {"Range": f"bytes={'9' * 5000}-"}, 416),
        ("GET", "/media/clip_a.mp4", None, {"Range": "bytes=99999999-"}, 416),
        ("PUT", "/api/traces/clip_a/valence", b"[" * 100_000, None, 400),
        ("PUT", "/api/traces/clip_a/valence", {**GOOD, "version": "0" * 16}, None, 409),
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


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH", "OPTIONS", "GET"])
def test_a_request_cannot_carry_another_in_its_body(annotated, server, workspace, method):
    # What a page elsewhere can send without a preflight (a text/plain POST), whose body is a
    # complete, valid PUT of a trace: it must never be read as a request of its own.
    url = "/api/traces/clip_a/valence"
    trace = workspace / "resources/demo/annotations/clip_a" / f"{ME}.valence.csv"
    before = trace.read_bytes()
    host = f"127.0.0.1:{server.server_address[1]}"
    payload = {**GOOD, "value": [0.5] * 100, "version": request(server, "GET", url)[1]["version"]}
    body = json.dumps(payload).encode()
    inner = http_request(
        "PUT", url, host, {"Content-Type": "application/json", "Content-Length": len(body)}, body
    )
    path = "/api/videos" if method == "GET" else url
    outer = {"Content-Type": "text/plain", "Content-Length": len(inner)}
    answer = raw_exchange(server, http_request(method, path, host, outer, inner))
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:2000]
    assert answer.startswith(b"HTTP/1.1 200" if method == "GET" else b"HTTP/1.1 405")
    assert trace.read_bytes() == before
    assert not trace.with_name(f"{ME}.valence.draft.csv").exists()


def test_a_head_answer_has_no_body(annotated, server):
    host = f"127.0.0.1:{server.server_address[1]}"
    answer = raw_exchange(server, http_request("HEAD", "/api/videos", host, {}))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405") and b"Connection: close" in head
    assert body == b""


def test_concurrent_writers_never_fail_each_other(annotated, workspace):
    # Two servers over one folder (each with its own in-process state), four writers each.
    apps = [app_of(workspace), app_of(workspace)]
    for app in apps:
        app.copies.frames("clip_a")
    files = apps[0].files("clip_a", "arousal")
    errors: list[Exception] = []
    saved = []

    def writer(app: AnnotationApp, index: int) -> None:
        for round_ in range(8):
            value = round((index * 8 + round_) / 100, 4)
            payload = {"time_s": [f / CLIP_FPS for f in range(50)], "value": [value] * 50}
            while True:
                version = files.version()
                try:
                    app.save("clip_a", "arousal", {**payload, "done": False, "version": version})
                except StaleTrace:
                    continue  # another writer saved in between: load again, as a page would
                except Affect4kError as error:
                    errors.append(error)
                    return
                saved.append(value)
                break

    threads = [
        threading.Thread(target=writer, args=(app, index)) for index, app in enumerate(apps * 4)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(saved) == 64
        # The draft holds one writer's whole trace, and no temp file is left behind.
        _, values = read_trace(files.draft)
        assert len(set(values)) == 1 and values[0] in saved
        assert not [p.name for p in files.draft.parent.iterdir() if p.name.startswith(".tmp")]
        # A tab that loaded before the last save is refused, and writes nothing.
        stale = "0" * 16
        before = files.draft.read_bytes()
        with pytest.raises(StaleTrace, match="saved elsewhere.*reload"):
            apps[1].save("clip_a", "arousal", {**payload_of(0.9), "done": False, "version": stale})
        assert files.draft.read_bytes() == before
    finally:
        files.draft.unlink(missing_ok=True)


def payload_of(value: float, frames: int = 50) -> dict:
    return {"time_s": [f / CLIP_FPS for f in range(frames)], "value": [value] * frames}


def test_a_build_of_one_video_never_holds_up_another(annotated, workspace):
    app = app_of(workspace)
    app.copies.frames("clip_a")
    copies = app.copies
    copies._snakemake.acquire()  # as if another video's long build were running
    try:
        waiting = threading.Thread(target=copies.frames, args=("clip_b",), daemon=True)
        waiting.start()
        deadline = time.monotonic() + 60
        while copies.progress("clip_b") is None:
            assert time.monotonic() < deadline, "clip_b's build never reported its progress"
            time.sleep(0.01)
        assert copies.progress("clip_b") == {
            "target": "results/web/clip_b.mp4",
            "waiting": True,
            "done": 0,
            "total": None,
        }
        # clip_a's web copy is known: its draft saves while clip_b waits for Snakemake.
        files = app.files("clip_a", "arousal")
        saver = threading.Thread(
            target=app.save,
            args=(
                "clip_a",
                "arousal",
                {**payload_of(0.1), "done": False, "version": files.version()},
            ),
            daemon=True,
        )
        saver.start()
        saver.join(timeout=120)
        assert not saver.is_alive() and files.draft.is_file()
    finally:
        copies._snakemake.release()
        app.files("clip_a", "arousal").draft.unlink(missing_ok=True)
    waiting.join(timeout=300)
    assert copies.progress("clip_b") is None


def test_idle_clients_are_bounded_and_timed_out(annotated, workspace):
    server = AppServer(app_of(workspace), "127.0.0.1", 0, max_connections=2, request_timeout=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def handlers() -> int:
        return sum("process_request_thread" in t.name for t in threading.enumerate())

    before = handlers()  # other servers' (the browser keeps connections open)
    idle = [socket.create_connection(server.server_address[:2], timeout=60) for _ in range(4)]
    try:
        counts = []
        for _ in range(20):
            counts.append(handlers() - before)
            time.sleep(0.05)
        assert max(counts) <= 2
        # Each silent connection is closed by the server in turn, and then a request is served.
        for sock in idle:
            assert sock.recv(1) == b""
        status, answer = request(server, "GET", "/api/videos")
        assert status == 200 and answer["annotator"] == ME
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_dropped_media_download_is_quiet(annotated, server, capfd):
    host = f"127.0.0.1:{server.server_address[1]}"
    with socket.socket() as sock:
        # A small receive window keeps the server mid-write; then a reset, not a polite close.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(60)
        sock.connect(server.server_address[:2])
        sock.sendall(http_request("GET", "/media/clip_a.mp4", host, {}))
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    status, _ = request(server, "GET", "/api/videos")
    assert status == 200
    # What the server does with a connection error escaping a handler (socketserver's default
    # prints a traceback for each): one quiet line.
    for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
        try:
            raise error
        except OSError:
            server.handle_error(None, ("127.0.0.1", 1))
    assert "Traceback" not in capfd.readouterr().err


def test_host_names_on_port_80_and_on_every_address(annotated, workspace):
    assert allowed_hosts("127.0.0.1", 80) == {
        "127.0.0.1:80",
        "localhost:80",
        "[::1]:80",
        "127.0.0.1",
        "localhost",
        "[::1]",
    }
    assert "localhost" not in allowed_hosts("127.0.0.1", 8025)
    everywhere = allowed_hosts("0.0.0.0", 8025, ["annotate.lan", "192.168.1.20"])
    assert everywhere == {
        "127.0.0.1:8025",
        "localhost:8025",
        "[::1]:8025",
        "annotate.lan:8025",
        "192.168.1.20:8025",
    }
    server = AppServer(app_of(workspace), "0.0.0.0", 0, allow_hosts=["annotate.lan"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert (
            request(server, "GET", "/api/videos", headers={"Host": f"annotate.lan:{port}"})[0]
            == 200
        )
        assert (
            request(server, "GET", "/api/videos", headers={"Host": f"evil.example:{port}"})[0]
            == 403
        )
    finally:
        server.shutdown()
        server.server_close()


def test_a_skipped_trace_shows_as_skipped_and_is_left_out(annotated, server, browser, workspace):
    folder = workspace / "resources/demo/annotations/clip_b"
    mine, theirs = folder / f"{ME}.arousal.csv", folder / "a2.valence.csv"
    kept = {path: path.read_bytes() for path in (mine, theirs)}
    try:
        mine.write_text("skipped\nnot my language\n")
        theirs.write_text("skipped\n")
        status, answer = request(server, "GET", "/api/traces/clip_b/arousal")
        assert status == 200, answer
        assert answer["status"] == {"done": False, "draft": False, "skipped": True}
        assert answer["values"] is None
        status, answer = request(server, "GET", "/api/traces/clip_b/valence")
        assert status == 200, answer
        assert answer["agreement"]["skipped"] == ["a2"]
        pairs = {p["annotator"]: p for p in answer["agreement"]["video"]["pairs"]}
        assert pairs["a2"] == {"annotator": "a2", "pearson_r": None, "frames": 0}
        assert pairs["a1"]["frames"] == SECONDS * CLIP_FPS
        browser.get(server.url)
        Annotator(browser).wait_for("document.querySelector('#videos tbody tr')")
        cell = "tr[data-video='clip_b'] td[data-dimension='arousal'] a"
        assert browser.find_element("css selector", cell).text == "skipped"
        browser.get(f"{server.url}annotate/clip_b/valence")
        Annotator(browser).wait_for("document.body.dataset.state === 'ready'", timeout=300)
        row = browser.find_element("css selector", "#agreement-video tr[data-annotator='a2']")
        assert row.find_elements("tag name", "td")[1].text == "skipped"
    finally:
        for path, data in kept.items():
            path.write_bytes(data)


def bar_value(browser) -> float:
    return float(browser.find_element("id", "bar").get_attribute("aria-valuenow"))


def test_reopening_a_finished_trace_follows_it_and_replay_changes_nothing(
    annotated, server, browser, workspace
):
    from selenium.webdriver.common.keys import Keys

    url = "/api/traces/clip_b/valence"
    values = curve(SECONDS * CLIP_FPS)
    times = [f / CLIP_FPS for f in range(len(values))]
    version = request(server, "GET", url)[1]["version"]
    payload = {"time_s": times, "value": values, "done": True, "version": version}
    assert request(server, "PUT", url, payload)[0] == 200
    trace = workspace / "resources/demo/annotations/clip_b" / f"{ME}.valence.csv"
    before = trace.read_bytes()
    browser.get(f"{server.url}annotate/clip_b/valence")
    annotator = Annotator(browser)
    annotator.wait_for("document.body.dataset.state === 'ready'", timeout=300)
    # The bar starts on the trace's first value, and follows it when the position jumps.
    assert bar_value(browser) == pytest.approx(values[0], abs=0.005)
    annotator.press(Keys.ARROW_RIGHT)
    annotator.wait_for("!document.getElementById('video').seeking")
    frame = round(annotator.time() * CLIP_FPS)
    assert bar_value(browser) == pytest.approx(values[frame], abs=0.005)
    # Playing it through without touching anything changes nothing and saves nothing.
    annotator.press(Keys.ARROW_LEFT)
    annotator.wait_for("!document.getElementById('video').seeking")
    annotator.press(Keys.SPACE)
    annotator.wait_for("document.getElementById('video').ended", timeout=120)
    time.sleep(0.5)  # a save would have been sent on the pause at the end
    assert browser.execute_script("return document.body.dataset.unsaved") == "false"
    assert not trace.with_name(f"{ME}.valence.draft.csv").exists()
    assert trace.read_bytes() == before
    browser.find_element("id", "save").click()
    annotator.wait_for("document.body.dataset.saved === 'done'", timeout=60)
    assert trace.read_bytes() == before
    # The strip's axis: labelled -1..+1 and tall enough that 0.1 spans 10 px or more.
    ticks = [e.text for e in browser.find_elements("css selector", "#axis .tick")]
    assert ticks == ["+1", "+0.5", "0", "\u22120.5", "\u22121"]
    assert browser.find_element("id", "axis-title").text == "valence"
    height = browser.execute_script("return document.getElementById('timeline').clientHeight")
    assert height * 0.1 / 2 >= 10


def test_a_failed_save_stays_unsaved_until_a_save_succeeds(annotated, browser, workspace):
    """The server stops mid-session: the work stays unsaved (leaving asks first), the error
    clears once playback resumes and once a save succeeds, and a save from a stale tab is
    refused with the reason on the page."""
    from selenium.webdriver.common.keys import Keys

    app = app_of(workspace)

    def serve(port: int) -> AppServer:
        server = AppServer(app, "127.0.0.1", port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    own = serve(0)
    port = own.server_address[1]
    draft = workspace / "resources/demo/annotations/clip_b" / f"{ME}.arousal.draft.csv"
    annotator = Annotator(browser)
    leaving_asks = (
        "const e = new Event('beforeunload', {cancelable: true});"
        "window.dispatchEvent(e); return e.defaultPrevented;"
    )

    def annotate_a_bit() -> None:
        annotator.press(Keys.ARROW_UP)
        annotator.press(Keys.SPACE)
        annotator.wait_until_video_time(annotator.time() + 0.3)
        annotator.press(Keys.SPACE)
        annotator.wait_for("document.getElementById('video').paused")

    try:
        browser.get(f"{own.url}annotate/clip_b/arousal")
        annotator.wait_for("document.body.dataset.state === 'ready'", timeout=300)
        annotate_a_bit()
        annotator.wait_for("document.body.dataset.saved === 'draft'")
        assert draft.is_file() and not browser.execute_script(leaving_asks)
        own.shutdown()
        own.server_close()
        annotate_a_bit()
        annotator.wait_for("document.getElementById('message').className === 'error'")
        assert "not saved" in browser.find_element("id", "message").text
        assert browser.execute_script("return document.body.dataset.unsaved") == "true"
        assert browser.execute_script(leaving_asks)
        annotator.press(Keys.SPACE)  # playing again: the stale error goes
        annotator.wait_for("document.getElementById('message').className !== 'error'")
        annotator.press(Keys.SPACE)
        annotator.wait_for("document.getElementById('message').className === 'error'")
        assert browser.execute_script(leaving_asks)
        own = serve(port)  # the server is back
        browser.find_element("id", "save-draft").click()
        annotator.wait_for("document.getElementById('message').textContent.startsWith('draft')")
        assert browser.execute_script("return document.body.dataset.unsaved") == "false"
        assert not browser.execute_script(leaving_asks)
        # Another tab saves; this one, which has not seen that save, is refused and says why.
        url = "/api/traces/clip_b/arousal"
        version = request(own, "GET", url)[1]["version"]
        other = {**payload_of(-0.5), "done": False, "version": version}
        assert request(own, "PUT", url, other)[0] == 200
        theirs = draft.read_bytes()
        annotate_a_bit()
        annotator.wait_for("document.getElementById('message').className === 'error'")
        assert "saved elsewhere" in browser.find_element("id", "message").text
        assert draft.read_bytes() == theirs
        assert browser.execute_script(leaving_asks)
    finally:
        own.shutdown()
        own.server_close()
        draft.unlink(missing_ok=True)


def test_web_copy_builds_show_progress(annotated, browser, workspace):
    (workspace / "results/web/clip_b.mp4").unlink()
    server = AppServer(app_of(workspace), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    record = """new MutationObserver(() => {
      const text = document.getElementById('message').textContent;
      (window.__messages = window.__messages || []).push(text);
    }).observe(document.getElementById('message'), {childList: true, characterData: true,
      subtree: true});"""
    try:
        browser.get(f"{server.url}annotate/clip_b/valence")
        browser.execute_script(record)
        Annotator(browser).wait_for("document.body.dataset.state !== 'loading'", timeout=300)
        messages = browser.execute_script("return window.__messages")
        building = [m for m in messages if m.startswith("building results/web/clip_b.mp4")]
        assert building, messages
        assert (workspace / "results/web/clip_b.mp4").is_file()
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_draws_the_subjects_box_where_the_database_crops(server, browser, workspace):
    """The box the faces stage chose, per frame, over the picture (toggle, default on); none
    for a video whose faces stage has not run."""
    faces = pd.read_parquet(workspace / "results/faces/clip_a.parquet")
    status, answer = request(server, "GET", "/api/subject/clip_a")
    assert status == 200, answer
    boxes = answer["boxes"]
    assert len(boxes) == len(faces)
    for box, row in zip(boxes, faces.itertuples(), strict=True):
        if row.face:
            assert box == pytest.approx([row.x1, row.y1, row.x2, row.y2], abs=0.05)
        else:
            assert box is None
    frame = int(np.flatnonzero(faces["face"].to_numpy())[len(faces) // 3])

    browser.get(f"{server.url}annotate/clip_a/arousal")
    annotator = Annotator(browser)
    annotator.wait_for("document.body.dataset.state === 'ready'", timeout=300)
    assert browser.find_element("id", "show-subject").is_selected(), "on by default"
    target = (frame + 0.5) / CLIP_FPS
    browser.execute_script(f"document.getElementById('video').currentTime = {target}")
    annotator.wait_for(
        f"!document.getElementById('video').seeking && "
        f"Math.abs(document.getElementById('video').currentTime - {target}) < 1e-3"
    )
    x1, y1, x2, y2 = boxes[frame]
    measure = f"""const v = document.getElementById('video');
        const r = v.getBoundingClientRect();
        const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
        const left = r.left + (r.width - s * v.videoWidth) / 2;
        const top = r.top + (r.height - s * v.videoHeight) / 2;
        const box = document.getElementById('subject-box');
        const b = box.getBoundingClientRect();
        return [box.hidden, [b.left, b.top, b.right, b.bottom],
                [left + s * {x1}, top + s * {y1}, left + s * {x2}, top + s * {y2}]];"""
    # The page redraws the box on its next animation frame after the seek.
    deadline = time.monotonic() + 30
    while True:
        hidden, drawn, expected = browser.execute_script(measure)
        if not hidden and drawn == pytest.approx(expected, abs=2):
            break
        assert time.monotonic() < deadline, (hidden, drawn, expected)
        time.sleep(0.05)
    browser.find_element("id", "show-subject").click()
    annotator.wait_for("document.getElementById('subject-box').hidden")
    assert browser.execute_script("return document.activeElement.id") != "show-subject"

    table = workspace / "results/faces/clip_b.parquet"
    moved = table.with_name("clip_b.parquet.away")
    table.rename(moved)
    try:
        assert request(server, "GET", "/api/subject/clip_b") == (200, {"boxes": None})
    finally:
        moved.rename(table)
