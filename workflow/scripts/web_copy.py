from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.annotate_app.webcopy import make_web_copy
    from affect4k.clips import ClipEncoding

    make_web_copy(
        Path(sm.input[0]),
        Path(sm.output[0]),
        video_id=sm.wildcards.video,
        encoding=ClipEncoding(**sm.params.encoding),
    )
