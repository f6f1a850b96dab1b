rule clip:
    """Trim to [start, end] and convert to a 25 fps constant-frame-rate AVI (the study's format)."""
    input:
        "resources/downloads/{video}.mkv",
    output:
        "results/clips/{video}.avi",
    log:
        "logs/clip/{video}.log",
    benchmark:
        "benchmarks/clip/{video}.tsv"
    conda:
        "../../envs/ingest.yaml"
    threads: 2
    resources:
        mem_mb=3000,
    params:
        code=package_code("clip.py"),
        start=lambda wildcards: video_entry(wildcards.video).start,
        end=lambda wildcards: video_entry(wildcards.video).end,
        encoding=config["clips"],
    script:
        "../scripts/clip.py"
