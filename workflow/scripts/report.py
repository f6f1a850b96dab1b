from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.report import figures as report

    # One script for every figure rule of workflow/rules/report.smk, chosen by the rule's name.
    if sm.rule == "report_results":
        report.draw_results_page(Path(sm.input[0]), Path(sm.output.table), Path(sm.output.figure))
    elif sm.rule == "report_ablation":
        report.draw_ablation(Path(sm.input[0]), Path(sm.output[0]))
    elif sm.rule == "report_predictions":
        paths = dict(zip(sm.params.runs, map(Path, sm.input.predictions), strict=True))
        report.draw_best_predictions(Path(sm.input.tables), paths, Path(sm.output[0]))
    elif sm.rule == "report_training":
        report.draw_training_curves(Path(sm.input[0]), Path(sm.output[0]), sm.wildcards.run)
    elif sm.rule == "report_database":
        report.draw_database(
            Path(sm.input.annotations),
            Path(sm.input.agreement),
            Path(sm.output.table),
            Path(sm.output.overview),
            Path(sm.output.agreement),
        )
    elif sm.rule == "report_annotators":
        report.draw_annotator_reliability(
            Path(sm.input.annotators), Path(sm.input.agreement), Path(sm.output[0])
        )
    elif sm.rule == "report_qc":
        report.draw_quality_control(
            Path(sm.input.table),
            Path(sm.input.crops),
            Path(sm.input.identities),
            Path(sm.output[0]),
            sm.wildcards.video,
        )
    else:
        raise ValueError(f"workflow/scripts/report.py has no figure for rule {sm.rule}")
