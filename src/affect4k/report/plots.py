"""Every figure of the project, in one style: the report's and those of ``affect4k predict``.

One module so a reader of the report sees one visual language: valence is always blue, arousal
always orange, a label solid and its prediction dashed, every figure drawn under :data:`STYLE`
and written atomically as a PNG (what Snakemake's report embeds and any browser shows).
Figures are built without pyplot, so nothing depends on a display or on global figure state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import cv2
import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from affect4k import CLIP_FPS
from affect4k.core.columns import DIMENSIONS, SCORED_SPLITS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import write_atomic

#: The colour of each dimension in every figure.
COLOURS = {"valence": "#1f77b4", "arousal": "#ff7f0e"}
STYLE = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


Params = ParamSpec("Params")
Result = TypeVar("Result")


def _styled(draw: Callable[Params, Result]) -> Callable[Params, Result]:
    """Run ``draw`` under :data:`STYLE` (matplotlib reads most settings when an artist is made)."""

    @functools.wraps(draw)
    def styled(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        with rc_context(STYLE):
            return draw(*args, **kwargs)

    return styled


def _figure(rows: int, cols: int, size: tuple[float, float], **kwargs: object) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    figure.subplots(rows, cols, squeeze=False, **kwargs)
    return figure


def save(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG at ``path``: complete or absent."""
    write_atomic(Path(path), lambda tmp: figure.savefig(tmp, format="png", bbox_inches="tight"))


def _va_plane(axes: Axes, valence: np.ndarray, arousal: np.ndarray, colour: object) -> None:
    """Points on the valence-arousal circle (Russell's plane, both axes in [-1, 1])."""
    axes.add_patch(Circle((0, 0), 1, fill=False, color="0.6", lw=0.8))
    axes.axhline(0, color="0.6", lw=0.8)
    axes.axvline(0, color="0.6", lw=0.8)
    timed = not isinstance(colour, str)
    points = axes.scatter(
        valence, arousal, c=colour, s=12, cmap="viridis" if timed else None, zorder=3
    )
    axes.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="valence", ylabel="arousal")
    axes.set_aspect("equal")
    axes.grid(False)
    if timed:
        axes.figure.colorbar(points, ax=axes, shrink=0.8, label="time (s)")


@_styled
def prediction_figure(table: pd.DataFrame, path: Path, title: str) -> None:
    """What ``affect4k predict`` shows beside its CSV: the traces and the valence-arousal plane.

    A video's table (``time_s`` column) is drawn over its whole time, the frames where the
    followed face was absent shaded (the axis would otherwise end where the face last shows);
    a photo table (``file`` column) as one pair of bars per photo, each labelled with the box of
    the face scored and how many faces the photo showed.
    """
    figure = _figure(1, 2, (11, 3.6), width_ratios=[2.2, 1])
    traces, plane = figure.axes
    found = table.dropna(subset=list(DIMENSIONS))
    if "time_s" in table:
        times = table["time_s"].to_numpy(float)
        for dimension in DIMENSIONS:
            traces.plot(times, table[dimension], color=COLOURS[dimension], label=dimension)
        absent = ~np.isfinite(table[list(DIMENSIONS)].to_numpy(float)).all(axis=1)
        edges = np.flatnonzero(np.diff(np.r_[0, absent.astype(int), 0]))
        for first, after in zip(edges[::2], edges[1::2], strict=True):
            traces.axvspan(
                times[first] - 0.5 / CLIP_FPS,
                times[after - 1] + 0.5 / CLIP_FPS,
                color="0.88",
                lw=0,
                label=None if first != edges[0] else "face absent",
            )
        traces.set(xlabel="time (s)", xlim=(times[0] - 0.5 / CLIP_FPS, times[-1] + 0.5 / CLIP_FPS))
        colour: object = found["time_s"].to_numpy()
    else:
        position = np.arange(len(table))
        for offset, dimension in zip((-0.2, 0.2), DIMENSIONS, strict=True):
            traces.bar(
                position + offset, table[dimension], 0.4, color=COLOURS[dimension], label=dimension
            )
        labels = [_photo_label(row) for _, row in table.iterrows()]
        traces.set_xticks(position, labels, rotation=30, ha="right", fontsize=7)
        colour = COLOURS["valence"]
    traces.set(ylim=(-1.05, 1.05), ylabel="predicted value", title=title)
    traces.axhline(0, color="0.6", lw=0.8)
    traces.legend(loc="upper right", ncols=2)
    _va_plane(plane, found["valence"], found["arousal"], colour)
    save(figure, path)


