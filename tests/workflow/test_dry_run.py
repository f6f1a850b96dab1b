"""A dry run creates nothing: not in a fresh clone running the demo, not in a user's folder
whose sources need a brace-free link (affect4k.video.download.tracked_source).

Snakemake itself makes its metadata folder ``.snakemake/`` (locks, iocache, log) for a dry run
as for any run, before the workflow is read; that folder is the one thing allowed to appear.
"""

from __future__ import annotations

from pathlib import Path

from helpers.workflow import copy_workflow, planned_jobs, run_snakemake, write_config


def _files(root: Path) -> set[str]:
    """Every path under ``root`` (links too, even dangling), except Snakemake's metadata."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if ".snakemake" not in path.relative_to(root).parts
    }


def test_a_dry_run_of_the_demo_in_a_fresh_clone_creates_nothing(tmp_path):
    snakefile = copy_workflow(tmp_path)
    before = _files(tmp_path)
    plan = run_snakemake(
        tmp_path, "-n", config=tmp_path / "config/config.yaml", snakefile=snakefile
    )
    assert planned_jobs(plan.stdout)["demo_video"] > 0
    assert _files(tmp_path) == before


def test_a_dry_run_makes_no_link_for_a_braced_source(tmp_path):
    (tmp_path / "clip{1}.mp4").write_bytes(b"a source that only a real run would read")
    (tmp_path / "videos.tsv").write_text("video_id\turl\tstart\tend\nv1\tclip{1}.mp4\t\t\n")
    write_config(tmp_path, {"videos": "videos.tsv", "annotations": "annotations"})
    before = _files(tmp_path)
    plan = run_snakemake(tmp_path, "-n", "resources/downloads/v1.mkv")
    assert planned_jobs(plan.stdout) == {"download": 1}
    assert _files(tmp_path) == before
