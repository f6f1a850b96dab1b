"""What .snakemake-workflow-catalog.yml declares holds: every job runs in a conda env of envs/
(``--sdm conda``) and ``snakemake --report`` has figures to show."""

from __future__ import annotations

import re

import yaml
from helpers import REPO


def _rules() -> dict[str, str]:
    """Rule name -> its block of text, over workflow/rules/*.smk."""
    rules = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for block in re.split(r"(?m)^\s*rule ", smk.read_text())[1:]:
            rules[block.split(":")[0]] = block
    return rules


def test_the_catalog_file_declares_conda_and_the_report():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True
    assert (REPO / "config/README.md").is_file() and (REPO / "config/config.yaml").is_file()


def test_every_job_rule_has_a_conda_env_of_envs():
    jobs = {name: block for name, block in _rules().items() if re.search(r"(script|shell):", block)}
    assert {"download", "train", "report_qc"} <= jobs.keys()
    for name, block in jobs.items():
        env = re.search(r'conda:\s*"\.\./\.\./(envs/[\w.-]+\.yaml)"', block)
        assert env, f"rule {name} has no conda env: --sdm conda would run it in the host env"
        assert (REPO / env.group(1)).is_file(), (name, env.group(1))


def test_the_report_has_captioned_figures_and_the_readme_says_how_to_make_it():
    assert re.search(r"(?m)^report: ", (REPO / "Snakefile").read_text())
    captions = re.findall(r'caption="\.\./(report/[\w.]+\.rst)"', "".join(_rules().values()))
    assert captions and all((REPO / "workflow" / caption).is_file() for caption in captions)
    readme = (REPO / "README.md").read_text()
    assert "snakemake --report results/report.html" in readme and "--sdm conda" in readme
