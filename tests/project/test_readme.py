"""What the README says and shows: the commands tests/workflow/test_readme.py runs, the own-study
form of the report commands, why targets go before --configfile."""

from __future__ import annotations

import shlex

from helpers.readme import COMMANDS, README


def test_the_readme_shows_the_commands_this_test_runs():
    assert len(COMMANDS) >= 6
    assert not [command for _, command in COMMANDS if "\n" in command], "one line per command"
    assert any("results/tables.csv --configfile config.yaml" in c for _, c in COMMANDS)


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
