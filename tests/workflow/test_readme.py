"""Every `snakemake` command the README shows runs as typed (dry-run, in a scratch clone).

The README's own-study walkthrough is run as a shell script in a scratch home whose
``~/affect4k`` is a copy of this repository; the user's trace files and local videos it refers
to are filled in with placeholders, as the README tells the user to. Every other command runs
in the copy's root (the study's config gets placeholder traces for its 120 videos).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from helpers.workflow import copy_workflow

from affect4k.config.video_list import read_videos
from affect4k.video.download import local_source

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
INLINE = re.findall(r"(?<!`)`(snakemake [^`]+)`", README)
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


def _commands(block: str, program: str = "snakemake") -> list[tuple[str | None, str]]:
    """(folder the block cd'd to, command) for each ``program`` command of a bash block."""
    found, folder = [], None
    for line in block.splitlines():
        for part in line.split("&&"):
            # A command sent to the background (`... &`, to run beside the next) runs in the
            # foreground here, so its exit status counts.
            part = part.strip().removesuffix("&").strip()
            if part.startswith("cd "):
                folder = part[3:].strip()
            elif part.startswith(f"{program} "):
                found.append((folder, part))
    return found


WALKTHROUGH = next(block for block in BLOCKS if "mkdir -p ~/my-study" in block)
COMMANDS = [command for block in BLOCKS for command in _commands(block)]
COMMANDS += [(None, command) for command in INLINE]
ANNOTATE = [command for block in BLOCKS for command in _commands(block, "affect4k annotate")]


def test_the_readme_shows_the_commands_this_test_runs():
    assert len(COMMANDS) >= 6
    assert not [command for _, command in COMMANDS if "\n" in command], "one line per command"
    assert any("results/tables.csv --configfile config.yaml" in c for _, c in COMMANDS)


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
        # built one is tested in tests/test_report.py); the command itself parsed and planned.
        assert result.returncode == 0 or NOT_BUILT in output, output[-3000:]
        return
    assert result.returncode == 0, output[-3000:]
    if "--list-" not in command:  # the listing commands plan no jobs
        assert "Job stats:" in output or "Nothing to be done" in output, output[-3000:]


def test_the_readme_gives_the_own_study_form_of_the_report_commands():
    """See the results: the build and the report from the study's folder, -s and --configfile
    as in the walkthrough (test_readme_command_runs_as_typed runs them there)."""
    study = [command for folder, command in COMMANDS if folder == "~/my-study"]
    for form in ("--cores 8 --configfile config.yaml", "--report results/report.html"):
        assert any(
            form in command and "-s ~/affect4k/Snakefile" in command and
            command.endswith("--configfile config.yaml")
            for command in study
        ), form  # fmt: skip


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


def test_the_readme_says_once_why_targets_go_before_configfile_and_every_command_does():
    """A target after --configfile is read as a second config file (a 30-line traceback)."""
    assert README.count("a target after it is read as a second config file") == 1
    for _, command in COMMANDS:
        words = shlex.split(command.removesuffix("&"))
        for index, word in enumerate(words[:-2]):
            if word == "--configfile":
                assert words[index + 2].startswith("-"), command


def test_the_readme_says_that_a_trace_edit_under_estimated_lags_reruns_every_video():
    text = " ".join(README.split())
    assert (
        "Under `annotation.lag: estimate` the lags come from every video's traces at once "
        "(`results/lags.csv`, even with `per_video: true`), so editing one trace reruns the "
        "`lags` job, every video's `annotate` job and everything after them" in text
    )
