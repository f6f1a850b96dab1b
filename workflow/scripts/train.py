import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    from affect4k.training import TrainConfig, train

    # The workflow resolved the settings (a "pretrain:<name>" is that run's model file).
    train(
        TrainConfig.from_settings(sm.params.settings),
        Path(sm.input.annotations),
        Path(sm.params.faces_dir),
        Path(sm.output.model).parent,
    )
