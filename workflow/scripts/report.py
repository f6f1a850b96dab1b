import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k import report  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    # One script for every figure rule of workflow/rules/report.smk, chosen by the rule's name.
    if sm.rule == "report_results":
        report.results_page(Path(sm.input[0]), Path(sm.output[0]))
    elif sm.rule == "report_ablation":
        report.ablation(Path(sm.input[0]), Path(sm.output[0]))
    elif sm.rule == "report_predictions":
        paths = dict(zip(sm.params.runs, map(Path, sm.input.predictions), strict=True))
        report.best_predictions(Path(sm.input.tables), paths, Path(sm.output[0]))
    elif sm.rule == "report_training":
        report.training(Path(sm.input[0]), Path(sm.output[0]), sm.wildcards.run)
    elif sm.rule == "report_database":
        report.database(
            Path(sm.input.annotations),
            Path(sm.input.agreement),
            Path(sm.output.table),
            Path(sm.output.overview),
            Path(sm.output.agreement),
        )
    elif sm.rule == "report_qc":
        report.quality_control(
            Path(sm.input.table), Path(sm.input.crops), Path(sm.output[0]), sm.wildcards.video
        )
    else:
        raise ValueError(f"workflow/scripts/report.py has no figure for rule {sm.rule}")