def _photo_label(row: pd.Series) -> str:
    """A photo's tick: its file, the box of the face scored and how many faces it showed."""
    shown = f"{int(row['faces'])} face{'s' if row['faces'] != 1 else ''}"
    if not row["face"]:
        return f"{row['file']}\nnone scored of {shown}"
    box = ",".join(f"{row[name]:.0f}" for name in ("x1", "y1", "x2", "y2"))
    return f"{row['file']}\nbox {box} of {shown}"


@_styled
def training_curves(history: pd.DataFrame, path: Path, run: str) -> None:
    """Loss and train/validation CCC per epoch of one run (``history.csv``); unscored epochs
    skipped. Never test: a curve is read to choose, and no choice may read the test split."""
    figure = _figure(1, 3, (12, 3.2))
    loss, ccc, mse = figure.axes
    loss.plot(history["epoch"], history["loss"], marker="o", color="0.3")
    loss.set(xlabel="epoch", ylabel="training loss (1 - CCC)", title=f"{run}: loss")
    for axes in figure.axes:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for split, style in zip(SCORED_SPLITS, ("-", "--"), strict=True):
        for dimension in DIMENSIONS:
            for axes, metric in ((ccc, "ccc"), (mse, "mse")):
                scored = history.dropna(subset=[f"{split}_{dimension}_{metric}"])
                axes.plot(
                    scored["epoch"],
                    scored[f"{split}_{dimension}_{metric}"],
                    style,
                    marker="o",
                    color=COLOURS[dimension],
                    label=f"{split} {dimension}",
                )
    ccc.set(xlabel="epoch", ylabel="CCC", title=f"{run}: CCC", ylim=(-1.05, 1.05))
    mse.set(xlabel="epoch", ylabel="MSE", title=f"{run}: MSE")
    ccc.legend(fontsize=7)
    save(figure, path)


