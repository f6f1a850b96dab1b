"""A study folder deployed as the Snakemake workflow catalog deploys workflows (snakedeploy,
the module directive) builds the database and the tables with its own config, and writes
nothing into the workflow it uses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers.workflow import TINY_RUN, copy_workflow, demo_config, run_snakemake, write_config

VIDEOS = {"dep_a": (30, "astronaut"), "dep_b": (25, "tom_hanks"), "dep_c": (24, "t1:0")}


def test_a_study_deployed_with_snakedeploy_builds_its_tables(tmp_path: Path):
    deploy = pytest.importorskip("snakedeploy.deploy")
    checkout = tmp_path / "affect4k"
    snakefile = copy_workflow(checkout)
    study = tmp_path / "study"
    deploy.deploy(str(checkout), name="affect4k", tag="v0.2.0", branch=None, dest_path=study)
    module = (study / "workflow/Snakefile").read_text()
    assert "module affect4k:" in module and "use rule * from affect4k" in module
    # snakedeploy 0.17 writes a local source's Snakefile relative to the source, which the
    # study's workflow/ cannot resolve: point the module at the checkout, as config/README.md
    # tells a user of a local checkout to do (a GitHub source gets github(..., tag=...)).
    assert '"Snakefile"' in module
    (study / "workflow/Snakefile").write_text(module.replace('"Snakefile"', f'"{snakefile}"'))
    # The deployed config/ is the demo's, with the configuration page: the study's own config
    # replaces it, its videos listed in the study folder.
    assert (study / "config/README.md").is_file() and (study / "config/config.yaml").is_file()
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in VIDEOS]
    (study / "config/videos.tsv").write_text("\n".join(rows) + "\n")
    training = {"runs": {"tiny": TINY_RUN}, "pretrain": {}, "ablation": {"runs": []}}
    config = demo_config(VIDEOS, seconds=4, training=training, evaluation={"corpora": {}})
    config["demo"]["corpora"] = {}
    config["videos"] = "config/videos.tsv"
    (study / "config").mkdir(exist_ok=True)
    write_config(study / "config", config)
    run_snakemake(
        study,
        "results/annotations.parquet",
        "results/tables.csv",
        snakefile=study / "workflow/Snakefile",
        config=study / "config/config.yaml",
    )
    database = pd.read_parquet(study / "results/annotations.parquet")
    assert set(database["video"]) == set(VIDEOS)
    tables = pd.read_csv(study / "results/tables.csv")
    assert set(tables["run"]) == {"tiny"} and {"validation", "test"} <= set(tables["eval_set"])
    # Everything lands in the study; the workflow's checkout stays as it was.
    assert not (checkout / "results").exists() and not (checkout / "resources").exists()
