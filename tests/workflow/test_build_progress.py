"""The annotation app's build progress comes from Snakemake's own events (the
``affect4k-progress`` logger plugin, JSON lines), not from its console text."""

import json
import subprocess
import sys

from affect4k.commands.annotation_app.web_copies import build_progress

SNAKEFILE = """
rule first:
    output: "first.txt"
    log: "logs/first.log"
    shell: "echo first > {output} 2> {log}"

rule second:
    input: "first.txt"
    output: "second.txt"
    shell: "cp {input} {output}"
"""


def test_the_logger_plugin_writes_each_job_and_step_and_the_app_folds_them(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    events = tmp_path / "events.jsonl"
    argv = [sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path)]
    argv += ["--snakefile", str(tmp_path / "Snakefile"), "second.txt", "--quiet", "all"]
    argv += ["--logger", "affect4k-progress", "--logger-affect4k-progress-path", str(events)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    # Whatever --quiet says: the job count, each job with its log, each step done.
    assert {"total": 2} in lines
    assert {"job": "first", "log": "logs/first.log"} in lines
    assert {"job": "second", "log": None} in lines
    assert lines.index({"job": "first", "log": "logs/first.log"}) < lines.index(
        {"done": 1, "total": 2}
    )
    assert build_progress(events) == {"job": "second", "log": None, "done": 2, "total": 2}


def test_progress_reads_the_events_written_so_far(tmp_path):
    events = tmp_path / "events.jsonl"
    assert build_progress(events) == {}, "no event yet"
    events.write_text('{"total": 3}\n{"job": "clip", "log": "logs/clip/a.log"}\n{"done": 1, "to')
    assert build_progress(events) == {"total": 3, "job": "clip", "log": "logs/clip/a.log"}
