"""The Snakemake report of the tiny study (conftest): every figure a PNG or a table page, the
results page and the database summary hold the workflow's numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers.report import FIGURES

from affect4k import CLIP_FPS
from affect4k.report import figures as report


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
