from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.calibration import calibration_table

    annotation = sm.params.annotation
    calibration_table(
        Path(sm.params.annotations),
        sm.params.annotators,
        Path(sm.output[0]),
        max_lag_s=annotation["max_lag_s"],
        max_gap_s=annotation["max_gap_s"],
        min_ccc=annotation["min_calibration_ccc"],
    )
