"""The calibration clip: a known signal on the frame grid, and a flat or inverted calibration
refused (affect4k.commands.annotation_app.calibration_clip)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.annotation_app import DELAY_S, request

from affect4k import CLIP_FPS
from affect4k.commands.annotation_app.calibration_clip import GAUGES, make_calibration_clip
from affect4k.core.media import iter_frames, stream_times
from affect4k.labels.calibration import CALIBRATION_ID, FRAMES, truth


@pytest.mark.parametrize(("flip", "fragment"), [(0.0, "never moves"), (-1.0, "upside down")])
def test_a_flat_or_inverted_calibration_is_refused_on_the_page_and_never_written(
    calibration_app, flip, fragment
):
    server, work = calibration_app
    url = f"/api/traces/{CALIBRATION_ID}/valence"
    status, answer = request(server, "GET", url)
    assert status == 200, answer
    times = np.arange(FRAMES) / CLIP_FPS
    late = flip * truth("valence", np.maximum(times - DELAY_S, 0.0)) + (0.2 if not flip else 0)
    trace = {"time_s": times.tolist(), "value": np.clip(late, -1, 1).tolist()}
    status, refused = request(
        server, "PUT", url, {**trace, "done": True, "version": answer["version"]}
    )
    assert status >= 400 and fragment in refused["error"], refused
    annotations = work / "resources/demo/annotations"
    assert not list(annotations.rglob("*.csv"))  # never written
    assert request(server, "GET", url)[1]["version"] == answer["version"]


def test_the_calibration_clip_shows_the_known_signal_on_the_frame_grid(tmp_path):
    clip = tmp_path / "results/web/_calibration.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"not a video")  # a broken cache is replaced, never served
    assert make_calibration_clip(clip) == FRAMES
    times = stream_times(clip)
    assert (times.frames, times.video_end_s) == (FRAMES, FRAMES / CLIP_FPS)
    written = clip.stat().st_mtime_ns
    assert make_calibration_clip(clip) == FRAMES and clip.stat().st_mtime_ns == written
    values = {dim: truth(dim, np.arange(FRAMES) / CLIP_FPS) for dim in GAUGES}
    for index, frame in enumerate(iter_frames(clip)):
        if index % 50:
            continue
        for dim, (left, right) in GAUGES.items():
            column = frame[:, (left + right) // 2].astype(int)
            needle = np.flatnonzero((column[:, 0] > 200) & (column[:, 2] < 120))
            # +1 at the top of the 30..210 pixel scale, -1 at its bottom
            assert needle.mean() == pytest.approx(120 - 90 * values[dim][index], abs=1.5)
