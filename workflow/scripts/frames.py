import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.frames import export_frames  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    export_frames(Path(sm.input[0]), Path(sm.output[0]), quality=sm.params.quality)
