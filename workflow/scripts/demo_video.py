import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.demo import make_demo_video  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    make_demo_video(
        sm.wildcards.video,
        Path(sm.output.video),
        Path(sm.output.traces[0]).parent,
        fps=sm.params.spec["fps"],
        face=sm.params.spec["face"],
        width=sm.params.width,
        height=sm.params.height,
        seconds=sm.params.seconds,
        seed=sm.params.seed,
        annotators=sm.params.annotators,
    )
