import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake, runs_model=True) as sm:  # noqa: F821
    from affect4k.evaluate import predict
    from affect4k.training import TrainConfig

    sequence_length = TrainConfig.from_settings(sm.params.settings).sequence_length
    for out_path, corpus in zip(sm.output, sm.params.eval_sets.values(), strict=True):
        predict(
            Path(sm.input.model),
            Path(corpus["annotations"] if corpus else sm.input.annotations),
            Path(corpus["faces"] if corpus else sm.params.faces_dir),
            Path(out_path),
            split="test" if corpus is None else None,
            sequence_length=sequence_length,
            batch_size=sm.params.batch_size,
        )
