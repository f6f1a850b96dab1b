from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.evaluation.tables import TableEntry, build_table

    build_table(
        [TableEntry(**entry) for entry in sm.params.entries],
        Path(sm.output[0]),
        resamples=sm.params.evaluation["resamples"],
        min_groups=sm.params.evaluation["min_interval_groups"],
        overlap=Path(sm.input.overlap[0]) if sm.input.overlap else None,
        overlap_action=sm.params.evaluation["overlap"],
    )
