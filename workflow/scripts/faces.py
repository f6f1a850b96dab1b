import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.detectors import make_detector  # noqa: E402
from affect4k.faces import extract_faces  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    extract_faces(
        Path(sm.input[0]),
        Path(sm.output.table),
        Path(sm.output.crops),
        detector=make_detector(sm.params.detector, sm.params.model, min_score=sm.params.min_score),
        video_id=sm.wildcards.video,
        detect_width=sm.params.detect_width,
        source_height=sm.params.source_height,
    )
