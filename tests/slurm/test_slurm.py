"""The cluster profile against a real SLURM: slurmctld, slurmd, slurmdbd, MariaDB and munge.

tests/slurm/cluster.py starts a one-node cluster on loopback whose node declares one GRES of
type gpu, so the GPU rules' request travels the same path as on a GPU node. One workspace runs
a tiny demo corpus (two videos plus one whose URL is broken, and one small training run) with
--profile profiles/slurm: the broken video fails on the cluster, the URL is fixed, the rerun
finishes. A local run of the fixed config in a second workspace gives the reference outputs.
Everything is read back from the scheduler itself: sacct's accounting records, the job logs.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import REPO
from helpers.workflow import demo_config, planned_jobs, run_snakemake, write_config
from slurm import cluster as slurm  # tests/slurm/cluster.py

from affect4k.core.media import iter_frames

#: The cluster runs the workflow: these tests run Snakemake too (the folder gives `slurm`).
pytestmark = pytest.mark.workflow

try:
    import snakemake_executor_plugin_slurm  # noqa: F401
except ImportError:
    pytest.skip("pip install snakemake-executor-plugin-slurm (test extra)", allow_module_level=True)
if slurm.unavailable_reason():
    pytest.skip(slurm.unavailable_reason(), allow_module_level=True)

PROFILE = REPO / "profiles/slurm"
# Three people: the late video is a copy of clip_a's source, so it joins clip_a's person and
# group, and the person split still has three groups for train, validation and test.
DEMO = {"clip_a": (25, "astronaut"), "clip_b": (30, "tom_hanks"), "clip_c": (24, "t1:0")}
BROKEN_URL = "http://127.0.0.1:9/late.mp4"
FIXED_SOURCE = "incoming/late.mp4"
ANNOTATORS = ["a1", "a2", "a3", "a4"]
CONFIG = demo_config(
    DEMO,
    seconds=2,
    annotators=ANNOTATORS,
    training={
        "runs": {
            "tiny": {
                "model": "vgg16_gru",
                "epochs": 1,
                "width": 0.0625,
                "sequence_length": 5,
                "batch_size": 2,
                "fc_units": 16,
                "gru_units": 8,
            }
        }
    },
)
GPU_RULES = {"train", "pretrain", "predict"}
#: The default target also draws the report's figures (workflow/rules/report.smk).
REPORT_RULES = {
    "report_qc",
    "report_database",
    "report_annotators",
    "report_training",
    "report_results",
    "report_predictions",
}
# After the fix only the late video's chain and everything that merges all videos rerun.
RERUN = {"download", "clip", "faces", "annotate", "split", "database", "train", "predict", "tables"}
RERUN |= REPORT_RULES


def _videos_tsv(late_url: str) -> str:
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in DEMO]
    rows.append(f"late\t{late_url}\t\t")
    return "\n".join(rows) + "\n"


def _write_late_traces(work: Path) -> None:
    """Raw traces for the late video (the demo rule only makes them for demo videos)."""
    folder = work / "resources/demo/annotations/late"
    folder.mkdir(parents=True)
    times = np.arange(0, 2.05, 0.1)
    for number, annotator in enumerate(ANNOTATORS):
        for dimension, phase in (("valence", 0.0), ("arousal", 1.0)):
            values = 0.5 * np.sin(times + phase + 0.1 * number)
            rows = zip(times, values, strict=True)
            lines = ["time_s,value", *(f"{t:.2f},{v:.4f}" for t, v in rows)]
            (folder / f"{annotator}.{dimension}.csv").write_text("\n".join(lines) + "\n")


def _fit_to_node(cluster) -> list[str]:
    """The profile's sizes capped to the test node, plus the site keys a user fills in.

    A real profile asks for 8 CPUs and 32 GB per GPU job, which a 2-core test node would never
    schedule. Each override replaces its whole profile key, so every entry is carried over and
    only numbers above the node's size shrink; everything else (executor, GPU requests, logs)
    is the profile as shipped.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    memory_cap = cluster.memory_mb // cluster.cpus

    def fit(name: str, value):
        if name == "mem_mb":
            return min(value, memory_cap)
        return value

    defaults = {key: fit(key, value) for key, value in profile["default-resources"].items()}
    defaults.update(slurm_partition=cluster.partition, slurm_account=cluster.account)
    return [
        "--cores", str(min(profile["cores"], cluster.cpus)),
        "--set-threads",
        *(f"{rule}={min(n, cluster.cpus)}" for rule, n in profile["set-threads"].items()),
        "--set-resources",
        *(f"{rule}:{key}={fit(key, value)}"
          for rule, entries in profile["set-resources"].items()
          for key, value in entries.items()),
        "--default-resources", *(f"{key}={value}" for key, value in defaults.items()),
    ]  # fmt: skip


def _run_on_cluster(work: Path, cluster, *args: str, check: bool = True):
    # Targets first: the resource options after them take any number of values.
    return run_snakemake(
        work,
        *args,
        "--profile",
        str(PROFILE),
        # Poll sooner than a site would; the jobs here take seconds, not hours.
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
        *_fit_to_node(cluster),
        check=check,
    )


def _run_id(result) -> str:
    match = re.search(r"SLURM run ID: (\S+)", result.stdout + result.stderr)
    assert match, "the slurm executor did not start"
    return match.group(1)


