"""The report's figures and pages drawn from small tables: the best run, the results page,
the quality-control sheet, the annotators and ablation figures (affect4k.report.figures)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from affect4k.core.columns import ABLATION_COLUMNS, TABLE_COLUMNS
from affect4k.core.errors import Affect4kError
from affect4k.report import figures as report


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
