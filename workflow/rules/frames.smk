rule frames:
    """One JPEG per clip frame, named by frame index; only built when asked for by name."""
    input:
        "results/clips/{video}.avi",
    output:
        directory("results/frames/{video}"),
    params:
        code=package_code("frames.py"),
        quality=config["frames"]["jpeg_quality"],
    log:
        "logs/frames/{video}.log",
    threads: 2
    conda:
        "../../envs/ingest.yaml"
    script:
        "../scripts/frames.py"
