from pathlib import Path

from common import job

# isort: split
# After common, which puts the workflow's own package first on the path.
from affect4k.model.device import model_setup

# The backend and device are set up before anything imports Keras.
with job(snakemake, setup=model_setup(snakemake.config["training"])) as sm:
    from affect4k.config.run_settings import TrainConfig
    from affect4k.model.train import train

    # The workflow resolved the settings (a "pretrain:<name>" is that run's model file).
    train(
        TrainConfig.from_settings(sm.params.settings),
        Path(sm.input.annotations),
        Path(sm.params.faces_dir),
        Path(sm.output.model).parent,
    )
