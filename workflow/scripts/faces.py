from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.detectors import make_detector
    from affect4k.faces import extract_faces

    extract_faces(
        Path(sm.input[0]),
        Path(sm.output.table),
        Path(sm.output.crops),
        detector=make_detector(sm.params.detector, sm.params.model, min_score=sm.params.min_score),
        video_id=sm.wildcards.video,
        detect_width=sm.params.detect_width,
        source_height=sm.params.source_height,
    )
