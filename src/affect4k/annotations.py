"""Annotation stage: raw joystick traces -> per-frame labels on each clip's 25 fps grid.

A joystick tool writes one ``time_s,value`` CSV per annotator and dimension, sampled irregularly
(every ~20-60 ms with jitter), with valence and arousal recorded in separate passes and so on
different time stamps. Everything downstream works per frame (see the frame-index contract in
docs/design.md), so each trace is resampled onto ``t_f = f / CLIP_FPS`` and the annotators are
averaged there. Frames a trace does not cover (late start, early end, a long pause in the
recording) become NaN instead of being extrapolated: NaN labels are excluded from training and
from every metric, so a hole in the annotation can never turn into an invented label.

The database step (:func:`build_database`) pools the videos, reports inter-annotator agreement
and assigns the train/test split.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affect4k import CLIP_FPS
from affect4k.errors import Affect4kError
from affect4k.files import read_table, write_atomic

log = logging.getLogger(__name__)

DIMENSIONS = ("valence", "arousal")
TRACE_HEADER = ("time_s", "value")
SPLITS = ("group", "sequence")

# Annotator names become file names and column names, so they must be plain identifiers.
_ANNOTATOR_RE = re.compile(r"[A-Za-z0-9_-]+")


def _line_error(path: Path, line: int, problem: str) -> Affect4kError:
    return Affect4kError(f"{path}, line {line}: {problem}")


def read_numeric_csv(path: Path, header: Sequence[str]) -> np.ndarray:
    """Rows of a small all-numeric CSV as a float array of shape ``(n_rows, len(header))``.

    The first line must be exactly ``header``; every later line must hold one finite number per
    column. Parsing is vectorised (pandas reads strings, numpy converts), and only when something
    is wrong is the offending 1-based line (header = line 1) located, so each error names the
    file and the line a user has to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise Affect4kError(f"annotation file {path} does not exist")
    expected = ",".join(header)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            found = handle.readline().rstrip("\r\n")
        if found.replace(" ", "") != expected:
            raise _line_error(path, 1, f"header is {found!r}, expected {expected!r}")
        table = pd.read_csv(
            path,
            header=None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError as exc:
        raise Affect4kError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except pd.errors.ParserError:
        raise _field_count_error(path, len(header)) from None
    text = table.iloc[1:]
    values = text.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, copy=True)
    bad_rows, bad_cols = np.nonzero(~np.isfinite(values))
    if bad_rows.size:
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raw = text.iat[row, col].strip()
        kind = "empty value" if raw == "" else f"{raw!r} is not a finite number"
        raise _line_error(path, row + 2, f"{kind} in column {header[col]!r}")
    return values


