from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.demo.corpora import make_affectnet_set, make_affwild2_set

    spec, root = sm.params.spec, Path(sm.output[0])
    if spec["format"] == "affwild2":
        make_affwild2_set(root, videos=spec["videos"], frames=spec["frames"], seed=sm.params.seed)
    else:
        make_affectnet_set(root, images=spec["images"], seed=sm.params.seed)
