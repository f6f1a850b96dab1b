"""The report's tables as a self-contained HTML page that sorts by a click on a column header.

Apart from :mod:`affect4k.report.plots` because it is a page, not a figure: no matplotlib, only
escaped text and a few lines of script, which the browser tests drive in Chromium.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k.core.files import write_atomic

_SORT_SCRIPT = """
document.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const ascending = th.dataset.order !== "asc";
  th.dataset.order = ascending ? "asc" : "desc";
  const key = row => {
    const text = row.cells[column].textContent;
    const number = parseFloat(text);
    return isNaN(number) ? text : number;
  };
  Array.from(body.rows)
    .sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1))
    .forEach(row => body.appendChild(row));
}));
"""


def sortable_table(
    tables: Sequence[tuple[str, pd.DataFrame]],
    path: Path,
    *,
    notes: Sequence[str] = (),
    shade: str | None = None,
) -> None:
    """A self-contained HTML page of titled tables; clicking a column header sorts by it.

    ``notes`` are paragraphs above the tables; rows whose ``shade`` column is true are shaded
    (an empty value, e.g. an undecided ``tied_with_best``, is not).
    """
    parts = [f"<p class='note'>{html.escape(note)}</p>" for note in notes]
    for title, table in tables:
        head = "".join(f"<th>{html.escape(str(name))}</th>" for name in table.columns)
        shaded = (
            table[shade].astype(object).fillna(False).astype(bool).to_numpy()
            if shade in table.columns
            else np.zeros(len(table), dtype=bool)
        )
        rows = "".join(
            ("<tr class='shaded'>" if marked else "<tr>")
            + "".join(f"<td>{html.escape(_cell(value))}</td>" for value in row)
            + "</tr>"
            for row, marked in zip(table.itertuples(index=False), shaded, strict=True)
        )
        parts.append(
            f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "body{font:13px sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:2em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{cursor:pointer;background:#eee}th:hover{background:#ddd}"
        "tr.shaded td{background:#e6f2e6}p.note{max-width:60em}"
        "</style></head><body><p>Click a column header to sort.</p>"
        + "".join(parts)
        + f"<script>{_SORT_SCRIPT}</script></body></html>"
    )
    write_atomic(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4f}" if np.isfinite(value) else "NaN"
    return str(value)
