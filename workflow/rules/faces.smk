rule faces:
    """Detect every face on a downscaled copy, tell identities apart, verify each face as the
    subject or not, and align and crop the subject 112x112 from the full-resolution frame.
    """
    input:
        clip="results/clips/{video}.avi",
        subject=subject_photo,
    output:
        table="results/faces/{video}.parquet",
        crops="results/faces/{video}.npy",
        identities="results/faces/{video}.identities.parquet",
    log:
        "logs/faces/{video}.log",
    benchmark:
        "benchmarks/faces/{video}.tsv"
    conda:
        "../../envs/faces.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        code=package_code("faces.py"),
        faces=config["faces"],
    script:
        "../scripts/faces.py"


if ABLATION_RESOLUTIONS:

    rule ablation_crops:
        """The resolution ablation's crops of one video: the native subject at its native
        landmarks, cut from every frame scaled to each grid height, at each crop size (one
        decode for every cell; affect4k.faces.ablation_crops)."""
        input:
            clip="results/clips/{video}.avi",
            native="results/faces/{video}.parquet",
        output:
            crops=[
                f"results/faces_{resolution}/{{video}}.npy"
                for resolution in ABLATION_RESOLUTIONS
            ],
            tables=[
                f"results/faces_{resolution}/{{video}}.parquet"
                for resolution in ABLATION_RESOLUTIONS
            ],
            spans="results/ablation/spans/{video}.parquet",
        log:
            "logs/ablation_crops/{video}.log",
        benchmark:
            "benchmarks/ablation_crops/{video}.tsv"
        conda:
            "../../envs/faces.yaml"
        threads: 2
        resources:
            mem_mb=4000,
        params:
            code=package_code("ablation_crops.py"),
            cells=[parse_resolution(resolution) for resolution in ABLATION_RESOLUTIONS],
        script:
            "../scripts/ablation_crops.py"
