rule frames:
    """One JPEG per clip frame, named by frame index; only built when asked for by name."""
    input:
        "results/clips/{video}.avi",
    output:
        directory("results/frames/{video}"),
    log:
        "logs/frames/{video}.log",
    conda:
        "../../envs/ingest.yaml"
    threads: 2
    params:
        code=package_code("frames.py"),
        frames=config["frames"],
    script:
        "../scripts/frames.py"
