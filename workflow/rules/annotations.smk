rule annotate:
    """Resample one video's raw traces onto its 25 fps frame grid and average the annotators."""
    input:
        faces="results/faces/{video}.parquet",
        traces=raw_traces,
    output:
        "results/annotations/{video}.parquet",
    log:
        "logs/annotate/{video}.log",
    conda:
        "../../envs/annotations.yaml"
    threads: 1
    params:
        code=package_code("annotate.py"),
        trace_dir=lambda wildcards: ANNOTATIONS / wildcards.video,
        annotators=config["annotators"],
        max_gap_s=config["annotation"]["max_gap_s"],
        min_annotators=config["annotation"]["min_annotators"],
        source_start_s=lambda wildcards: (
            video_entry(wildcards.video).start or 0.0
            if config["annotation"]["time_origin"] == "source"
            else None
        ),
    script:
        "../scripts/annotate.py"


rule database:
    """All videos in one table with the train/validation/test split, and the annotators' agreement."""
    input:
        expand("results/annotations/{video}.parquet", video=VIDEOS),
    output:
        table="results/annotations.parquet",
        agreement="results/agreement.csv",
        split="results/split.csv",
    log:
        "logs/database.log",
    conda:
        "../../envs/annotations.yaml"
    threads: 1
    params:
        code=package_code("database.py"),
        annotators=config["annotators"],
        split=config["database"]["split"],
        groups={video: entry.group for video, entry in VIDEOS.items()},
        test_fraction=config["database"]["test_fraction"],
        validation_fraction=config["database"]["validation_fraction"],
        seed=config["database"]["seed"],
        sequence_length=config["database"]["sequence_length"],
    script:
        "../scripts/database.py"
