"""files: outputs appear whole with the user's umask, killed writes leave nothing behind for
long, and a full disk is one line naming the job and the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import REPO

from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_dir, atomic_path, scratch_dir, write_atomic

SRC = REPO / "src"


def python(code: str, **kwargs) -> subprocess.Popen[str]:
    """A Python child running ``code`` against this checkout's package."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


@pytest.fixture
def umask():
    """Set a umask for one test and restore the caller's afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_outputs_get_the_users_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    out = tmp_path / "results" / "table.csv"
    write_atomic(out, lambda tmp: tmp.write_text("a,b\n"))
    assert out.stat().st_mode & 0o777 == file_mode
    with scratch_dir(out) as folder:
        assert folder.stat().st_mode & 0o777 == dir_mode
    assert sorted(p.name for p in out.parent.iterdir()) == ["table.csv"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    out = tmp_path / "v1.parquet"
    out.write_text("old")
    with pytest.raises(RuntimeError, match="writer broke"), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer broke")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["v1.parquet"]


def test_a_killed_writers_temp_files_are_removed_by_the_next_write(tmp_path):
    """SIGKILL leaves temp files; rewriting an output removes its own, never another's."""
    child = python(
        f"""
        import time
        from pathlib import Path
        from affect4k.core.files import atomic_path, scratch_dir
        root = Path({str(tmp_path)!r})
        with atomic_path(root / "a.mkv") as a, atomic_path(root / "b-a.mkv") as b:
            with scratch_dir(root / "a.mkv") as work:
                for path in (a, b, work / "video.f137.mp4"):
                    path.write_bytes(b"partial")
                print("ready", flush=True)
                time.sleep(60)
        """
    )
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 3 and all(name.startswith(".tmp-") for name in left)
    write_atomic(tmp_path / "a.mkv", lambda tmp: tmp.write_bytes(b"complete"))
    assert (tmp_path / "a.mkv").read_bytes() == b"complete"
    temps = [p.name for p in tmp_path.iterdir() if p.name != "a.mkv"]
    assert len(temps) == 1 and temps[0].endswith("-b-a.mkv")  # b-a.mkv's own leftover is kept


JOB = """
    import resource, signal, sys
    from pathlib import Path
    from types import SimpleNamespace
    from affect4k.core.files import write_atomic
    from affect4k.core.workflow import job
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    snakemake = SimpleNamespace(
        rule="clip", wildcards={{"video": "v1"}},
        config={{"ffmpeg": None, "training": {{"backend": "tensorflow"}}}},
    )
    with job(snakemake):
        {step}
"""


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "write_atomic(Path({out!r}), lambda tmp: tmp.write_bytes(bytes(100_000)))",
            "error: clip video=v1: cannot write {out}: File too large",
        ),
        (
            "write_atomic(Path({out!r}), lambda tmp: Path('/nonexistent/in.csv').read_text())",
            "error: clip video=v1: cannot write {out}: /nonexistent/in.csv: No such file",
        ),
        (
            "Path('/nonexistent/in.csv').read_text()",
            "error: clip video=v1: /nonexistent/in.csv: No",
        ),
    ],
)
def test_full_disk_is_one_line_naming_job_and_path(tmp_path, step, message):
    out = tmp_path / "results" / "v1.avi"
    out.parent.mkdir()
    child = python(JOB.format(step=step.format(out=str(out))))
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(message.format(out=out))
    assert list(out.parent.iterdir()) == []


def test_unwritable_directory_is_an_affect4k_error(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder should be")
    expected = r"cannot write .*results/v1\.csv: .*results: File exists"
    with pytest.raises(Affect4kError, match=expected):
        write_atomic(blocker / "v1.csv", lambda tmp: tmp.write_text("x"))


def test_a_folder_is_published_whole_or_not_at_all(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "old.jpg").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_dir(out) as temp:
        (temp / "000000.jpg").write_bytes(b"new")
        raise RuntimeError("killed half way")
    assert sorted(p.name for p in out.iterdir()) == ["old.jpg"], "the old folder is untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["frames"], "no temp folder is left"
    with atomic_dir(out) as temp:
        (temp / "000000.jpg").write_bytes(b"new")
    assert sorted(p.name for p in out.iterdir()) == ["000000.jpg"], "the new folder replaced it"


def test_a_jobs_warnings_reach_the_build_output_as_one_line_naming_the_job(tmp_path):
    """The job's log gets everything; the console (Snakemake's output) the package's warnings."""
    log = tmp_path / "annotate.log"
    child = python(
        f"""
        import logging, sys
        from types import SimpleNamespace
        from affect4k.core.workflow import job
        sys.stderr = open({str(log)!r}, "w", buffering=1)  # as workflow/scripts/common.py does
        snakemake = SimpleNamespace(rule="annotate", wildcards={{"video": "v1"}},
                                    config={{"ffmpeg": None}})
        with job(snakemake):
            logging.getLogger("affect4k.labels.annotate").info("v1: resampled")
            logging.getLogger("affect4k.labels.annotate").warning("video v1: 20.0 % unlabelled")
            logging.getLogger("some.library").warning("library noise")
        """
    )
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert stderr.splitlines() == ["warning: annotate video=v1: video v1: 20.0 % unlabelled"]
    written = log.read_text()
    assert "v1: resampled" in written and "20.0 % unlabelled" in written
    assert "library noise" in written
