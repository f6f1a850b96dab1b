from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.video.frames import export_frames

    export_frames(Path(sm.input[0]), Path(sm.output[0]), quality=sm.params.frames["jpeg_quality"])
