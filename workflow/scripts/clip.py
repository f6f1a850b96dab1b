from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.video.clip import ClipEncoding, make_clip

    make_clip(
        Path(sm.input[0]),
        Path(sm.output[0]),
        video_id=sm.wildcards.video,
        start=sm.params.start,
        end=sm.params.end,
        encoding=ClipEncoding(**sm.params.encoding),
    )
