import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.download import download_video  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    download_video(
        sm.wildcards.video, sm.params.url, Path(sm.output[0]), max_height=sm.params.max_height
    )
