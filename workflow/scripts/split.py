from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.labels.split import build_split

    build_split(
        Path(sm.input.annotations),
        {video: Path(path) for video, path in sm.params.identities.items()},
        Path(sm.output.csv),
        Path(sm.output.table),
        sources=sm.params.sources,
        given_groups=sm.params.given_groups,
        declared_persons=sm.params.declared_persons,
        same_person_distance=sm.params.same_person_distance,
        person_straddle=sm.params.person_straddle,
        split=sm.params.split,
        test_fraction=sm.params.test_fraction,
        validation_fraction=sm.params.validation_fraction,
        seed=sm.params.seed,
        sequence_length=sm.params.sequence_length,
    )
