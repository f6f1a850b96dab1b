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
        width=sm.params.width,
        height=sm.params.height,
        seconds=sm.params.seconds,
        seed=sm.params.seed,
        cue=sm.params.cue,
        face_size=sm.params.face_size,
        annotators=sm.params.annotators,
    )
