from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.demo import make_demo_video

    make_demo_video(
        sm.wildcards.video,
        Path(sm.output.video),
        Path(sm.output.traces[0]).parent,
        fps=sm.params.spec["fps"],
        face=sm.params.spec["face"],
        **sm.params.demo,
        annotators=sm.params.annotators,
    )
