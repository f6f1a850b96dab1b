from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.video.download import download_video

    download_video(
        sm.wildcards.video,
        sm.params.url,
        Path(sm.output[0]),
        max_height=sm.params.download["max_height"],
    )
