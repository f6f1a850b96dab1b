from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.evaluation.ablation import AblationCell, build_ablation

    build_ablation(
        [AblationCell(**cell) for cell in sm.params.cells],
        Path(sm.input.spans[0]).parent,
        sm.params.heights,
        Path(sm.output[0]),
        groups=Path(sm.input.groups),
        resamples=sm.params.evaluation["resamples"],
        min_groups=sm.params.evaluation["min_interval_groups"],
    )