def _jobs(cluster, run_id: str) -> list[dict[str, str]]:
    """sacct records of one run with the rule and wildcards its job comment names."""
    records = cluster.sacct(run_id)
    for record in records:
        rule, _, wildcards = record["Comment"].removeprefix("rule_").partition("_wildcards_")
        record.update(rule=rule, wildcards=wildcards)
    return records


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp(slurm.STATE_PREFIX, numbered=True)
    instance = slurm.LoopbackSlurm(state)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """Broken run on the cluster, fix, rerun on the cluster; the fixed config run locally."""
    work = tmp_path_factory.mktemp("slurm_run")
    write_config(work, CONFIG)
    _write_late_traces(work)
    (work / "videos.tsv").write_text(_videos_tsv(BROKEN_URL))
    failed = _run_on_cluster(work, cluster, check=False)

    # The fix: the late video's file arrives on disk and the list points at it.
    (work / FIXED_SOURCE).parent.mkdir()
    shutil.copyfile(work / "resources/demo/sources/clip_a.mp4", work / FIXED_SOURCE)
    (work / "videos.tsv").write_text(_videos_tsv(FIXED_SOURCE))
    plan = run_snakemake(work, "--dry-run", "--profile", str(PROFILE), "--cores", "2")
    rerun = _run_on_cluster(work, cluster)

    local = tmp_path_factory.mktemp("local_run")
    write_config(local, CONFIG)
    _write_late_traces(local)
    (local / FIXED_SOURCE).parent.mkdir()
    shutil.copyfile(work / FIXED_SOURCE, local / FIXED_SOURCE)
    (local / "videos.tsv").write_text(_videos_tsv(FIXED_SOURCE))
    run_snakemake(local)
    return {
        "work": work,
        "local": local,
        "failed": failed,
        "failed_jobs": _jobs(cluster, _run_id(failed)),
        "plan_after_fix": planned_jobs(plan.stdout),
        "rerun": rerun,
        "rerun_jobs": _jobs(cluster, _run_id(rerun)),
    }


def test_a_failed_cluster_job_names_rule_video_and_its_logs(runs):
    failed = runs["failed"]
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    failures = [job for job in runs["failed_jobs"] if job["State"] != "COMPLETED"]
    assert failures and {(job["rule"], job["wildcards"]) for job in failures} == {
        ("download", "late")
    }
    assert all(job["State"] == "FAILED" for job in failures)
    assert "Error in rule download" in output and "video=late" in output
    assert BROKEN_URL in output, "the rule's log (printed by --show-failed-logs) names the URL"
    for job in failures:
        log = runs["work"] / f"logs/slurm/rule_download/late/{job['JobID']}.log"
        assert str(log) in output, "the error report must point at the scheduler's job log"
        assert log.exists()


def test_the_other_videos_finished_despite_the_failure(runs):
    completed = Counter(job["rule"] for job in runs["failed_jobs"] if job["State"] == "COMPLETED")
    per_video = {"demo_video", "download", "clip", "faces", "annotate", "report_qc"}
    assert completed == {rule: len(DEMO) for rule in per_video}


def test_rerun_after_the_fix_submits_only_the_failed_part_and_its_dependents(runs):
    assert runs["plan_after_fix"] == dict.fromkeys(RERUN | {"all"}, 1)
    jobs = runs["rerun_jobs"]
    assert Counter(job["rule"] for job in jobs) == dict.fromkeys(RERUN, 1)
    for job in jobs:
        if job["rule"] in {"download", "clip", "faces", "annotate", "report_qc"}:
            assert job["wildcards"].endswith("late"), job


def test_every_job_ran_through_slurm_and_completed(runs, cluster):
    jobs = runs["rerun_jobs"]
    assert jobs, "sacct has no record of the run"
    assert {job["State"] for job in jobs} == {"COMPLETED"}
    assert {job["Account"] for job in jobs} == {cluster.account}
    assert {job["Partition"] for job in jobs} == {cluster.partition}


def test_gpu_rules_asked_slurm_for_a_gpu_and_nothing_else_did(runs):
    for job in runs["failed_jobs"] + runs["rerun_jobs"]:
        asked = "gres/gpu=1" in job["ReqTRES"].split(",")
        assert asked == (job["rule"] in GPU_RULES), job
        if asked:
            assert "gres/gpu=1" in job["AllocTRES"].split(","), job


def test_scheduler_job_logs_exist(runs):
    for job in runs["failed_jobs"] + runs["rerun_jobs"]:
        folder = runs["work"] / "logs/slurm" / f"rule_{job['rule']}" / job["wildcards"]
        log = folder / f"{job['JobID']}.log"
        assert log.is_file(), log
        assert "SNAKEMAKE" in log.read_text(), f"{log} is not the job's output"


def _same_content(cluster_file: Path, local_file: Path) -> bool:
    """Byte equality, except for containers that stamp the time they were written."""
    if cluster_file.read_bytes() == local_file.read_bytes():
        return True
    if cluster_file.suffix == ".mkv":  # the muxer writes DateUTC
        pairs = zip(iter_frames(cluster_file), iter_frames(local_file), strict=True)
        return all(np.array_equal(a, b) for a, b in pairs)
    if cluster_file.suffix == ".keras":  # metadata.json holds date_saved
        with zipfile.ZipFile(cluster_file) as a, zipfile.ZipFile(local_file) as b:
            return a.read("model.weights.h5") == b.read("model.weights.h5")
    return False


def test_cluster_outputs_equal_those_of_a_local_run(runs):
    def outputs(root: Path) -> list[Path]:
        folders = [root / "results", root / "resources/downloads"]
        return sorted(p.relative_to(root) for f in folders for p in f.rglob("*") if p.is_file())

    cluster_files = outputs(runs["work"])
    assert cluster_files == outputs(runs["local"])
    assert Path("results/tables.csv") in cluster_files
    differing = [
        str(name)
        for name in cluster_files
        if not _same_content(runs["work"] / name, runs["local"] / name)
    ]
    assert differing == []
