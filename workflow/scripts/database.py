from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.database import build_database

    build_database(
        [Path(path) for path in sm.input],
        sm.params.annotators,
        Path(sm.output.table),
        Path(sm.output.agreement),
        split=sm.params.split,
        test_fraction=sm.params.test_fraction,
        validation_fraction=sm.params.validation_fraction,
        seed=sm.params.seed,
        sequence_length=sm.params.sequence_length,
        groups=sm.params.groups,
        out_split=Path(sm.output.split),
    )
