# annotation.lag: estimate needs every video's traces at once: the lags stage reads them all
# and each video's annotate job reads its lags from results/lags.csv. Otherwise no job waits
# for it, so editing one video's trace reruns only that video's annotate job.
LAGS = {"lags": "results/lags.csv"} if config["annotation"]["lag"] == "estimate" else {}
# The calibration traces that exist (settings checked that every one does under lag:
# measured): the calibration stage measures them, the database reports them, and under
# measured every annotate job shifts by them. Otherwise annotate never waits for them.
CALIBRATION_TRACES = [
    path
    for annotator in config["annotators"]
    for dimension in DIMENSIONS
    if (path := calibration_trace(ANNOTATIONS, annotator, dimension)).exists()
]
CALIBRATION = {"calibration": "results/calibration.csv"} if CALIBRATION_TRACES else {}
MEASURED = CALIBRATION if config["annotation"]["lag"] == "measured" else {}


rule calibration:
    """Each annotator's reaction lag and accuracy per dimension, from their trace of the
    calibration clip (whose signal is known)."""
    input:
        CALIBRATION_TRACES,
    output:
        "results/calibration.csv",
    log:
        "logs/calibration.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("calibration.py"),
        annotations=ANNOTATIONS,
        annotators=config["annotators"],
        annotation=config_section(
            "annotation", "max_lag_s", "max_gap_s", "min_calibration_ccc"
        ),
    script:
        "../scripts/calibration.py"


rule lags:
    """Each annotator's reaction lag per dimension, estimated from every video's raw traces."""
    input:
        [trace for video in VIDEOS for trace in video_traces(video)],
    output:
        "results/lags.csv",
        "results/lag_agreement.csv",
    log:
        "logs/lags.log",
    benchmark:
        "benchmarks/lags.tsv"
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        code=package_code("lags.py"),
        trace_dirs={video: str(ANNOTATIONS / video) for video in VIDEOS},
        annotators=config["annotators"],
        annotation=config_section(
            "annotation", "max_lag_s", "max_gap_s", "per_video", "min_annotator_r"
        ),
    script:
        "../scripts/lags.py"


rule annotate:
    """Resample one video's raw traces onto its 25 fps frame grid, shifted by each annotator's
    lag, and average the annotators."""
    input:
        unpack(lambda wildcards: {**LAGS, **MEASURED}),
        faces="results/faces/{video}.parquet",
        traces=raw_traces,
    output:
        "results/annotations/{video}.parquet",
    log:
        "logs/annotate/{video}.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("annotate.py"),
        trace_dir=lambda wildcards: ANNOTATIONS / wildcards.video,
        annotators=config["annotators"],
        annotation=config_section(
            "annotation",
            "lag",
            "max_lag_s",
            "max_gap_s",
            "min_annotators",
            "time_origin",
        ),
        start=lambda wildcards: video_entry(wildcards.video).start,
    script:
        "../scripts/annotate.py"


rule database:
    """All videos in one table with the fused labels, the agreement between the annotators
    and each annotator's lag, weight and agreement: for any number of videos (no split).
    """
    input:
        unpack(lambda wildcards: {**LAGS, **CALIBRATION}),
        tables=expand("results/annotations/{video}.parquet", video=VIDEOS),
    output:
        table="results/annotations.parquet",
        agreement="results/agreement.csv",
        annotators="results/annotators.csv",
    log:
        "logs/database.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("database.py"),
        annotators=config["annotators"],
        annotation=config_section(
            "annotation",
            "lag",
            "max_lag_s",
            "fusion",
            "per_video",
            "min_annotator_r",
            "keep_unreliable",
        ),
    script:
        "../scripts/database.py"


rule split:
    """The train/validation/test sides: videos of one person (their subjects' faces within
    database.same_person_distance) or one source form a group unless videos.tsv's group
    column places them; what trains, predicts or scores reads them."""
    input:
        annotations="results/annotations.parquet",
        identities=expand("results/faces/{video}.identities.parquet", video=VIDEOS),
    output:
        csv="results/split.csv",
        table="results/split.parquet",
    log:
        "logs/split.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("split.py"),
        identities={
            video: f"results/faces/{video}.identities.parquet" for video in VIDEOS
        },
        sources={video: source_group(entry.url) for video, entry in VIDEOS.items()},
        given_groups={
            video: entry.group if entry.group_given else None
            for video, entry in VIDEOS.items()
        },
        declared_persons={video: entry.person for video, entry in VIDEOS.items()},
        database=config["database"],
    script:
        "../scripts/split.py"
