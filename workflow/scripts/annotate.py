from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.annotate import annotate_video, lag_table

    video = sm.wildcards.video
    annotation = sm.params.annotation
    lags = lag_table(
        annotation["lag"],
        sm.input.get("lags"),
        [video],
        sm.params.annotators,
        sm.input.get("calibration"),
        max_lag_s=annotation["max_lag_s"],
    )
    annotate_video(
        video,
        Path(sm.input.faces),
        Path(sm.params.trace_dir),
        sm.params.annotators,
        Path(sm.output[0]),
        max_gap_s=annotation["max_gap_s"],
        min_annotators=annotation["min_annotators"],
        # Trace times count from the source's start (the clip's start in it) or the clip's.
        source_start_s=(sm.params.start or 0.0) if annotation["time_origin"] == "source" else None,
        lags={(row.dimension, row.annotator): row.lag_s for row in lags.itertuples()},
    )
