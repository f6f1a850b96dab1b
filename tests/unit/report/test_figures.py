"""The Snakemake report: its figures come from the workflow's outputs and render in Chromium.

The tiny study (conftest) is built once; the default target then makes every figure and
``snakemake --report`` embeds them. A real headless Chromium opens the report, walks every
category through the report's own menu and eye buttons, and checks that each figure decodes
to a non-empty image and each table page shows its rows, with no error on the console.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.browser import headless_chromium
from helpers.workflow import run_snakemake

from affect4k import CLIP_FPS
from affect4k.core.columns import ABLATION_COLUMNS, TABLE_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.report import figures as report

#: The buttons that show a result, in the list of a category's results.
EYE_BUTTONS = "nav table a[iconname='eye']"
FIGURES = [
    "results/report/results.html",
    "results/report/results.png",
    "results/report/predictions.png",
    "results/report/training/tiny.png",
    "results/report/database.html",
    "results/report/database.png",
    "results/report/agreement.png",
    "results/report/annotators.png",
    *(f"results/report/qc/{video}.png" for video in ("tiny_a", "tiny_b", "tiny_c")),
]


@pytest.fixture(scope="module")
def built(tiny_study: Path) -> Path:
    """The tiny study after the default target (figures) and ``--report``."""
    run_snakemake(tiny_study)
    run_snakemake(tiny_study, "--report", "results/report.html")
    return tiny_study


def embedded_results(report_html: Path) -> dict[str, dict]:
    """The ``results`` object the report's page script holds (path -> data URI, mime type)."""
    text = report_html.read_text()
    match = re.search(r"var results = (\{.*?\});\n", text, re.S)
    assert match, "the report embeds no results object"
    return json.loads(match.group(1))


def test_every_figure_is_a_png_or_table_page_in_the_report(built: Path):
    for path in FIGURES:
        data = (built / path).read_bytes()
        if path.endswith(".png"):
            assert data.startswith(b"\x89PNG") and len(data) > 5000, path
        else:
            assert b"<table>" in data and b"<script>" in data, path
    results = embedded_results(built / "results/report.html")
    assert sorted(results) == sorted(FIGURES)
    assert all(entry["data_uri"].startswith("data:") for entry in results.values())
    # No ablation is configured, so no ablation figure is asked for.
    assert not (built / "results/report/ablation.png").exists()


def test_results_page_holds_the_tables_numbers(built: Path):
    tables = pd.read_csv(built / "results/tables.csv")
    page = (built / "results/report/results.html").read_text()
    for column in tables.columns:
        assert f"<th>{column}</th>" in page
    assert f"<td>{tables.loc[0, 'mean_ccc']:.4f}</td>" in page


def test_database_summary_counts_frames_faces_and_splits(built: Path):
    annotations = pd.read_parquet(built / "results/split.parquet")
    per_video, per_split = report.database_summary(annotations)
    assert list(per_video["video"]) == ["tiny_a", "tiny_b", "tiny_c"]
    assert (per_video["frames"] == 4 * CLIP_FPS).all()
    totals = per_split.set_index("split").loc["all"]
    assert totals["frames"] == len(annotations)
    assert totals["face_frames"] == annotations["face"].sum()
    assert totals["hours"] == pytest.approx(len(annotations) / CLIP_FPS / 3600)
    splits = per_split.set_index("split").drop("all")
    assert splits["frames"].sum() == len(annotations)
    assert splits["videos"].sum() == 3


def test_best_run_is_the_configuration_chosen_on_validation(tmp_path: Path):
    """The report shows the run tables.csv chose best (on validation), whatever test says."""
    rows = [
        ("a", "a", "0", "validation", 0.6, "best;sweep:x"),
        ("a", "a", "0", "test", 0.1, "best;sweep:x"),
        ("b", "b", "0", "test", 0.9, ""),
        ("c-seed0", "c", "0", "test", 0.5, ""),
    ]
    columns = ["run", "config", "seed", "eval_set", "mean_ccc", "selected_for"]
    table = pd.DataFrame(rows, columns=columns)
    for column in set(TABLE_COLUMNS) - set(table.columns):
        table[column] = 0
    table.to_csv(tmp_path / "tables.csv", index=False)
    assert report.best_run(tmp_path / "tables.csv") == "a"
    table["selected_for"] = ""
    table.to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(Affect4kError, match="no configuration was chosen best"):
        report.best_run(tmp_path / "none.csv")


