import sys

import affect4k_path  # noqa: F401  (this workflow's src/ first on sys.path)

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
from pathlib import Path  # noqa: E402

from affect4k.workflow import job  # noqa: E402

with job(snakemake) as sm:  # noqa: F821
    from affect4k.evaluate import predict
    from affect4k.training import TrainConfig

    sequence_length = TrainConfig.from_settings(sm.params.settings).sequence_length
    for eval_set, out_path in sm.output.items():
        source = sm.params.eval_sets[eval_set]
        predict(
            Path(sm.input.model),
            Path(source["annotations"]),
            Path(source["faces"]),
            Path(out_path),
            split=source["split"],
            sequence_length=sequence_length,
            batch_size=sm.params.batch_size,
        )
