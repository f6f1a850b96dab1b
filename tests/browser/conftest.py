"""The Chromium session the annotation app's browser tests drive, with a simulated gamepad."""

from __future__ import annotations

import pytest
from helpers.browser import headless_chromium

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


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(
        "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900"
    )
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_GAMEPAD})
    yield driver
    driver.quit()
