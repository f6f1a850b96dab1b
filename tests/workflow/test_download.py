"""A local source path with braces is taken literally by the download rule."""

import ffmpeg
from helpers.download import assert_is_the_source
from helpers.workflow import planned_jobs, run_snakemake, write_config

from affect4k.core.media import run_ffmpeg


def test_local_paths_with_braces_are_taken_literally(tmp_path, source_video):
    """Snakemake reads braces as wildcards: ``clip{video}.mp4`` must not become clipv2.mp4."""
    for name in ("clip{1}.mp4", "clip{video}.mp4"):
        (tmp_path / name).write_bytes(source_video.read_bytes())
    decoy = ffmpeg.input("testsrc=size=32x32:rate=25:duration=0.4", f="lavfi")
    run_ffmpeg(decoy.output(str(tmp_path / "clipv2.mp4"), vcodec="libx264"), "decoy")
    (tmp_path / "videos.tsv").write_text(
        "video_id\turl\tstart\tend\nv1\tclip{1}.mp4\t\t\nv2\tclip{video}.mp4\t\t\n"
    )
    write_config(tmp_path, {"videos": "videos.tsv", "annotations": "annotations"})
    targets = ("resources/downloads/v1.mkv", "resources/downloads/v2.mkv")
    run_snakemake(tmp_path, *targets)
    for target in targets:
        assert_is_the_source(tmp_path / target)
    assert planned_jobs(run_snakemake(tmp_path, "-n", *targets).stdout) == {}
    # Replacing clipv2.mp4 (not v2's source) changes nothing; replacing clip{1}.mp4 redoes v1.
    decoy_bytes = (tmp_path / "clipv2.mp4").read_bytes()
    (tmp_path / "clipv2.mp4").write_bytes(source_video.read_bytes())
    assert planned_jobs(run_snakemake(tmp_path, "-n", *targets).stdout) == {}
    (tmp_path / "clip{1}.mp4").write_bytes(decoy_bytes)
    plan = run_snakemake(tmp_path, "-n", *targets).stdout
    assert planned_jobs(plan) == {"download": 1} and "resources/downloads/v1.mkv" in plan
