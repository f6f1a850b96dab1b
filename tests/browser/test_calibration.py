"""A scripted annotator follows the calibration clip in headless Chromium with a known delay,
and the app measures it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers.annotation_app import ANNOTATORS, DELAY_S, ME, Annotator, request

from affect4k import CLIP_FPS
from affect4k.labels.calibration import CALIBRATION_ID, FRAMES, calibration_table, trace_path, truth

#: Follows the known signal with ↑/↓ key events, ``DELAY_S`` late in video time: on every
#: animation frame, one step towards the value the signal had ``DELAY_S`` before the frame the
#: key lands on (the page records a change from the first frame at or after its video time).
FOLLOW = """
const [targets, fps] = arguments;
const video = document.getElementById("video");
const bar = document.getElementById("bar");
const follow = () => {
  const landing = Math.ceil(video.currentTime * fps - 1e-6);
  const target = targets[Math.min(targets.length - 1, landing)];
  const now = Number(bar.getAttribute("aria-valuenow"));
  const key = target - now > 0.025 ? "ArrowUp" : now - target > 0.025 ? "ArrowDown" : null;
  if (key) document.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
  if (!video.ended) requestAnimationFrame(follow);
};
requestAnimationFrame(follow);
"""


def test_calibration_recovers_a_known_keyboard_delay(calibration_app, browser):
    from selenium.webdriver.common.keys import Keys

    server, work = calibration_app
    browser.get(server.url)
    annotator = Annotator(browser)
    annotator.wait_for("document.querySelector('#videos tbody tr')")
    link = browser.find_element(
        "css selector", f"tr[data-video='{CALIBRATION_ID}'] td[data-dimension='valence'] a"
    )
    assert link.text == "not started"
    link.click()
    annotator.wait_for("document.body.dataset.state !== 'loading'", timeout=300)
    assert browser.execute_script("return document.body.dataset.state") == "ready"
    shown = browser.find_element("id", "calibration").text
    assert "shown once your trace is saved" in shown
    late = truth("valence", np.maximum(np.arange(FRAMES) / CLIP_FPS - DELAY_S, 0.0))
    browser.execute_script(FOLLOW, late.tolist(), CLIP_FPS)
    annotator.wait_for(f"Math.abs(document.getElementById('bar').ariaValueNow - {late[0]}) < 0.03")
    annotator.press(Keys.SPACE)  # play
    annotator.wait_for("document.getElementById('video').ended", timeout=120)
    browser.find_element("id", "save").click()
    annotator.wait_for("document.body.dataset.saved === 'done'", timeout=120)
    result = browser.find_element("id", "calibration")
    lag_s = float(result.get_attribute("data-lag"))
    assert abs(lag_s - DELAY_S) <= 2 / CLIP_FPS, result.text
    assert float(result.get_attribute("data-ccc")) > 0.9, result.text
    assert result.text.startswith(f"Your reaction lag: {lag_s:.2f} s")
    # Stored where the calibration stage reads it, measured the same there; no video's folder.
    annotations = work / "resources/demo/annotations"
    saved = trace_path(annotations, ME, "valence")
    assert [path.relative_to(annotations) for path in annotations.rglob("*.csv")] == [
        saved.relative_to(annotations)
    ]
    out = work / "results/calibration.csv"
    calibration_table(annotations, ANNOTATORS, out)
    row = pd.read_csv(out).iloc[0]
    assert (row.annotator, row.dimension, row.lag_s) == (ME, "valence", lag_s)
    status, answer = request(server, "GET", "/api/videos")
    assert status == 200 and answer["calibration"]["valence"]["done"]
    assert CALIBRATION_ID not in [entry["video"] for entry in answer["videos"]]
