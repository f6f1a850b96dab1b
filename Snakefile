# affect4k: YouTube URL list -> 25 fps clips -> aligned 4K face crops -> averaged valence/arousal.
# Stages live in workflow/rules/, their logic in src/affect4k/. See README.md and docs/design.md.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# This Snakefile's folder: workflow.basedir is the main Snakefile's, a study's folder when a
# study uses this workflow as a module (config/README.md, tests/workflow/test_deploy.py).
WORKFLOW_DIR = Path(workflow.current_basedir)
# The workflow always runs the package code that sits next to it (scripts do the same through
# workflow/scripts/common.py).
SRC = WORKFLOW_DIR / "src"
sys.path.insert(0, str(SRC))

from affect4k.core.errors import Affect4kError
from affect4k.config.settings import checked_config

# Without --configfile the demo runs (config/config.yaml); a user's --configfile stands alone,
# on the schema's defaults (the study's settings), and inherits nothing from the demo. The demo
# runs only in the workflow's own folder: elsewhere (a study's folder) the flag is missing.
if not workflow.config_settings.configfiles:
    if not Path("config/config.yaml").is_file():
        raise WorkflowError(
            "no --configfile given: from a study's folder, name its config with "
            "--configfile config.yaml (last, after any target); without it the demo runs, "
            "and only in the workflow's own folder"
        )

    configfile: "config/config.yaml"


# Checked and completed once, every error naming its key (affect4k.config.settings), as the
# annotation app reads it.
try:
    checked_config(config)
except Affect4kError as error:
    raise WorkflowError(f"config: {error}") from None


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/clip.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/web.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/annotations.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/release.smk"


rule all:
    default_target: True
    input:
        "results/annotations.parquet",
        "results/agreement.csv",
        ["results/tables.csv"] if RUNS else [],
        ["results/ablation.csv"] if ABLATION else [],
        REPORT_FIGURES,
