import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.annotations import annotate_video  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    annotate_video(
        sm.wildcards.video,
        Path(sm.input.faces),
        Path(sm.params.trace_dir),
        sm.params.annotators,
        Path(sm.output[0]),
        max_gap_s=sm.params.max_gap_s,
        min_annotators=sm.params.min_annotators,
        time_offset_s=sm.params.time_offset_s,
    )
