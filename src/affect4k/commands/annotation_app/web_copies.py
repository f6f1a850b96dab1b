"""The web copies the annotation page plays, built by the workflow on demand.

A missing web copy (``results/web/{video}.mp4``) is made by running Snakemake for it, so a
missing clip is built too and Snakemake's records stay consistent; the page polls how far the
build got.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
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
    it got, from Snakemake's own output and the running job's log.
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
        answer = {key: value for key, value in state.items() if key != "log"}
        if state.get("log"):
            answer["log"] = last_line(self.workdir / state["log"])
        return answer

    def _build(self, video_id: str) -> None:
        if video_id == CALIBRATION_ID:  # the package's own clip, no workflow stage
            make_calibration_clip(self.path(video_id))
            return
        target = f"results/web/{video_id}.mp4"
        argv = [sys.executable, "-m", "snakemake", "--snakefile", str(self.snakefile)]
        argv += ["--directory", str(self.workdir), "--cores", str(self.cores), target]
        # --configfile takes several values: last, so it cannot swallow the target.
        argv += ["--configfile", str(self.configfile)]
        state: dict[str, Any] = {"target": target, "waiting": True, "done": 0, "total": None}
        self._progress[video_id] = state
        try:
            with self._snakemake:
                state["waiting"] = False
                log.info("building %s", target)
                output = self._run(argv, state)
        finally:
            del self._progress[video_id]
        if output is not None:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise Affect4kError(f"video {video_id}: snakemake {target} failed:\n{tail}")

    @staticmethod
    def _run(argv: list[str], state: dict[str, Any]) -> str | None:
        """Run Snakemake, noting its progress in ``state``; its output if it failed."""
        lines = []
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if match := re.match(r"(?:local)?rule (\w+):", line):
                    state["job"], state["log"] = match.group(1), None
                elif match := re.match(r"\s+log: (\S+)", line):
                    state["log"] = match.group(1)
                elif match := re.search(r"(\d+) of (\d+) steps", line):
                    state["done"], state["total"] = int(match.group(1)), int(match.group(2))
                elif match := re.fullmatch(r"total\s+(\d+)\s*", line):
                    state["total"] = int(match.group(1))
        return None if process.returncode == 0 else "".join(lines)


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
