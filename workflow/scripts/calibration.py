from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.calibration import calibration_table

    calibration_table(
        Path(sm.params.annotations),
        sm.params.annotators,
        Path(sm.output[0]),
        max_lag_s=sm.params.max_lag_s,
        max_gap_s=sm.params.max_gap_s,
        min_ccc=sm.params.min_ccc,
    )
