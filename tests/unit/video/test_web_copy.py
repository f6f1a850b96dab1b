"""The web copy the annotation app plays: clip frame f at index f
(affect4k.video.web_copy)."""

from __future__ import annotations

from fractions import Fraction

from helpers.sources import framemd5, make_source, read_index

from affect4k.config.schema import from_schema
from affect4k.core.media import iter_frames, probe_video
from affect4k.video.clip import ClipEncoding, make_clip
from affect4k.video.web_copy import make_web_copy


def test_web_copy_of_an_mpeg4_clip_shows_each_clip_frame_at_its_index(tmp_path):
    """Frame f of the copy is clip frame f: each frame spells its own index in stripes."""
    encoding = from_schema(ClipEncoding, "clips")
    source = make_source(tmp_path / "source.mp4", Fraction(30), 90, audio=True)
    clip, web = tmp_path / "v.avi", tmp_path / "v.mp4"
    written = make_clip(source, clip, video_id="v", start=None, end=None, encoding=encoding)
    assert probe_video(clip).codec == "mpeg4"
    assert make_web_copy(clip, web, video_id="v", encoding=encoding) == written
    assert [read_index(frame) for frame in iter_frames(web)] == [
        read_index(frame) for frame in iter_frames(clip)
    ]
    assert [int(line[2]) for line in framemd5(web)] == list(range(written))
