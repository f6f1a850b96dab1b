"""A phone's portrait video is stored landscape with a display rotation: ffmpeg turns every
frame it decodes upright, so the size the package reads must be the displayed one, or frames
are cut from the pipe with the wrong shape (the same bytes, silently garbled)."""

import subprocess

import numpy as np
import pytest

from affect4k.core.media import ffmpeg_exe, iter_frames, probe_video


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A 1 s 320x240 H.264 MP4 of ffmpeg's test pattern (no rotation)."""
    path = tmp_path_factory.mktemp("rotation") / "stored.mp4"
    argv = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi"]
    argv += ["-i", "testsrc=size=320x240:rate=25", "-t", "1", "-c:v", "libx264", str(path)]
    subprocess.run(argv, check=True)
    return path


def rotated(stored, degrees):
    """``stored`` with a display matrix of ``degrees`` (counterclockwise), pixels untouched."""
    path = stored.with_name(f"rotated{degrees}.mp4")
    argv = [ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", str(degrees)]
    subprocess.run([*argv, "-i", str(stored), "-c", "copy", str(path)], check=True)
    return path


@pytest.mark.parametrize(("degrees", "quarter_turns"), [(90, 1), (180, 2), (270, 3)])
def test_a_rotated_video_reads_as_shown_and_decodes_upright(stored, degrees, quarter_turns):
    path = rotated(stored, degrees)
    info = probe_video(path)
    assert info.rotation == degrees
    shown = (240, 320) if degrees % 180 else (320, 240)
    assert (info.width, info.height) == shown
    upright = list(iter_frames(path))
    plain = list(iter_frames(stored))
    assert len(upright) == len(plain) == 25
    assert upright[0].shape == (shown[1], shown[0], 3)
    # The same pixels, turned as the display matrix says (chroma resampled: within 2 grey).
    expected = np.rot90(plain[0], k=quarter_turns).astype(int)
    assert np.abs(upright[0].astype(int) - expected).mean() < 2.0
    assert np.abs(upright[0].astype(int) - np.rot90(plain[0], k=quarter_turns + 2)).mean() > 20


def test_a_video_without_rotation_reads_its_stored_size(stored):
    info = probe_video(stored)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
