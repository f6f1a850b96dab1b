# Links to local sources with braces in their path are made while the workflow loads, before
# the DAG is built (see affect4k.video.download.tracked_source); a dry run makes none.
for _video, _entry in VIDEOS.items():
    tracked_source(_video, _entry.url, make_link=not dry_run())


rule download:
    """Best stream up to download.max_height through yt-dlp (YouTube, http, file:// or a path)."""
    input:
        download_inputs,
    output:
        (
            "resources/downloads/{video}.mkv"
            if config["download"]["keep_source"]
            else temp("resources/downloads/{video}.mkv")
        ),
    log:
        "logs/download/{video}.log",
    retries: 1
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    params:
        code=package_code("download.py"),
        url=lambda wildcards: video_entry(wildcards.video).url,
        download=config_section("download", "max_height"),
    script:
        "../scripts/download.py"
