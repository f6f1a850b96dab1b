from pathlib import Path

from common import job

# isort: split
# After common, which puts the workflow's own package first on the path.
from affect4k.model.device import model_setup

# The backend and device are set up before anything imports Keras.
with job(snakemake, setup=model_setup(snakemake.config["training"])) as sm:
    from affect4k.model.predict import predict

    for eval_set, out_path in sm.output.items():
        source = sm.params.eval_sets[eval_set]
        predict(
            Path(sm.input.model),
            Path(source["annotations"]),
            Path(source["faces"]),
            Path(out_path),
            split=source["split"],
            sequence_length=sm.params.settings["sequence_length"],
            batch_size=sm.params.evaluation["batch_size"],
        )
