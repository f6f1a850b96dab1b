from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pytest

from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames, iter_frames, run_ffmpeg
from affect4k.video.frames import export_frames

#: What the workflow passes for ``frames.jpeg_quality`` unless a config sets it.
JPEG_QUALITY = schema_default("frames.jpeg_quality")

WIDTH, HEIGHT, FRAMES = 96, 64, 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 25 fps H.264 AVI like the clips stage writes, with visibly changing content."""
    path = tmp_path_factory.mktemp("clip") / "v1.avi"
    source = ffmpeg.input(f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25", f="lavfi")
    encode = source.output(
        str(path), vcodec="libx264", pix_fmt="yuv420p", bf=0, **{"frames:v": FRAMES}
    )
    run_ffmpeg(encode, "test clip")
    return path


def test_one_jpeg_per_clip_frame_named_by_frame_index(tmp_path, clip):
    out = tmp_path / "frames" / "v1"
    assert export_frames(clip, out, quality=JPEG_QUALITY) == count_frames(clip) == FRAMES
    names = sorted(path.name for path in out.iterdir())
    assert names == [f"{frame:06d}.jpg" for frame in range(FRAMES)]
    assert list(out.parent.iterdir()) == [out]  # no temporary folder left behind
    decoded = np.stack(list(iter_frames(clip))).astype(int)
    for frame, name in enumerate(names):
        image = cv2.cvtColor(cv2.imread(str(out / name)), cv2.COLOR_BGR2RGB)
        assert image.shape == (HEIGHT, WIDTH, 3)
        # Up to JPEG loss, each file matches its own frame best (testsrc2 moves every frame).
        error = np.abs(decoded - image).mean(axis=(1, 2, 3))
        assert error.argmin() == frame


def test_quality_changes_size_and_rerun_replaces_old_folder(tmp_path, clip):
    out = tmp_path / "v1"
    out.mkdir()
    (out / "999999.jpg").write_bytes(b"stale")
    export_frames(clip, out, quality=31)
    small = sum(path.stat().st_size for path in out.iterdir())
    assert not (out / "999999.jpg").exists()
    export_frames(clip, out, quality=2)
    assert sum(path.stat().st_size for path in out.iterdir()) > small


def test_bad_quality_and_unreadable_clip(tmp_path):
    with pytest.raises(Affect4kError, match="JPEG quality must be between 1 and 31, got 0"):
        export_frames(tmp_path / "v1.avi", tmp_path / "v1", quality=0)
    bad = tmp_path / "v1.avi"
    bad.write_bytes(b"RIFF but not really an AVI")
    with pytest.raises(Affect4kError, match=r"v1\.avi"):
        export_frames(bad, tmp_path / "out" / "v1", quality=JPEG_QUALITY)
    assert not (tmp_path / "out" / "v1").exists()
