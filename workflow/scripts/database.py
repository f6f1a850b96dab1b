from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.annotate import lag_table
    from affect4k.labels.calibration import read_calibration
    from affect4k.labels.database import build_database

    tables = [Path(path) for path in sm.input.tables]
    videos = [path.stem for path in tables]
    calibration = sm.input.get("calibration")
    annotation = sm.params.annotation
    build_database(
        tables,
        sm.params.annotators,
        Path(sm.output.table),
        Path(sm.output.agreement),
        fusion=annotation["fusion"],
        per_video=annotation["per_video"],
        lags=lag_table(
            annotation["lag"],
            sm.input.get("lags"),
            videos,
            sm.params.annotators,
            calibration,
            max_lag_s=annotation["max_lag_s"],
        ),
        out_annotators=Path(sm.output.annotators),
        calibration=(
            read_calibration(calibration, annotation["max_lag_s"]) if calibration else None
        ),
        min_r=annotation["min_annotator_r"],
        keep_unreliable=annotation["keep_unreliable"],
    )
