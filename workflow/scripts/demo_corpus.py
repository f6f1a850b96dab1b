from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.demo.corpora import make_affectnet_set, make_affwild2_set

    spec, root, seed = sm.params.spec, Path(sm.output[0]), sm.params.demo["seed"]
    if spec["format"] == "affwild2":
        make_affwild2_set(root, videos=spec["videos"], frames=spec["frames"], seed=seed)
    else:
        make_affectnet_set(root, images=spec["images"], seed=seed)
