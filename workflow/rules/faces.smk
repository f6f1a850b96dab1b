rule faces:
    """Detect every face on a downscaled copy, tell identities apart, and align and crop the
    subject 112x112 from the full-resolution frame.

    results/faces/ holds the crops of the clips as they are; results/faces_h<H>/ those of the
    same clips first scaled to H lines, aspect ratio kept (the resolution ablation), whose
    subject is the one chosen in results/faces/.
    """
    input:
        clip="results/clips/{video}.avi",
        subject=subject_photo,
        native=native_faces,
    output:
        table="results/faces{lowres}/{video}.parquet",
        crops="results/faces{lowres}/{video}.npy",
        identities="results/faces{lowres}/{video}.identities.parquet",
    log:
        "logs/faces{lowres}/{video}.log",
    benchmark:
        "benchmarks/faces{lowres}/{video}.tsv"
    wildcard_constraints:
        lowres="(_h[0-9]+)?",
    conda:
        "../../envs/faces.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        code=package_code("faces.py"),
        detector=config["faces"]["detector"],
        model=config["faces"]["model"],
        min_score=config["faces"]["min_score"],
        detect_width=config["faces"]["detect_width"],
        cluster_threshold=config["faces"]["cluster_threshold"],
        subject_threshold=config["faces"]["subject_threshold"],
        embed_every=config["faces"]["embed_every"],
        source_height=lambda wildcards: source_height(
            wildcards.lowres.lstrip("_") or NATIVE
        ),
    script:
        "../scripts/faces.py"
