# Local sources with braces in their path are tracked through links made before the DAG is
# built (see download_inputs in common.smk).
for _video in VIDEOS:
    source_link(_video)


rule download:
    """Best stream up to download.max_height through yt-dlp (YouTube, http, file:// or a path)."""
    input:
        download_inputs,
    output:
        "resources/downloads/{video}.mkv",
    log:
        "logs/download/{video}.log",
    retries: 1
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    params:
        url=lambda wildcards: video_entry(wildcards.video).url,
        max_height=config["download"]["max_height"],
    script:
        "../scripts/download.py"
