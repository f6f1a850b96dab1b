import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.demo import make_affectnet_set, make_affwild2_set  # noqa: E402
from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    spec, root = sm.params.spec, Path(sm.output[0])
    if spec["format"] == "affwild2":
        make_affwild2_set(root, videos=spec["videos"], frames=spec["frames"], seed=sm.params.seed)
    else:
        make_affectnet_set(root, images=spec["images"], seed=sm.params.seed)
