from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.evaluation.identity_overlap import write_identity_overlap

    write_identity_overlap(
        Path(sm.input.split),
        {video: Path(path) for video, path in sm.params.identities.items()},
        {corpus: Path(root) for corpus, root in sm.params.corpora.items()},
        Path(sm.output[0]),
        threshold=sm.params.database["same_person_distance"],
    )
