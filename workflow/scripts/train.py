import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake, runs_model=True) as sm:  # noqa: F821
    from affect4k.training import TrainConfig, train

    # A "pretrain:<name>" initialisation arrives as that run's model file.
    settings = dict(sm.params.settings)
    settings["pretrained"] = sm.input.get("pretrained", settings.get("pretrained"))
    train(
        TrainConfig.from_settings(settings),
        Path(sm.input.annotations),
        Path(sm.params.faces_dir),
        Path(sm.output.model).parent,
    )
