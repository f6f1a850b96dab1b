from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.evaluation.import_corpus import import_affectnet, import_affwild2

    importer = import_affwild2 if sm.params.format == "affwild2" else import_affectnet
    importer(Path(sm.input[0]), Path(sm.output.table).parent)