def _field_count_error(path: Path, n_columns: int) -> Affect4kError:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            n_fields = line.count(",") + 1
            if n_fields > n_columns:
                problem = f"expected {n_columns} comma-separated values, got {n_fields}"
                return _line_error(path, number, f"{problem}: {line.rstrip()!r}")
    return Affect4kError(f"{path}: not a comma-separated table of {n_columns} columns")


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One annotator's trace as ``(times, values)``: seconds from the clip start, in [-1, 1].

    Refuses (naming file and line) what resampling would otherwise silently absorb: values
    outside [-1, 1], negative or non-increasing times, and traces of fewer than 2 samples.
    """
    data = read_numeric_csv(path, TRACE_HEADER)
    times, values = data[:, 0], data[:, 1]
    if len(times) < 2:
        raise Affect4kError(f"{path}: {len(times)} sample(s) after the header, need at least 2")
    checks = (
        (np.abs(values) > 1, lambda i: f"value {values[i]} is outside [-1, 1]"),
        (times < 0, lambda i: f"time {times[i]} s is negative"),
        (
            np.r_[False, np.diff(times) <= 0],
            lambda i: f"time {times[i]} s does not increase (previous line: {times[i - 1]} s)",
        ),
    )
    for bad, describe in checks:
        if bad.any():
            row = int(np.argmax(bad))
            raise _line_error(path, row + 2, describe(row))
    return times, values


def resample_trace(
    times: np.ndarray,
    values: np.ndarray,
    n_frames: int,
    *,
    fps: int = CLIP_FPS,
    max_gap_s: float = 0.5,
) -> np.ndarray:
    """A trace's values at ``t_f = f / fps`` for ``f < n_frames``; NaN where it is not covered.

    Frames between two samples are linearly interpolated. A frame within ``max_gap_s`` before
    the first or after the last sample takes that sample's value (a joystick log usually starts
    a few ms after the clip does); a frame further out, or strictly inside a gap between samples
    longer than ``max_gap_s`` (the tool paused or dropped input), is NaN: masked, excluded from
    training and metrics, never silently extrapolated.
    """
    if n_frames < 0:
        raise Affect4kError(f"n_frames must be >= 0, got {n_frames}")
    if fps <= 0:
        raise Affect4kError(f"fps must be > 0, got {fps}")
    if max_gap_s < 0:
        raise Affect4kError(f"max_gap_s must be >= 0, got {max_gap_s}")
    if len(times) < 2 or len(times) != len(values):
        raise Affect4kError(
            f"times and values must have the same length >= 2, got {len(times)}, {len(values)}"
        )
    frame_times = np.arange(n_frames) / fps
    resampled = np.interp(frame_times, times, values)
    after = np.searchsorted(times, frame_times, side="right")  # first sample later than t_f
    inner = (after > 0) & (after < len(times))
    left = times[np.clip(after - 1, 0, len(times) - 1)]
    right = times[np.clip(after, 0, len(times) - 1)]
    in_long_gap = inner & (right - left > max_gap_s) & (frame_times > left)
    uncovered = (frame_times < times[0] - max_gap_s) | (frame_times > times[-1] + max_gap_s)
    resampled[in_long_gap | uncovered] = np.nan
    return resampled


def _check_annotators(annotators: Sequence[str]) -> None:
    if not annotators:
        raise Affect4kError("annotators: the list is empty")
    if len(set(annotators)) != len(annotators):
        raise Affect4kError(f"annotators: duplicate names in {list(annotators)}")
    for name in annotators:
        if not _ANNOTATOR_RE.fullmatch(name):
            raise Affect4kError(f"annotators: {name!r} must match {_ANNOTATOR_RE.pattern}")


#: First line of a trace file that says its annotator did not annotate this video in this
#: dimension; anything after it is a free-text note. A missing file stays an error (a file left
#: behind by mistake must not pass as a deliberate gap).
SKIPPED_MARKER = "skipped"


def is_skipped(path: Path) -> bool:
    """Whether the trace file at ``path`` is the explicit :data:`SKIPPED_MARKER`."""
    try:
        with Path(path).open(encoding="utf-8-sig") as handle:
            return handle.readline().strip() == SKIPPED_MARKER
    except (OSError, UnicodeDecodeError):
        return False  # read_trace reports what is wrong with it


def _warn_unlisted(trace_dir: Path, expected: set[str], video_id: str) -> None:
    """Warn about CSV files in ``trace_dir`` that no listed annotator owns (an annotator missing
    from the config, a misspelt dimension): they would otherwise be ignored without a word."""
    try:
        found = {path.name for path in Path(trace_dir).glob("*.csv")}
    except OSError:
        return
    unlisted = sorted(found - expected)
    if unlisted:
        log.warning(
            f"video {video_id}: {trace_dir} holds trace files of no listed annotator, ignored: "
            f"{', '.join(unlisted)} (the config's annotators read "
            f"{', '.join(sorted(expected))})"
        )


def _annotator_trace(
    path: Path, n_frames: int, max_gap_s: float, video_id: str, time_offset_s: float = 0.0
) -> np.ndarray:
    """Resample one trace file (its times less ``time_offset_s``), warning about every frame it
    leaves unlabelled; all NaN for an annotator who skipped the video (:data:`SKIPPED_MARKER`).

    A trace that runs past the clip's end by more than ``max_gap_s`` was timed against
    something else (the untrimmed source, or written in milliseconds): refused, since its labels
    would land on the wrong frames.
    """
    if is_skipped(path):
        log.warning(f"{path} (video {video_id}): marked {SKIPPED_MARKER}, no labels from it")
        return np.full(n_frames, np.nan)
    times, values = read_trace(path)
    times = times - time_offset_s
    clip_s = n_frames / CLIP_FPS
    if times[-1] > clip_s + max_gap_s:
        hint = (
            "written in milliseconds? times must be seconds"
            if times[-1] > 100 * clip_s
            else "timed against the untrimmed source? set annotation.time_origin: source"
        )
        shifted = f" ({time_offset_s:g} s before the clip's start)" if time_offset_s else ""
        raise Affect4kError(
            f"{path} (video {video_id}): the trace runs to {times[-1]:.2f} s{shifted} but the "
            f"clip lasts {clip_s:.2f} s; {hint}"
        )
    trace = resample_trace(times, values, n_frames, max_gap_s=max_gap_s)
    masked = int(np.isnan(trace).sum())
    if masked:
        tail = int((np.arange(n_frames) / CLIP_FPS > times[-1] + max_gap_s).sum())
        log.warning(
            f"{path} (video {video_id}): masked {masked} of {n_frames} frames: {tail} after the "
            f"trace ends at {times[-1]:.2f} s (the clip lasts {clip_s:.2f} s), "
            f"{masked - tail} in gaps longer than {max_gap_s} s or before its first sample"
        )
    return trace


def annotate_video(
    video_id: str,
    faces_parquet: Path,
    trace_dir: Path,
    annotators: Sequence[str],
    out_path: Path,
    *,
    max_gap_s: float = 0.5,
    min_annotators: int | None = None,
    time_offset_s: float = 0.0,
) -> None:
    """Write one video's per-frame labels: one row per row of its faces table.

    Trace times are seconds from the clip's start; ``time_offset_s`` is subtracted first, for
    traces timed against the untrimmed source (the clip's ``start``).

    Columns: ``video, frame, time_s, face, valence, arousal`` and each annotator's resampled
    trace as ``valence_<annotator>`` / ``arousal_<annotator>``. ``valence`` and ``arousal`` are
    the mean over the annotators that cover the frame, NaN where fewer than ``min_annotators``
    do, so the label of a frame never silently rests on a minority. By default that is every
    annotator who did not skip the video: a trace file whose first line is ``skipped`` says so
    explicitly (its column is all NaN), and a video skipped by everyone is refused, as is a
    video with no labelled frame in either dimension.
    """
    _check_annotators(annotators)
    if min_annotators is not None and not 1 <= min_annotators <= len(annotators):
        raise Affect4kError(
            f"min_annotators must be between 1 and {len(annotators)}, got {min_annotators}"
        )
    faces = read_table(faces_parquet, ("frame", "time_s", "face"), f"video {video_id}")
    n_frames = len(faces)
    if not np.array_equal(faces["frame"].to_numpy(), np.arange(n_frames)):
        raise Affect4kError(f"video {video_id}: {faces_parquet} rows are not frames 0..n-1")
    table = pd.DataFrame(
        {
            "video": video_id,
            "frame": faces["frame"].to_numpy(),
            "time_s": faces["time_s"].to_numpy(),
            "face": faces["face"].to_numpy(),
        }
    )
    files = {
        (dim, name): Path(trace_dir) / f"{name}.{dim}.csv"
        for dim in DIMENSIONS
        for name in annotators
    }
    _warn_unlisted(Path(trace_dir), {path.name for path in files.values()}, video_id)
    traces = {
        key: _annotator_trace(path, n_frames, max_gap_s, video_id, time_offset_s)
        for key, path in files.items()
    }
    for dim in DIMENSIONS:
        skipped = [name for name in annotators if is_skipped(files[dim, name])]
        if len(skipped) == len(annotators):
            raise Affect4kError(
                f"video {video_id}: every annotator's {dim} trace in {trace_dir} is marked "
                f"{SKIPPED_MARKER}; drop the video or annotate it"
            )
        needed = min_annotators or len(annotators) - len(skipped)
        stack = np.stack([traces[dim, name] for name in annotators])
        covered = np.isfinite(stack)
        count = covered.sum(axis=0)
        mean = np.where(covered, stack, 0.0).sum(axis=0) / np.maximum(count, 1)
        table[dim] = np.where(count >= needed, mean, np.nan)
        if not np.isfinite(table[dim]).any():
            note = f" ({', '.join(skipped)} skipped it)" if skipped else ""
            raise Affect4kError(
                f"video {video_id}: no frame has a {dim} label from at least "
                f"{needed} annotator(s) in {trace_dir}{note}"
            )
    for (dim, name), trace in traces.items():
        table[f"{dim}_{name}"] = trace
    write_atomic(out_path, lambda tmp: table.to_parquet(tmp, index=False))


def _test_keys(keys: Sequence[str], test_fraction: float, seed: int) -> set[str]:
    """The keys that go to the test side: the round(n * test_fraction) smallest seeded hashes.

    Hashing each key with the seed makes the split a pure function of (seed, set of keys):
    input order does not matter, and adding a key moves at most one existing key across the
    boundary (the one whose rank crosses it), so results stay comparable as the database grows.
    """
    n_test = min(max(int(np.floor(len(keys) * test_fraction + 0.5)), 1), len(keys) - 1)
    ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    return set(ranked[:n_test])


def assign_split(
    table: pd.DataFrame,
    split: str,
    test_fraction: float,
    seed: int,
    sequence_length: int,
    groups: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Per-row "train"/"test" for a table with ``video`` and ``frame`` columns.

    ``split="group"``: whole groups of videos go to one side, about ``test_fraction`` of the
    groups (at least one on each side). ``groups`` maps a video to its group (a source video, a
    person, a channel: whatever must not straddle the split); a video it does not name is a
    group of its own. Test faces are then people the model has never seen; this is the protocol
    to report. ``split="sequence"``: the study's protocol, each video cut into consecutive
    chunks of ``sequence_length`` frames (``frame // sequence_length``; the last may be shorter)
    and about ``test_fraction`` of all chunks drawn for test. It is optimistic: the same person,
    often in the neighbouring second of the same shot, is in train and test, so it measures
    interpolation within a video rather than generalisation to new people.
    """
    if split not in SPLITS:
        raise Affect4kError(f"split: unknown value {split!r}, expected one of {', '.join(SPLITS)}")
    if not 0 < test_fraction < 1:
        raise Affect4kError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    videos = table["video"].astype(str)
    if split == "group":
        groups = groups or {}
        keys = videos.map(lambda video: groups.get(video, video))
    else:
        if sequence_length < 1:
            raise Affect4kError(f"sequence_length must be >= 1, got {sequence_length}")
        keys = videos + "/" + (table["frame"] // sequence_length).astype(str)
    unique = sorted(set(keys))
    if len(unique) < 2:
        raise Affect4kError(
            f"split={split!r} needs at least 2 {'groups' if split == 'group' else 'chunks'} "
            f"to have a train and a test side, got {len(unique)}"
        )
    test = _test_keys(unique, test_fraction, seed)
    return np.where(keys.isin(test), "test", "train")


def agreement_table(table: pd.DataFrame, annotators: Sequence[str]) -> pd.DataFrame:
    """Pearson r of each unordered annotator pair per dimension, over frames both define.

    Frames are pooled across videos, as in the seed study's 4x4 table (0.60-0.88, mean 0.74).
    """
    rows = []
    for dim in DIMENSIONS:
        for a, b in itertools.combinations(annotators, 2):
            x, y = table[f"{dim}_{a}"].to_numpy(), table[f"{dim}_{b}"].to_numpy()
            both = np.isfinite(x) & np.isfinite(y)
            x, y = x[both], y[both]
            defined = len(x) >= 2 and x.std() > 0 and y.std() > 0
            r = float(np.corrcoef(x, y)[0, 1]) if defined else np.nan
            rows.append((dim, a, b, r, int(both.sum())))
    return pd.DataFrame(
        rows, columns=["dimension", "annotator_a", "annotator_b", "pearson_r", "frames"]
    )


def build_database(
    video_parquets: Sequence[Path],
    annotators: Sequence[str],
    out_parquet: Path,
    out_agreement: Path,
    *,
    split: str = "group",
    test_fraction: float = 1 / 3,
    seed: int = 0,
    sequence_length: int = 80,
    groups: Mapping[str, str] | None = None,
    out_split: Path | None = None,
) -> None:
    """Pool the per-video label tables into the database and write its agreement table.

    The database keeps every frame (NaN labels included, so ``(video, frame)`` stays the row
    key of the frame-index contract) sorted by video then frame, with a ``split`` column (see
    :func:`assign_split`, ``groups`` as there). The per-annotator columns are kept: they let a
    user re-average with another rule or recompute agreement without rerunning the annotation
    stage. ``out_split`` gets ``video, group, split, frames`` per video (``mixed`` where the
    sequence split puts a video on both sides).
    """
    _check_annotators(annotators)
    required = ("video", "frame", "time_s", "face", *DIMENSIONS)
    required += tuple(f"{dim}_{name}" for dim in DIMENSIONS for name in annotators)
    tables = [read_table(path, required, "database input") for path in video_parquets]
    if not tables:
        raise Affect4kError("build_database: no per-video tables given")
    seen: dict[str, Path] = {}
    for path, table in zip(video_parquets, tables, strict=True):
        for video in table["video"].unique():
            if video in seen:
                raise Affect4kError(f"video {video} appears in both {seen[video]} and {path}")
            seen[video] = path
    database = pd.concat(tables, ignore_index=True).sort_values(["video", "frame"])
    database = database.reset_index(drop=True)
    database["split"] = assign_split(database, split, test_fraction, seed, sequence_length, groups)
    agreement = agreement_table(database, annotators)
    for dim, pairs in agreement.groupby("dimension"):
        log.info("mean pairwise %s agreement: r = %.3f", dim, pairs["pearson_r"].mean())
    write_atomic(out_parquet, lambda tmp: database.to_parquet(tmp, index=False))
    write_atomic(out_agreement, lambda tmp: agreement.to_csv(tmp, index=False))
    if out_split is not None:
        sides = database.groupby("video", sort=True)["split"].agg(
            lambda side: side.iat[0] if side.nunique() == 1 else "mixed"
        )
        table = pd.DataFrame(
            {
                "video": sides.index,
                "group": [(groups or {}).get(video, video) for video in sides.index],
                "split": sides.to_numpy(),
                "frames": database.groupby("video", sort=True).size().to_numpy(),
            }
        )
        write_atomic(out_split, lambda tmp: table.to_csv(tmp, index=False))
