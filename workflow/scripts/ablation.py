import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    from affect4k.ablation import AblationCell, build_ablation

    build_ablation(
        [AblationCell(**cell) for cell in sm.params.cells],
        Path(sm.input.faces[0]).parent,
        sm.params.face_bins,
        Path(sm.output[0]),
    )
