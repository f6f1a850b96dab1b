"""The report in a real headless Chromium: every category walked through the report's own menu
and eye buttons, each figure decodes to a non-empty image and each table page shows its rows,
with no error on the console."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.browser import headless_chromium
from helpers.report import FIGURES
from helpers.workflow import run_snakemake

#: The report is built by the workflow: these tests run Snakemake too (the folder gives `browser`).
pytestmark = pytest.mark.workflow

#: The buttons that show a result, in the list of a category's results.
EYE_BUTTONS = "nav table a[iconname='eye']"


def _browser():
    driver = headless_chromium(console_log=True)
    driver.set_window_size(1400, 1000)
    return driver


def test_report_renders_every_figure_in_chromium(built: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    # A copy elsewhere: the page must not depend on any file beside it.
    page = tmp_path / "report.html"
    shutil.copy(built / "results/report.html", page)
    driver = _browser()
    seen, errors = [], []
    try:
        driver.get(page.as_uri())
        categories = driver.execute_script("return categories")
        assert sorted(categories) == [
            "1. Results",
            "2. Training",
            "3. Database",
            "4. Quality control",
        ]
        for category, subcategories in categories.items():
            driver.get(page.as_uri())
            wait = WebDriverWait(driver, 20)
            link = (By.XPATH, f"//nav//a[normalize-space()='{category}']")
            # Clicks are dispatched to the element itself, so the menu's slide-in animation
            # cannot make them land beside it; React handles them as a user's click.
            click(driver, wait.until(expected_conditions.presence_of_element_located(link)))
            buttons = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, EYE_BUTTONS))
            assert len(buttons) == sum(len(paths) for paths in subcategories.values())
            for index in range(len(buttons)):
                before = driver.execute_script("return app.state.resultPath")
                click(driver, driver.find_elements(By.CSS_SELECTOR, EYE_BUTTONS)[index])
                path = wait.until(
                    lambda d, before=before: d.execute_script(
                        "const path = app.state.resultPath; return path !== arguments[0] && path",
                        before,
                    )
                )
                seen.append(_check_shown(driver, wait, path))
            errors += [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert not errors, errors
    assert sorted(seen) == sorted(FIGURES)


def click(driver, element) -> None:
    driver.execute_script("arguments[0].click()", element)


def _check_shown(driver, wait, path: str) -> str:
    """``path``, after checking that the result shown rendered (an image or a table page)."""
    from selenium.webdriver.common.by import By

    if path.endswith(".png"):
        shown = driver.execute_script("return app.state.contentPath")
        image = wait.until(
            lambda d: next(
                (img for img in d.find_elements(By.CSS_SELECTOR, "div.p-3 > img")
                 if img.get_attribute("src") == shown),
                None,
            )
        )  # fmt: skip
        wait.until(lambda d: d.execute_script("return arguments[0].complete", image))
        size = driver.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image
        )
        assert min(size) > 100, f"{path} rendered as {size}"
    else:
        frame = wait.until(lambda d: d.find_element(By.TAG_NAME, "iframe"))
        driver.switch_to.frame(frame)
        try:
            assert wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tbody tr"))
            # Clicking the first header sorts the first table by its first column, both ways.
            header = driver.find_element(By.CSS_SELECTOR, "table:first-of-type th")
            column = "table:first-of-type tbody td:first-child"
            header.click()
            cells = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, column)]
            assert cells == sorted(cells), path
            header.click()
            cells = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, column)]
            assert cells == sorted(cells, reverse=True), path
        finally:
            driver.switch_to.default_content()
    return path


def test_the_quality_control_sheet_of_a_dissolve_shows_its_verification_in_chromium(
    tmp_path: Path,
):
    """A user's study of one clip (a 12-frame dissolve from A to G and back, affect4k.demo.
    transitions): its QC sheet, opened in the report in Chromium, shows the subject verified
    before and after and the other person rejected in between, on the timeline's colours."""
    from affect4k.demo.transitions import transition_video
    from affect4k.report.plots import VERIFICATION_COLOURS

    work = tmp_path / "study"
    (work / "clips").mkdir(parents=True)
    truth = transition_video(work / "clips" / "dissolve.mp4", "dissolve")
    (work / "videos.tsv").write_text(
        "video_id\turl\tstart\tend\ndissolve\tclips/dissolve.mp4\t\t\n"
    )
    (work / "config.yaml").write_text(
        "videos: videos.tsv\nannotations: annotations\nannotators: [a1]\ntraining:\n  runs: {}\n"
    )
    target = "results/report/qc/dissolve.png"
    run_snakemake(work, target)
    run_snakemake(work, "--report", "results/report.html", target)
    faces = pd.read_parquet(work / "results/faces/dissolve.parquet")
    other = truth[(truth["person"] == "G") & (truth["weight"] >= 0.5)]["frame"].unique()
    assert set(faces.loc[other, "verification"]) == {"rejected"}
    assert (faces["verification"] == "verified").mean() > 0.7

    driver = _browser()
    try:
        driver.get((work / "results/report.html").as_uri())
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.wait import WebDriverWait

        wait = WebDriverWait(driver, 20)
        # A report of one category opens on its menu's root: Results, then the category.
        for name in ("Results", "4. Quality control"):
            link = (By.XPATH, f"//nav//a[normalize-space()='{name}']")
            click(driver, wait.until(lambda d, link=link: d.find_element(*link)))
        click(driver, wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, EYE_BUTTONS))[0])
        path = wait.until(lambda d: d.execute_script("return app.state.resultPath"))
        assert _check_shown(driver, wait, path) == target
        shot = tmp_path / "qc.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    # The page shows the timeline: its verified green and rejected red, in the screenshot.
    pixels = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB).reshape(-1, 3).astype(int)
    for state in ("verified", "rejected"):
        colour = np.array([int(VERIFICATION_COLOURS[state][i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - colour).max(axis=1) <= 8).sum() > 2000, state
