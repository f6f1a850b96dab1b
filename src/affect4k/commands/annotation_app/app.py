"""What the annotation app does, apart from HTTP: one annotator's videos, traces, drafts and
calibration over one config (:class:`AnnotationApp`).

The HTTP server (:mod:`affect4k.commands.annotation_app.server`) only routes requests here, so
the app's rules (which video, which dimension, what a save must name) are tested without a
socket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.trace_store import (
    StaleTrace,
    TraceFiles,
    framewise,
    pooled_agreement,
    trace_from_payload,
    uncovered_frames,
    video_columns,
    write_trace,
)
from affect4k.commands.annotation_app.web_copies import WebCopies
from affect4k.config.settings import check_calibration_id, checked_config
from affect4k.config.video_list import read_videos
from affect4k.core.columns import BOX_COLUMNS, DIMENSIONS
from affect4k.core.errors import Affect4kError
from affect4k.core.files import read_table
from affect4k.labels.calibration import CALIBRATION_ID, check_calibration, measure
from affect4k.labels.traces import read_trace

log = logging.getLogger(__name__)


def read_config(configfile: Path) -> dict[str, Any]:
    """The config file alone, checked and completed as the workflow does it."""
    try:
        config = yaml.safe_load(Path(configfile).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise Affect4kError(f"{configfile}: cannot read the config ({error})") from None
    if not isinstance(config, dict):
        raise Affect4kError(f"{configfile}: the config must be a mapping of keys")
    try:
        return checked_config(config)
    except Affect4kError as error:
        raise Affect4kError(f"{configfile}: {error}") from None


def _r(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 3)


@dataclass
class AnnotationApp:
    """What the server needs to know: who annotates, which videos, where traces go, and
    where the clip of each video starts in the traces' time origin."""

    annotator: str
    videos: list[str]
    annotations: Path
    annotators: list[str]
    max_gap_s: float
    copies: WebCopies
    #: ``annotation.max_lag_s``: the largest lag the calibration measures.
    max_lag_s: float
    #: ``annotation.min_calibration_ccc``: a finished calibration trace below it is refused.
    min_calibration_ccc: float
    #: Seconds to add to a clip time to get a trace file's time: each video's ``start`` under
    #: ``annotation.time_origin: source``, 0 under ``clip`` (the annotate stage's reading).
    offsets: dict[str, float] = field(default_factory=dict)
    #: Each video's resampled traces, by what they were read from (names, sizes, mtimes).
    _read: dict[str, tuple[tuple, pd.DataFrame]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(
        cls,
        annotator: str,
        configfile: Path,
        *,
        workdir: Path,
        snakefile: Path,
        cores: int = 1,
    ) -> AnnotationApp:
        """The app of ``annotator`` over ``configfile``; paths in it are relative to ``workdir``.

        ``annotator`` must be one of the config's ``annotators``: the ``annotate`` stage reads no
        other trace, so any other name would label nothing.
        """
        workdir, snakefile = Path(workdir).resolve(), Path(snakefile).resolve()
        configfile = Path(configfile).resolve()
        config = read_config(configfile)
        if annotator not in config["annotators"]:
            raise Affect4kError(
                f"{configfile}: annotator {annotator!r} is not in the config key 'annotators' "
                f"({', '.join(config['annotators'])})"
            )
        try:
            videos = read_videos(workdir / config["videos"])
            check_calibration_id(config["annotations"], [entry.video_id for entry in videos])
        except Affect4kError as error:
            raise Affect4kError(f"{configfile}: config key 'videos': {error}") from None
        source = config["annotation"]["time_origin"] == "source"
        return cls(
            annotator=annotator,
            videos=[entry.video_id for entry in videos],
            annotations=workdir / config["annotations"],
            annotators=list(config["annotators"]),
            max_gap_s=config["annotation"]["max_gap_s"],
            copies=WebCopies(workdir, snakefile, configfile, cores),
            max_lag_s=config["annotation"]["max_lag_s"],
            min_calibration_ccc=config["annotation"]["min_calibration_ccc"],
            # The calibration clip has no source: its traces are in its own time.
            offsets={
                CALIBRATION_ID: 0.0,
                **{entry.video_id: (entry.start or 0.0) if source else 0.0 for entry in videos},
            },
        )

    def files(self, video_id: str, dimension: str) -> TraceFiles:
        """This annotator's trace and draft of one video and dimension."""
        return TraceFiles.of(self.annotations, video_id, self.annotator, dimension)

    def overview(self) -> dict[str, Any]:
        """Every video with this annotator's status in each dimension, and the calibration
        clip's (:data:`CALIBRATION_ID`)."""
        return {
            "annotator": self.annotator,
            "calibration": {
                "video": CALIBRATION_ID,
                **{d: self.files(CALIBRATION_ID, d).status() for d in DIMENSIONS},
            },
            "videos": [
                {"video": video, **{d: self.files(video, d).status() for d in DIMENSIONS}}
                for video in self.videos
            ],
        }

    def annotation(self, video_id: str, dimension: str) -> dict[str, Any]:
        """What the annotation page starts from: the clip, the trace to resume (in clip time),
        the version a save must name, the agreement."""
        n_frames = self.copies.frames(video_id)
        files = self.files(video_id, dimension)
        with files.locked():
            version, status, resumable = files.version(), files.status(), files.resumable()
            values = (
                framewise(resumable, n_frames, self.max_gap_s, self.offsets[video_id])
                if resumable
                else None
            )
        return {
            "annotator": self.annotator,
            "video": video_id,
            "dimension": dimension,
            "fps": CLIP_FPS,
            "frames": n_frames,
            "media": f"/media/{video_id}.mp4",
            "values": values,
            "version": version,
            "status": status,
            **(
                {
                    "calibration": self.calibration(
                        dimension, files.final if status["done"] else None
                    )
                }
                if video_id == CALIBRATION_ID
                else {"agreement": self.agreement(video_id, dimension)}
            ),
        }

    def calibration(self, dimension: str, trace: Path | None) -> dict[str, Any] | None:
        """This annotator's reaction lag and accuracy on the calibration clip, measured from
        their saved ``trace`` of ``dimension`` as the ``calibration`` stage measures it
        (``None`` before it is saved)."""
        if trace is None:
            return None
        try:
            lag_s, agreement = measure(
                *read_trace(trace), dimension, self.max_lag_s, self.max_gap_s
            )
        except Affect4kError as error:
            return {"error": str(error)}
        return {"lag_s": round(lag_s, 3), "ccc": _r(agreement), "max_lag_s": self.max_lag_s}

    def subject_boxes(self, video_id: str) -> dict[str, Any]:
        """The subject's box on every clip frame (clip pixels, ``None`` where the database has
        no face), from the face stage's table, so the page can show annotators the person whose
        crops get their labels. ``boxes`` is ``None`` until the faces stage has run."""
        path = self.copies.workdir / "results" / "faces" / f"{video_id}.parquet"
        if not path.is_file():
            return {"boxes": None}
        table = read_table(path, ("face", *BOX_COLUMNS), f"video {video_id}: subject boxes")
        boxes = np.round(table[list(BOX_COLUMNS)].to_numpy(float), 1)
        face = table["face"].to_numpy(bool) & np.isfinite(boxes).all(axis=1)
        return {
            "boxes": [box.tolist() if ok else None for box, ok in zip(boxes, face, strict=True)]
        }

    def _columns(self, video_id: str, n_frames: int) -> pd.DataFrame:
        """:func:`video_columns` of one video, read again only when a trace file changed (the
        pooled agreement reads every video's traces on each save)."""
        folder = self.annotations / video_id
        try:
            # Every save renames a new file into place: a new inode, whatever the clock says.
            stats = [(path.name, path.stat()) for path in folder.glob("*.csv")]
            key = (n_frames, *sorted((n, s.st_ino, s.st_size, s.st_mtime_ns) for n, s in stats))
        except OSError:
            key = None
        cached = self._read.get(video_id)
        if key is None or cached is None or cached[0] != key:
            columns = video_columns(
                folder, self.annotators, n_frames, self.max_gap_s, self.offsets[video_id]
            )
            self._read[video_id] = (key, columns)
            return columns
        return cached[1]

    def agreement(self, video_id: str, dimension: str) -> dict[str, Any]:
        """Pearson r of this annotator's finished trace with each other finished one, on this
        video and pooled over every video whose frame count is known (as ``agreement.csv``
        pools them), each trace read in the config's time origin as the annotate stage does."""
        try:
            this = self._columns(video_id, self.copies.frames(video_id))
            pooled = [this]
            for other in self.videos:
                n_frames = self.copies.known_frames(other) if other != video_id else None
                if n_frames is not None:
                    pooled.append(self._columns(other, n_frames))
            skipped = {
                name
                for name in self.annotators
                if TraceFiles.of(self.annotations, video_id, name, dimension).status()["skipped"]
            }
            return {
                "video": self._pairs(pooled_agreement([this], self.annotators), dimension),
                "pooled": {
                    **self._pairs(pooled_agreement(pooled, self.annotators), dimension),
                    "videos": len(pooled),
                    "of": len(self.videos),
                },
                "skipped": sorted(skipped),
            }
        except Affect4kError as error:
            return {"error": str(error)}

    def _pairs(self, table: pd.DataFrame, dimension: str) -> dict[str, Any]:
        table = table[table["dimension"] == dimension]
        mine = (table["annotator_a"] == self.annotator) | (table["annotator_b"] == self.annotator)
        others = table.loc[~mine, "pearson_r"].dropna()
        return {
            "pairs": [
                {
                    "annotator": row.annotator_b
                    if row.annotator_a == self.annotator
                    else row.annotator_a,
                    "pearson_r": _r(row.pearson_r),
                    "frames": int(row.frames),
                }
                for row in table[mine].itertuples()
            ],
            "others_mean_r": _r(others.mean()) if len(others) else None,
        }

    def save(self, video_id: str, dimension: str, payload: Any) -> dict[str, Any]:
        """Write the page's trace: as the finished trace if ``done``, else as the draft.

        A finished calibration trace that :func:`affect4k.labels.calibration.check_calibration`
        refuses (flat, inverted, below ``min_calibration_ccc``) is not written: the page shows
        why, and the annotator traces it again (a draft is saved as any other).

        ``version`` must be the one the page last loaded or saved: a save from a tab that
        missed another tab's (or server's) save is refused with :class:`StaleTrace`.
        """
        n_frames = self.copies.frames(video_id)
        done = payload.get("done") if isinstance(payload, dict) else None
        if not isinstance(done, bool):
            raise Affect4kError("the request needs done: true (finished) or false (draft)")
        times, values = trace_from_payload(payload, n_frames / CLIP_FPS)
        base = payload.get("version")
        if not isinstance(base, str):
            raise Affect4kError("the request needs the version of the trace it continues")
        files = self.files(video_id, dimension)
        with files.locked():
            if files.version() != base:
                raise StaleTrace(
                    "this trace was saved elsewhere (another tab or server) after this page "
                    "loaded it: reload the page to continue from that save"
                )
            if done:
                missing = uncovered_frames(times, n_frames, self.max_gap_s)
                if missing.size:
                    first = int(missing[0])
                    raise Affect4kError(
                        f"{missing.size} of {n_frames} frames are not annotated yet (the first "
                        f"at {first / CLIP_FPS:.2f} s): play them, or save a draft"
                    )
                if video_id == CALIBRATION_ID:  # refused here, so it is never written
                    check_calibration(
                        times,
                        values,
                        dimension,
                        max_lag_s=self.max_lag_s,
                        max_gap_s=self.max_gap_s,
                        min_ccc=self.min_calibration_ccc,
                    )
            path = files.final if done else files.draft
            write_trace(path, times + self.offsets[video_id], values)
            if done:
                files.draft.unlink(missing_ok=True)
        log.info("%s: saved %s (%d samples)", video_id, path, len(times))
        return self.annotation(video_id, dimension)