@_styled
def agreement_heatmaps(agreement: pd.DataFrame, path: Path) -> None:
    """Pearson r between every pair of annotators, one heatmap per dimension."""
    figure = _figure(1, len(DIMENSIONS), (4.6 * len(DIMENSIONS), 4))
    for axes, dimension in zip(figure.axes, DIMENSIONS, strict=True):
        rows = agreement[agreement["dimension"] == dimension]
        if rows.empty:
            raise Affect4kError(f"agreement table has no row for {dimension}")
        names = sorted(set(rows["annotator_a"]) | set(rows["annotator_b"]))
        matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
        for row in rows.itertuples():
            matrix.loc[row.annotator_a, row.annotator_b] = row.pearson_r
            matrix.loc[row.annotator_b, row.annotator_a] = row.pearson_r
        image = axes.imshow(matrix.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        axes.set_xticks(range(len(names)), names)
        axes.set_yticks(range(len(names)), names)
        axes.grid(False)
        for (i, j), value in np.ndenumerate(matrix.to_numpy()):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
        axes.set_title(f"{dimension}: annotator agreement (Pearson r)")
        figure.colorbar(image, ax=axes, shrink=0.8)
    save(figure, path)


@_styled
def annotator_reliability(annotators: pd.DataFrame, agreement: pd.DataFrame, path: Path) -> None:
    """Per dimension, each annotator's lag and fusion weight, and their CCC with the others'
    mean before and after lag compensation (``annotators.csv``), with Krippendorff's alpha of
    all annotators before and after (``agreement.csv``) in the title."""
    figure = _figure(3, len(DIMENSIONS), (4.6 * len(DIMENSIONS), 7.5), sharex="col")
    axes = np.array(figure.axes).reshape(3, len(DIMENSIONS))
    for column, dimension in enumerate(DIMENSIONS):
        rows = annotators[annotators["dimension"] == dimension]
        if rows.empty:
            raise Affect4kError(f"annotators table has no row for {dimension}")
        position = np.arange(len(rows))
        colour = COLOURS[dimension]
        lag, weight, agree = axes[:, column]
        lag.bar(position, rows["lag_s"], color=colour)
        lag.set(ylabel="lag (s)", title=f"{dimension}: reaction lag (relative)")
        weight.bar(position, rows["weight"].fillna(0), color=colour)
        weight.set(ylabel="weight", title=f"{dimension}: fusion weight")
        agree.bar(position - 0.2, rows["ccc_raw"], 0.4, color=colour, alpha=0.35, label="raw")
        agree.bar(position + 0.2, rows["ccc"], 0.4, color=colour, label="lag-compensated")
        alphas = agreement[
            (agreement["dimension"] == dimension) & (agreement["annotator_a"] == "*")
        ].set_index("stage")["alpha"]
        agree.set(
            ylabel="CCC with the others' mean",
            ylim=(min(0.0, float(rows[["ccc_raw", "ccc"]].min().min())), 1),
            title=f"Krippendorff's alpha {alphas.get('raw', np.nan):.2f} raw, "
            f"{alphas.get('aligned', np.nan):.2f} compensated",
        )
        agree.set_xticks(position, rows["annotator"])
        agree.legend(fontsize=7)
    save(figure, path)


@_styled
def database_overview(summary: pd.DataFrame, path: Path) -> None:
    """Frames per video, split by face found or not, coloured by split (``database_summary``)."""
    figure = _figure(1, 1, (max(6.0, 0.5 * len(summary) + 2), 3.6))
    axes = figure.axes[0]
    splits = sorted(summary["split"].unique())
    colours = dict(zip(splits, colormaps["tab10"].colors, strict=False))
    position = np.arange(len(summary))
    for split in splits:
        rows = summary["split"] == split
        axes.bar(
            position[rows], summary.loc[rows, "face_frames"], color=colours[split], label=split
        )
        axes.bar(
            position[rows],
            summary.loc[rows, "frames"] - summary.loc[rows, "face_frames"],
            bottom=summary.loc[rows, "face_frames"],
            color=colours[split],
            alpha=0.3,
        )
    axes.set_xticks(position, summary["video"], rotation=45, ha="right")
    axes.set(ylabel="frames (pale: no face found)")
    hours = summary["frames"].sum() / CLIP_FPS / 3600
    axes.set_title(
        f"{len(summary)} videos, {summary['frames'].sum()} frames ({hours:.3f} h), "
        f"faces in {summary['face_frames'].sum() / summary['frames'].sum():.1%} of frames"
    )
    axes.legend(title="split")
    save(figure, path)


@_styled
def face_quality(
    faces: pd.DataFrame, crops: np.ndarray, identities: pd.DataFrame, path: Path, video: str
) -> None:
    """Who is in the video, when the subject is on screen and verified, and its crops.

    The identity strip shows every person the face stage told apart (up to
    :data:`QC_IDENTITIES`, most screen time first; thumbnail, screen time), the subject
    framed in green; the timeline colours every frame by what face recognition said of the
    subject there (:data:`VERIFICATION_COLOURS`: kept as verified or bridged, or not kept as
    unverified, rejected or without a face) under the number of faces detected per second; the
    contact sheet takes frames at even intervals (a black tile: no face kept at that frame), so
    a reviewer sees at a glance whether crops are aligned and always show the same person, and
    where the stage refused to guess.
    """
    if len(faces) != len(crops):
        raise Affect4kError(f"video {video}: {len(faces)} face rows but {len(crops)} crops")
    columns, rows = 10, 3
    figure = _figure(3, 1, (12, 8.6), height_ratios=[1.05, 1, 2.2])
    people, timeline, sheet = figure.axes
    _identity_strip(people, identities, len(faces))
    _verification_timeline(timeline, faces)
    picked = np.linspace(0, len(crops) - 1, min(columns * rows, len(crops))).round().astype(int)
    size = crops.shape[1]
    tiles = np.zeros((rows * size, columns * size, 3), np.uint8)
    for index, frame in enumerate(picked):
        row, column = divmod(index, columns)
        tiles[row * size : (row + 1) * size, column * size : (column + 1) * size] = crops[frame]
    sheet.imshow(tiles)
    for index, frame in enumerate(picked):
        row, column = divmod(index, columns)
        label = f"{frame / CLIP_FPS:.1f} s {faces['verification'].iloc[frame]}"
        sheet.text(column * size + 3, row * size + 3, label, color="white", fontsize=7, va="top")
    sheet.set_axis_off()
    sheet.set_title("the subject's aligned crops sampled evenly across the clip, in reading order")
    figure.suptitle(video, fontweight="bold")
    save(figure, path)


#: Identities drawn in the quality-control sheet's identity strip.
QC_IDENTITIES = 8
#: Colour of each ``verification`` state (affect4k.faces.extract.VERIFICATION_STATES) on the
#: timeline.
VERIFICATION_COLOURS = {
    "verified": "#2ca02c",
    "bridged": "#98df8a",
    "unverified": "#ff7f0e",
    "rejected": "#d62728",
    "none": "#d9d9d9",
}


def _verification_timeline(axes: Axes, faces: pd.DataFrame) -> None:
    """Every frame as a vertical stripe coloured by its verification state, with the faces
    detected per second (mean) on a second axis."""
    states = faces["verification"].astype(str)
    unknown = sorted(set(states) - set(VERIFICATION_COLOURS))
    if unknown:
        raise Affect4kError(f"unknown verification state(s) {', '.join(unknown)}")
    colours = np.array([to_rgb(VERIFICATION_COLOURS[state]) for state in states])
    seconds = max(1.0, len(faces) / CLIP_FPS)
    axes.imshow(
        colours[None], aspect="auto", extent=(0, len(faces) / CLIP_FPS, 0, 1), interpolation="none"
    )
    counts = states.value_counts()
    handles = [
        Patch(color=colour, label=f"{state} {counts.get(state, 0) / len(states):.0%}")
        for state, colour in VERIFICATION_COLOURS.items()
    ]
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=5)
    axes.set(xlim=(0, seconds), ylim=(0, 1), yticks=[], xlabel="clip time (s)")
    kept = faces["face"].mean()
    axes.set_title(f"subject's crop kept in {kept:.1%} of {len(faces)} frames, by verification")
    per_second = faces.groupby(faces["frame"].to_numpy() // CLIP_FPS)["faces"].mean()
    detected = axes.twinx()
    starts = per_second.index.to_numpy()
    counts_per_second = per_second.to_numpy()
    detected.step(
        np.append(starts, starts[-1] + 1),
        np.append(counts_per_second, counts_per_second[-1]),
        where="post",
        c="0.1",
    )
    detected.set_ylabel("faces detected")
    detected.set_ylim(0, max(1.0, float(per_second.max())) * 1.1)
    detected.grid(False)


def _identity_strip(axes: Axes, identities: pd.DataFrame, frames: int) -> None:
    """Thumbnails of the identities side by side, each with its screen time; the subject's
    framed in green."""
    shown = identities.sort_values("frames", ascending=False).head(QC_IDENTITIES)
    size = 112
    strip = np.full((size, QC_IDENTITIES * (size + 16), 3), 255, np.uint8)
    for slot, thumbnail in enumerate(shown["thumbnail"]):
        image = cv2.imdecode(np.frombuffer(thumbnail, np.uint8), cv2.IMREAD_COLOR)
        image = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (size, size))
        strip[:, slot * (size + 16) : slot * (size + 16) + size] = image
    axes.imshow(strip)
    for slot, row in enumerate(shown.itertuples()):
        left = slot * (size + 16)
        subject = bool(row.subject)
        if subject:
            axes.add_patch(
                Rectangle((left - 1, -1), size + 1, size + 1, fill=False, ec="#2ca02c", lw=3)
            )
        label = f"#{row.identity}{' subject' if subject else ''}\n{row.seconds:.1f} s"
        label += f" ({row.frames / frames:.0%})"
        axes.text(
            left + size / 2,
            size + 4,
            label,
            ha="center",
            va="top",
            fontsize=8,
            color="#2ca02c" if subject else "black",
            fontweight="bold" if subject else "normal",
        )
    axes.set_axis_off()
    hidden = len(identities) - len(shown)
    more = f" ({hidden} more not shown)" if hidden > 0 else ""
    people = "person" if len(identities) == 1 else "people"
    axes.set_title(f"{len(identities)} {people} told apart, by screen time{more}")


