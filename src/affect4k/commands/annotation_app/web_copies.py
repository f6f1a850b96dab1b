"""The web copies the annotation page plays, built by the workflow on demand.

A missing web copy (``results/web/{video}.mp4``) is made by running Snakemake for it, so a
missing clip is built too and Snakemake's records stay consistent; the page polls how far the
build got, which Snakemake's events say (the ``affect4k-progress`` logger plugin writes them as
JSON lines) and the running job's own log.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from affect4k.commands.annotation_app.calibration_clip import make_calibration_clip
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames
from affect4k.labels.calibration import CALIBRATION_ID

log = logging.getLogger(__name__)


class WebCopies:
    """Builds ``results/web/{video}.mp4`` on demand with Snakemake, once per video per server.

    Running the workflow (rather than writing the file directly) builds a missing clip too and
    leaves Snakemake's records consistent. Each video has its own lock, so a request about one
    video never waits for another's build; the Snakemake runs themselves take turns, because
    Snakemake locks its working directory. While a build runs, :meth:`progress` says how far
    it got, from Snakemake's events and the running job's log.
    """

    def __init__(self, workdir: Path, snakefile: Path, configfile: Path, cores: int) -> None:
        self.workdir, self.snakefile, self.configfile = workdir, snakefile, configfile
        self.cores = cores
        self._frames: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._snakemake = threading.Lock()
        self._progress: dict[str, dict[str, Any]] = {}

    def path(self, video_id: str) -> Path:
        """Where Snakemake puts the web copy of ``video_id``."""
        return self.workdir / "results" / "web" / f"{video_id}.mp4"

    def frames(self, video_id: str) -> int:
        """The web copy's frame count, after bringing it up to date."""
        if video_id in self._frames:
            return self._frames[video_id]
        with self._locks_lock:
            lock = self._locks.setdefault(video_id, threading.Lock())
        with lock:
            if video_id not in self._frames:
                self._build(video_id)
                self._frames[video_id] = count_frames(self.path(video_id))
            return self._frames[video_id]

    def known_frames(self, video_id: str) -> int | None:
        """The frame count without building anything: this server's web copy, else the rows of
        the workflow's faces table (one per clip frame), else ``None``."""
        if video_id in self._frames:
            return self._frames[video_id]
        faces = self.workdir / "results" / "faces" / f"{video_id}.parquet"
        try:
            return pq.read_metadata(faces).num_rows
        except (OSError, ValueError):
            return None

    def progress(self, video_id: str) -> dict[str, Any] | None:
        """How far the running build of ``video_id`` got; ``None`` when none runs."""
        state = self._progress.get(video_id)
        if state is None:
            return None
        answer = {key: value for key, value in state.items() if key != "events"}
        if state.get("events"):
            answer |= build_progress(state["events"])
        if answer.get("log"):
            answer["log"] = last_line(self.workdir / answer["log"])
        return answer

    def _build(self, video_id: str) -> None:
        if video_id == CALIBRATION_ID:  # the package's own clip, no workflow stage
            make_calibration_clip(self.path(video_id))
            return
        target = f"results/web/{video_id}.mp4"
        self._progress[video_id] = {"target": target, "waiting": True, "done": 0, "total": None}
        try:
            with self._snakemake, tempfile.TemporaryDirectory() as scratch:
                events = Path(scratch) / "events.jsonl"
                argv = [sys.executable, "-m", "snakemake", "--snakefile", str(self.snakefile)]
                argv += ["--directory", str(self.workdir), "--cores", str(self.cores), target]
                argv += ["--logger", "affect4k-progress", "--logger-affect4k-progress-path"]
                # --configfile takes several values: last, so it cannot swallow the target.
                argv += [str(events), "--configfile", str(self.configfile)]
                self._progress[video_id] |= {"waiting": False, "events": events}
                log.info("building %s", target)
                result = subprocess.run(
                    argv, capture_output=True, text=True, errors="replace", check=False
                )
        finally:
            del self._progress[video_id]
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()
            tail = "\n".join(output[-15:])
            raise Affect4kError(f"video {video_id}: snakemake {target} failed:\n{tail}")


def build_progress(events: Path) -> dict[str, Any]:
    """What Snakemake's events so far say: the job running (``job``, its ``log``), jobs
    ``done`` of ``total``; each event's fields replace the last ones'."""
    progress: dict[str, Any] = {}
    try:
        lines = events.read_text(encoding="utf-8").splitlines()
    except OSError:  # no event yet
        return progress
    for line in lines:
        try:
            progress |= json.loads(line)
        except json.JSONDecodeError:  # the line being written
            break
    return progress


def last_line(path: Path, size: int = 512) -> str | None:
    """The last non-empty line of a log being written (its newest progress line), if any."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - size))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]
    return lines[-1] if lines else None
