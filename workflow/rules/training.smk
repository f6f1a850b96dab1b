rule import_corpus:
    """An external corpus (Aff-Wild2 or AffectNet layout) in the database's own layout."""
    input:
        lambda wildcards: CORPORA[wildcards.corpus]["root"],
    output:
        table="results/external/{corpus}/annotations.parquet",
        faces=directory("results/external/{corpus}/faces"),
    log:
        "logs/import_corpus/{corpus}.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("import_corpus.py"),
        format=lambda wildcards: CORPORA[wildcards.corpus]["format"],
    script:
        "../scripts/import_corpus.py"


rule pretrain:
    """A model trained on an external corpus, whose conv stack later initialises a run."""
    input:
        unpack(pretrain_inputs),
    output:
        model="results/pretrained/{name}/model.keras",
        history="results/pretrained/{name}/history.csv",
    log:
        "logs/pretrain/{name}.log",
    benchmark:
        "benchmarks/pretrain/{name}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: all_cores()
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=24 * 60,
    params:
        code=package_code("train.py"),
        settings=lambda wildcards: job_settings(PRETRAIN[wildcards.name]),
        faces_dir=lambda wildcards: corpus_inputs(PRETRAIN[wildcards.name]["corpus"])[
            "faces"
        ],
    script:
        "../scripts/train.py"


rule train:
    """One run: a model trained on the database's train split, evaluated after every epoch."""
    input:
        unpack(train_inputs),
    output:
        model="results/models/{run}/model.keras",
        history="results/models/{run}/history.csv",
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: all_cores()
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=24 * 60,
    params:
        code=package_code("train.py"),
        settings=lambda wildcards: job_settings(RUNS[wildcards.run]),
        faces_dir=lambda wildcards: faces_dir(RUNS[wildcards.run]["resolution"]),
    script:
        "../scripts/train.py"