@_styled
def predictions_over_time(predictions: pd.DataFrame, path: Path, run: str) -> None:
    """Label (solid) and prediction (dashed) of every video of ``predictions``, per dimension."""
    videos = sorted(predictions["video"].unique())
    if not videos:
        raise Affect4kError(f"run {run}: no predictions to plot")
    figure = _figure(len(videos), 2, (12, 2.2 * len(videos) + 0.6), sharey=True)
    for row, video in enumerate(videos):
        frames = predictions[predictions["video"] == video].sort_values("frame")
        time = frames["frame"] / CLIP_FPS
        for column, dimension in enumerate(DIMENSIONS):
            axes = figure.axes[row * 2 + column]
            colour = COLOURS[dimension]
            axes.plot(time, frames[dimension], color=colour, label="label")
            axes.plot(time, frames[f"{dimension}_pred"], "--", color=colour, label="prediction")
            axes.set(ylim=(-1.05, 1.05), title=f"{video}: {dimension}", xlabel="clip time (s)")
            axes.legend(loc="upper right", ncols=2, fontsize=7)
    figure.suptitle(f"test videos of {run} (the run chosen best on validation mean CCC)")
    save(figure, path)


@_styled
def ablation_figure(table: pd.DataFrame, path: Path) -> None:
    """What the resolution ablation (``affect4k.evaluation.ablation``) measured: on test, each
    cell's paired difference in mean CCC against its native cell (same run, crop size, input size,
    seeds and frames) against the source height, one panel over all frames and one per face bin (the
    height a face's crop is resolved from), one line per run x crop size x input size. The line is
    the seed-mean difference, its band the 95 % interval of that paired difference, the dots each
    seed's difference; a filled marker is a difference that stays significant after Holm's
    correction over the grid, an open one one that does not. Native is 0 by definition. A bin no
    test frame falls in gets no panel.
    """
    table = table[table["eval_set"] == "test"].astype({"height": str, "seed": str})
    heights = sorted(table["height"].unique(), key=_height_order)
    # Bins without a frame (no face that size) get no panel.
    present = set(table.loc[table["frames"] > 0, "face_bin"])
    bins = ["all", *(b for b in _BIN_ORDER if b in present)]
    bins += sorted(present - set(bins), key=_height_order, reverse=True)
    figure = _figure(1, len(bins), (3.4 * len(bins) + 0.8, 3.6), sharey=True)
    line = ["run", "crop_size", "input_size"]
    for axes, face_bin in zip(figure.axes, bins, strict=True):
        rows = table[table["face_bin"] == face_bin]
        axes.axhline(0, color="0.6", lw=0.8)
        for colour, ((run, crop, size), cell) in zip(
            colormaps["tab10"].colors, rows.groupby(line), strict=False
        ):
            cell = cell.assign(at=cell["height"].map(heights.index))
            several = (cell["seed"] == "mean").any()
            summary = cell[cell["seed"] == "mean"] if several else cell
            summary = summary.sort_values("at")
            delta = summary["delta_ccc"].where(summary["height"] != NATIVE_LABEL, 0.0)
            low = summary["delta_ccc_lo"].where(summary["height"] != NATIVE_LABEL, 0.0)
            high = summary["delta_ccc_hi"].where(summary["height"] != NATIVE_LABEL, 0.0)
            axes.fill_between(summary["at"], low, high, color=colour, alpha=0.2)
            axes.plot(
                summary["at"], delta, "-", color=colour, label=f"{run}, crop {crop}, input {size}"
            )
            significant = summary["delta_significant"].map(
                lambda value: isinstance(value, bool | np.bool_) and bool(value)
            )
            axes.plot(summary["at"][significant], delta[significant], "o", color=colour, ms=6)
            axes.plot(
                summary["at"][~significant & (summary["height"] != NATIVE_LABEL)],
                delta[~significant & (summary["height"] != NATIVE_LABEL)],
                "o",
                mfc="white",
                color=colour,
                ms=6,
            )
            if several:
                seeds = cell[cell["seed"] != "mean"]
                axes.plot(seeds["at"], seeds["delta_ccc"], ".", color=colour, ms=4)
        frames = int(rows["frames"].max()) if len(rows) else 0
        title = _BIN_TITLES.get(face_bin, f"crop resolved from {face_bin} up")
        axes.set_xticks(range(len(heights)), heights)
        counted = f"{frames} frame" + ("" if frames == 1 else "s")
        axes.set(xlabel="source height", title=f"{title} ({counted})")
    figure.axes[0].set(ylabel="test mean CCC minus native (95 % CI band)")
    figure.axes[0].legend(fontsize=7, loc="lower left")
    figure.suptitle(
        "does resolution help? paired difference from native per source height (filled: "
        "significant after Holm over the grid; dots: seeds)"
    )
    save(figure, path)


