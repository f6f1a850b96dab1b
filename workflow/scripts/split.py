from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.split import build_split

    database = sm.params.database
    build_split(
        Path(sm.input.annotations),
        {video: Path(path) for video, path in sm.params.identities.items()},
        Path(sm.output.csv),
        Path(sm.output.table),
        sources=sm.params.sources,
        given_groups=sm.params.given_groups,
        declared_persons=sm.params.declared_persons,
        same_person_distance=database["same_person_distance"],
        person_straddle=database["person_straddle"],
        split=database["split"],
        test_fraction=database["test_fraction"],
        validation_fraction=database["validation_fraction"],
        seed=database["seed"],
        sequence_length=database["sequence_length"],
    )