def test_results_page_shades_ties_and_names_contaminated_rows(tmp_path: Path):
    rows = [
        ("a", "validation", 0.6, 0.5, 0.7, "best", True, False),
        ("b", "validation", 0.55, 0.4, 0.65, "", True, False),
        ("c", "validation", 0.1, 0.0, 0.2, "", False, False),
        ("c", "aw", 0.8, 0.7, 0.9, "", False, True),
    ]
    columns = ["run", "eval_set", "mean_ccc", "mean_ccc_lo", "mean_ccc_hi", "selected_for"]
    table = pd.DataFrame(rows, columns=[*columns, "tied_with_best", "contaminated"])
    table["config"], table["seed"] = table["run"], 0
    for column in set(TABLE_COLUMNS) - set(table.columns):
        table[column] = 0
    table.to_csv(tmp_path / "tables.csv", index=False)
    report.draw_results_page(tmp_path / "tables.csv", tmp_path / "r.html", tmp_path / "r.png")
    page = (tmp_path / "r.html").read_text()
    assert page.count("<tr class='shaded'>") == 2
    assert "Contaminated" in page and "c on aw" in page
    assert page.index("<td>validation</td>") < page.index("<td>aw</td>")
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")


def test_test_rows_are_ordered_by_validation_rank_never_by_test(tmp_path: Path):
    # a is best on validation and worst on test; b the reverse; c has two seeds and a mean.
    rows = [
        ("a", "a", "0", "validation", 0.7),
        ("b", "b", "0", "validation", 0.2),
        ("c-seed0", "c", "0", "validation", 0.5),
        ("c-seed1", "c", "1", "validation", 0.3),
        ("c", "c", "mean", "validation", 0.4),
        ("b", "b", "0", "test", 0.9),
        ("c", "c", "mean", "test", 0.8),
        ("a", "a", "0", "test", 0.1),
        ("c-seed1", "c", "1", "test", 0.85),
        ("c-seed0", "c", "0", "test", 0.05),
    ]
    table = pd.DataFrame(rows, columns=["run", "config", "seed", "eval_set", "mean_ccc"])
    for column in set(TABLE_COLUMNS) - set(table.columns):
        table[column] = np.nan
    table["interval_note"] = np.where(table["run"] == "b", "no interval: 1 group(s) < x 3", None)
    table["tied_with_best"] = np.where(table["run"] == "a", True, None)  # others undecided
    table.to_csv(tmp_path / "tables.csv", index=False)
    ordered = report.validation_order(pd.read_csv(tmp_path / "tables.csv"))
    test = ordered[ordered["eval_set"] == "test"]
    assert test["run"].tolist() == ["a", "c-seed0", "c", "c-seed1", "b"]
    report.draw_results_page(tmp_path / "tables.csv", tmp_path / "r.html", tmp_path / "r.png")
    page = (tmp_path / "r.html").read_text()
    assert "2 row(s) have no interval" in page and "video_ccc" in page
    assert page.count("<tr class='shaded'>") == 2  # a's rows; an undecided tie is not shaded


def test_a_figure_of_a_malformed_input_is_refused_by_name(tmp_path: Path):
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.9\n")
    with pytest.raises(Affect4kError, match=r"run r1: .*history\.csv lacks column"):
        report.draw_training_curves(tmp_path / "history.csv", tmp_path / "out.png", "r1")
    assert not (tmp_path / "out.png").exists()


def test_the_quality_control_sheet_needs_the_identity_table(tmp_path: Path):
    import cv2

    frames = 50
    faces = pd.DataFrame(
        {
            "frame": np.arange(frames),
            "face": np.arange(frames) < 30,
            "faces": np.full(frames, 2),
            "verification": ["verified"] * 30 + ["unverified"] * 10 + ["rejected"] * 10,
        }
    )
    faces.to_parquet(tmp_path / "v.parquet")
    crops = np.zeros((frames, 112, 112, 3), np.uint8)
    crops[:30] = 180
    np.save(tmp_path / "v.npy", crops)
    thumbnail = cv2.imencode(".png", np.full((112, 112, 3), 90, np.uint8))[1].tobytes()
    identities = pd.DataFrame(
        {
            "identity": [0, 1],
            "frames": [30, 20],
            "seconds": [1.2, 0.8],
            "subject": [True, False],
            "thumbnail": [thumbnail, thumbnail],
        }
    )
    identities.drop(columns="thumbnail").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(Affect4kError, match=r"video v: .*bad\.parquet.*thumbnail"):
        report.draw_quality_control(
            tmp_path / "v.parquet",
            tmp_path / "v.npy",
            tmp_path / "bad.parquet",
            tmp_path / "q.png",
            "v",
        )
    assert not (tmp_path / "q.png").exists()
    identities.to_parquet(tmp_path / "v.identities.parquet")
    report.draw_quality_control(
        tmp_path / "v.parquet",
        tmp_path / "v.npy",
        tmp_path / "v.identities.parquet",
        tmp_path / "q.png",
        "v",
    )
    assert (tmp_path / "q.png").read_bytes().startswith(b"\x89PNG")