#: The height label of the native cell in ``ablation.csv``.
NATIVE_LABEL = "native"
#: Face bins in reading order (``affect4k.evaluation.ablation.bin_order`` puts the grid's heights
#: after).
_BIN_ORDER = ("unresolved", "native")
_BIN_TITLES = {
    "all": "all frames",
    "unresolved": "crop unresolved even at native",
    "native": "crop resolved at native only",
}


def _height_order(value: str) -> tuple[float, str]:
    """Sort "h180" < "h360" < "h720" < "native" (others last)."""
    height = value.removeprefix("h")
    return (float(height), value) if height.isdigit() else (float("inf"), value)


@_styled
def results_figure(table: pd.DataFrame, path: Path) -> None:
    """Mean CCC of every configuration with its 95 % interval as error bars, and its per-video
    CCC as a cross, one panel per evaluation set (in ``table``'s set order), configurations in
    ``table``'s order of the first set (the report sorts by validation). A configuration with
    several seeds is drawn by its ``mean`` row; the one chosen best on validation is drawn in
    black."""
    seeded = table.groupby(["config", "eval_set"])["run"].transform("size") > 1
    rows = table[~seeded | (table["seed"].astype(str) == "mean")]
    sets = list(dict.fromkeys(rows["eval_set"]))
    configs = list(dict.fromkeys(rows["config"]))[::-1]  # the first at the top
    figure = _figure(1, len(sets), (3.2 * len(sets) + 1.5, 0.35 * len(configs) + 1.4), sharey=True)
    for axes, eval_set in zip(figure.axes, sets, strict=True):
        shown = rows[rows["eval_set"] == eval_set].set_index("config").reindex(configs)
        centre = shown["mean_ccc"].to_numpy(float)
        error = np.abs(np.vstack([centre - shown["mean_ccc_lo"], shown["mean_ccc_hi"] - centre]))
        labels = shown["selected_for"].astype("string").fillna("").str.split(";")
        best = labels.map(lambda chosen: "best" in chosen).to_numpy(bool)
        position = np.arange(len(configs))
        for chosen, colour in ((False, COLOURS["valence"]), (True, "black")):
            mask = best == chosen
            axes.errorbar(
                centre[mask], position[mask], xerr=error[:, mask], fmt="o", color=colour, capsize=3
            )
        axes.plot(shown["video_ccc"].to_numpy(float), position, "x", color="0.4")
        axes.set_yticks(position, configs)
        axes.set(xlabel="mean CCC (95 % CI)", title=eval_set, xlim=(-1.05, 1.05))
    figure.suptitle(
        "pooled mean CCC per configuration (x: per-video CCC); black: chosen best on validation"
    )
    save(figure, path)
