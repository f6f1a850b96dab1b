import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.annotate_app.webcopy import make_web_copy  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    make_web_copy(Path(sm.input[0]), Path(sm.output[0]), video_id=sm.wildcards.video)
