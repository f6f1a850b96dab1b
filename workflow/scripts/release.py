from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.config.video_list import VideoEntry
    from affect4k.dataset.metadata import ReleaseInfo
    from affect4k.dataset.release import build_release
    from affect4k.dataset.takedown import Takedown

    videos = [VideoEntry(**video) for video in sm.params.videos]
    release = dict(sm.params.release)
    release["creators"] = tuple(release["creators"])

    def by_video(paths):
        return {Path(path).name.split(".")[0]: Path(path) for path in paths}

    build_release(
        Path(sm.output[0]),
        info=ReleaseInfo(**release),
        base_version=sm.params.base_version,
        videos=videos,
        labels=Path(sm.input.labels),
        split=Path(sm.input.split),
        agreement=Path(sm.input.agreement),
        annotators_table=Path(sm.input.annotators),
        video_tables=by_video(sm.input.tables),
        faces=by_video(sm.input.faces),
        crops=by_video(sm.input.crops),
        annotators=sm.params.annotators,
        settings=sm.params.settings,
        takedowns=[Takedown(**request) for request in sm.params.takedowns],
    )
