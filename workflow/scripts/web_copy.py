from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.video.clip import ClipEncoding
    from affect4k.video.web_copy import make_web_copy

    make_web_copy(
        Path(sm.input[0]),
        Path(sm.output[0]),
        video_id=sm.wildcards.video,
        encoding=ClipEncoding(**sm.params.encoding),
    )
