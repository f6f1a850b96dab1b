from pathlib import Path

from model_job import job

with job(snakemake) as sm:
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
