import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.annotations import build_database  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    build_database(
        [Path(path) for path in sm.input],
        sm.params.annotators,
        Path(sm.output.table),
        Path(sm.output.agreement),
        split=sm.params.split,
        test_fraction=sm.params.test_fraction,
        seed=sm.params.seed,
        sequence_length=sm.params.sequence_length,
        groups=sm.params.groups,
        out_split=Path(sm.output.split),
    )
