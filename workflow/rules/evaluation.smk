rule predict:
    """Per-frame predictions of one run on the validation and test splits and every corpus."""
    input:
        unpack(lambda wildcards: database_inputs(RUNS[wildcards.run]["resolution"])),
        model="results/models/{run}/model.keras",
        corpora=[f"results/external/{corpus}/annotations.parquet" for corpus in CORPORA],
    output:
        **{
            eval_set: f"results/predictions/{{run}}/{eval_set}.parquet"
            for eval_set in EVAL_SETS
        },
    log:
        "logs/predict/{run}.log",
    benchmark:
        "benchmarks/predict/{run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: all_cores()
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=6 * 60,
    params:
        code=package_code("predict.py"),
        eval_sets=eval_sets,
        settings=lambda wildcards: job_settings(RUNS[wildcards.run]),
        evaluation=config_section("evaluation", "batch_size"),
    script:
        "../scripts/predict.py"


rule tables:
    """One row per (run, evaluation set) and per seeded configuration, every number recomputed
    from the predictions, with bootstrap intervals and what each configuration was chosen for.
    """
    input:
        predictions=[entry["predictions"] for entry in table_entries()],
        groups=sorted({entry["groups"] for entry in table_entries()}),
        overlap=["results/identity_overlap.csv"] if CORPORA else [],
    output:
        "results/tables.csv",
    log:
        "logs/tables.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("tables.py"),
        entries=table_entries(),
        evaluation=config_section(
            "evaluation", "resamples", "min_interval_groups", "overlap"
        ),
    message:
        LEFT_OUT_RUNS
    script:
        "../scripts/tables.py"


rule identity_overlap:
    """People of the database found in an external corpus (a pretraining's or a
    cross-dataset evaluation's): the same face check as the split's, by person."""
    input:
        split="results/split.csv",
        identities=expand("results/faces/{video}.identities.parquet", video=VIDEOS),
        corpora=[f"results/external/{corpus}/annotations.parquet" for corpus in CORPORA],
    output:
        "results/identity_overlap.csv",
    log:
        "logs/identity_overlap.log",
    conda:
        "../../envs/faces.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=package_code("identity_overlap.py"),
        identities={
            video: f"results/faces/{video}.identities.parquet" for video in VIDEOS
        },
        corpora={corpus: f"results/external/{corpus}" for corpus in CORPORA},
        database=config_section("database", "same_person_distance"),
    script:
        "../scripts/identity_overlap.py"


rule ablation:
    """Every cell of the height x crop size x input size grid scored over all frames and per
    face bin (the height a face's crop is resolved from)."""
    input:
        predictions=[cell["predictions"] for cell in ABLATION],
        spans=expand("results/ablation/spans/{video}.parquet", video=VIDEOS),
        groups="results/split.csv",
    output:
        "results/ablation.csv",
    log:
        "logs/ablation.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("ablation.py"),
        cells=ABLATION,
        heights=config["training"]["ablation"]["heights"],
        evaluation=config_section("evaluation", "resamples", "min_interval_groups"),
    script:
        "../scripts/ablation.py"
