"""Every `snakemake` command the README shows runs as typed (dry-run, in a scratch clone).

The README's own-study walkthrough is run as a shell script in a scratch home whose
``~/affect4k`` is a copy of this repository; the user's trace files and local videos it refers
to are filled in with placeholders, as the README tells the user to. Every other command runs
in the copy's root (the study's config gets placeholder traces for its 120 videos).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.readme import BLOCKS, COMMANDS, _commands
from helpers.workflow import copy_workflow

from affect4k.config.video_list import read_videos
from affect4k.video.download import local_source

NOT_BUILT = "marked for report but does not exist"
# A shell function standing in for the snakemake command: the same arguments, as a dry run.
SHIM = f'snakemake() {{ {shlex.quote(sys.executable)} -m snakemake --dry-run "$@"; }}\n'


def _placeholders(folder: Path, config: Path) -> None:
    """Trace files and local videos a user would have put where ``config`` says."""
    import yaml

    settings = yaml.safe_load(config.read_text())
    annotators = settings.get("annotators", ["a1", "a2", "a3", "a4"])
    for entry in read_videos(folder / settings["videos"]):
        traces = folder / settings["annotations"] / entry.video_id
        traces.mkdir(parents=True, exist_ok=True)
        for annotator in annotators:
            for dimension in ("valence", "arousal"):
                (traces / f"{annotator}.{dimension}.csv").write_text("time_s,value\n0,0\n1,0\n")
        if not entry.url.startswith(("http://", "https://")):
            source = folder / local_source(entry.url).relative_to(Path.cwd())
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(b"placeholder")


WALKTHROUGH = next(block for block in BLOCKS if "mkdir -p ~/my-study" in block)


ANNOTATE = [command for block in BLOCKS for command in _commands(block, "affect4k annotate")]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A scratch home: ~/affect4k is a clone, ~/my-study is what the walkthrough made."""
    home = tmp_path_factory.mktemp("home")
    clone = home / "affect4k"
    copy_workflow(clone)
    subprocess.run(
        ["bash", "-euc", WALKTHROUGH],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        cwd=home,
        check=True,
    )
    study = home / "my-study"
    _placeholders(study, study / "config.yaml")
    _placeholders(clone, clone / "config/study.yaml")
    return home


@pytest.mark.parametrize(("folder", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_readme_command_runs_as_typed(home, folder, command):
    cwd = home / "affect4k" if folder is None else Path(folder.replace("~", str(home), 1))
    env = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", "-euc", SHIM + command], cwd=cwd, env=env, capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    if "--report" in command:
        # Nothing is built in the scratch clone, so the report has no figures to pack yet (a
        # built one is tested in tests/workflow/test_report.py); the command itself parsed and
        # planned.
        assert result.returncode == 0 or NOT_BUILT in output, output[-3000:]
        return
    assert result.returncode == 0, output[-3000:]
    if "--list-" not in command:  # the listing commands plan no jobs
        assert "Job stats:" in output or "Nothing to be done" in output, output[-3000:]


def test_a_missing_configfile_outside_the_workflow_names_the_flag(home):
    """From a study folder without --configfile, the error names the flag; it does not say
    that a config file (the demo's) is missing."""
    env = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    argv = [sys.executable, "-m", "snakemake", "-s", str(home / "affect4k/Snakefile")]
    result = subprocess.run(
        [*argv, "--report", "results/report.html"],
        cwd=home / "my-study", env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no --configfile given" in output and "--configfile config.yaml" in output, output
    assert "not present or accessible" not in output and "config/config.yaml" not in output


@pytest.mark.parametrize(("folder", "command"), ANNOTATE, ids=[c for _, c in ANNOTATE])
def test_readme_annotate_command_serves_from_its_folder(home, folder, command):
    """The app starts as typed (on a free port) with the clone's package, which finds the
    clone's workflow by itself; it is stopped once it says where to open it."""
    assert folder is not None, "the README says which folder to run it from"
    cwd = Path(folder.replace("~", str(home), 1))
    assert not (cwd / "Snakefile").exists()
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(home / "affect4k" / "src"),
    }
    argv = [sys.executable, "-m", "affect4k", *shlex.split(command)[1:], "--port", "0"]
    with subprocess.Popen(argv, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            seen = []
            for line in process.stderr:
                seen.append(line)
                if "annotating as a1: open http://127.0.0.1:" in line:
                    break
            else:
                pytest.fail("".join(seen))
        finally:
            process.terminate()
