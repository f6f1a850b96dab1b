from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.annotate import estimate_annotation_lags

    annotation = sm.params.annotation
    estimate_annotation_lags(
        {video: Path(path) for video, path in sm.params.trace_dirs.items()},
        sm.params.annotators,
        Path(sm.output[0]),
        max_lag_s=annotation["max_lag_s"],
        max_gap_s=annotation["max_gap_s"],
        per_video=annotation["per_video"],
        min_r=annotation["min_annotator_r"],
        out_agreement=Path(sm.output[1]),
    )
