from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.annotate import annotate_video, lag_table

    video = sm.wildcards.video
    lags = lag_table(
        sm.params.lag,
        sm.input.get("lags"),
        [video],
        sm.params.annotators,
        sm.input.get("calibration"),
        max_lag_s=sm.params.max_lag_s,
    )
    annotate_video(
        video,
        Path(sm.input.faces),
        Path(sm.params.trace_dir),
        sm.params.annotators,
        Path(sm.output[0]),
        max_gap_s=sm.params.max_gap_s,
        min_annotators=sm.params.min_annotators,
        source_start_s=sm.params.source_start_s,
        lags={(row.dimension, row.annotator): row.lag_s for row in lags.itertuples()},
    )
