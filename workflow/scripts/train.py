from pathlib import Path

from model_job import job

with job(snakemake) as sm:
    from affect4k.config.run_settings import TrainConfig
    from affect4k.model.train import train

    # The workflow resolved the settings (a "pretrain:<name>" is that run's model file).
    train(
        TrainConfig.from_settings(sm.params.settings),
        Path(sm.input.annotations),
        Path(sm.params.faces_dir),
        Path(sm.output.model).parent,
    )