def test_annotators_figure_draws_lags_weights_and_agreement(tmp_path: Path):
    from affect4k.labels.database import AGREEMENT_COLUMNS, ANNOTATOR_COLUMNS

    rows = [
        (name, dim, lag, 0.25, 0.5, 0.4, 0.9, 0.85, 0.9, 500, float("nan"), float("nan"))
        for dim in ("valence", "arousal")
        for name, lag in (("a1", 0.0), ("a2", 0.4), ("a3", 1.0), ("a4", 2.0))
    ]
    pd.DataFrame(rows, columns=list(ANNOTATOR_COLUMNS)).to_csv(tmp_path / "ann.csv", index=False)
    agreement = [
        (stage, dim, "*", "*", 0.8, 0.7, alpha, 500)
        for dim in ("valence", "arousal")
        for stage, alpha in (("raw", 0.4), ("aligned", 0.8))
    ]
    pd.DataFrame(agreement, columns=list(AGREEMENT_COLUMNS)).to_csv(
        tmp_path / "agr.csv", index=False
    )
    report.draw_annotator_reliability(
        tmp_path / "ann.csv", tmp_path / "agr.csv", tmp_path / "out.png"
    )
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")
    pd.DataFrame(rows, columns=list(ANNOTATOR_COLUMNS)).drop(columns="weight").to_csv(
        tmp_path / "ann.csv", index=False
    )
    with pytest.raises(
        Affect4kError, match=r"annotators table: .*ann\.csv lacks column\(s\) weight"
    ):
        report.draw_annotator_reliability(
            tmp_path / "ann.csv", tmp_path / "agr.csv", tmp_path / "bad.png"
        )
    assert not (tmp_path / "bad.png").exists()


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


def test_ablation_figure_reads_the_ablation_table(tmp_path: Path):
    rows = [
        {"run": "v", "model": "vgg16_gru", "resolution": f"{height}-c{crop}", "height": height,
         "crop_size": crop, "input_size": 112, "seed": seed, "face_bin": face_bin,
         "mean_ccc": ccc, "mean_ccc_lo": ccc - 0.1, "mean_ccc_hi": ccc + 0.1, "frames": 100,
         "eval_set": eval_set, "selected": height == "native"}
        for height, ccc in (("native", 0.5), ("h720", 0.4), ("h360", 0.3))
        for crop in (112, 224)
        for seed in (0, 1)
        for face_bin in ("all", "native", "h720", "h360")
        for eval_set in ("validation", "test")
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    assert set(table.columns) <= set(ABLATION_COLUMNS)
    for column in set(ABLATION_COLUMNS) - set(table.columns):
        table[column] = 0
    table.to_csv(tmp_path / "ablation.csv", index=False)
    report.draw_ablation(tmp_path / "ablation.csv", tmp_path / "ablation.png")
    image = cv2.imread(str(tmp_path / "ablation.png"))
    # One panel per face bin beside "all": four panels side by side.
    assert image is not None and image.shape[1] > 3 * image.shape[0]
    table.drop(columns="face_bin").to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(Affect4kError, match="face_bin"):
        report.draw_ablation(tmp_path / "broken.csv", tmp_path / "broken.png")


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


@pytest.mark.parametrize(
    ("annotation", "says"),
    [
        ({"lag": "none", "fusion": "mean"}, "annotator traces averaged per frame)"),
        (
            {"lag": "estimate", "fusion": "ewe"},
            "annotator traces shifted earlier by each annotator's reaction lag estimated from "
            "the traces, then fused per frame by their EWE weights",
        ),
        (
            {"lag": "measured", "fusion": "median"},
            "lag measured on the calibration clip, then fused per frame by their median)",
        ),
        ({"lag": 0.5, "fusion": "mean"}, "annotator traces shifted 0.5 s earlier, then averaged"),
    ],
)
def test_the_reports_intro_says_how_the_labels_were_made_under_this_config(annotation, says):
    """Snakemake renders the intro with Jinja2 and the config (snakemake.config)."""
    import jinja2
    from helpers import REPO

    class Snakemake:
        config = {"annotation": annotation}

    text = (REPO / "workflow/report/workflow.rst").read_text()
    rendered = " ".join(jinja2.Environment().from_string(text).render(snakemake=Snakemake).split())
    assert says in rendered
    assert rendered.startswith("affect4k: a 4K facial valence/arousal database")
