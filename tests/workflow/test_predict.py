"""``affect4k predict``: a video, a photo, a folder and a database clip, with a real trained run.

The run and the database come from the tiny study (conftest), built by the workflow itself, so
the "same numbers as the predict rule" check compares against the rule's own parquet.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path
from threading import Thread

import numpy as np
import pandas as pd
import pytest
import skimage.data
from helpers import REPO
from helpers.predict import predict

from affect4k import CLIP_FPS
from affect4k.config.schema import schema_default
from affect4k.core.media import count_frames, probe_video
from affect4k.demo import make_demo_video

RUN = "results/models/tiny"


def test_a_database_clip_gets_the_numbers_of_the_predict_rule(tiny_study: Path, tmp_path: Path):
    split = pd.read_csv(tiny_study / "results/split.csv")
    video = split.loc[split["split"] == "test", "video"].iloc[0]
    out = tmp_path / "out.csv"
    # The installed command's path: python -m affect4k, output not a terminal (a log).
    result = subprocess.run(
        [sys.executable, "-m", "affect4k", "predict", f"results/clips/{video}.avi"]
        + ["--model", RUN, "-o", str(out)],
        cwd=tiny_study,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    rule = pd.read_parquet(tiny_study / "results/predictions/tiny/test.parquet")
    rule = rule[rule["video"] == video].reset_index(drop=True)
    faces = pd.read_parquet(tiny_study / f"results/faces/{video}.parquet")
    assert list(table.columns) == ["frame", "time_s", "face", "valence", "arousal"]
    np.testing.assert_array_equal(table["frame"], rule["frame"])
    np.testing.assert_allclose(table["time_s"], table["frame"] / CLIP_FPS)
    np.testing.assert_array_equal(table["face"], faces["face"])
    for dimension in ("valence", "arousal"):
        np.testing.assert_allclose(table[dimension], rule[f"{dimension}_pred"], atol=1e-6)
    assert table["valence"].notna().sum() == faces["face"].sum() > 0
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    # Progress of the face stage and of prediction, one line per update, with percent.
    assert f"faces {video}.avi: 100%" in result.stderr
    assert "predict tiny: 100%" in result.stderr


def test_a_generated_video_at_another_frame_rate_is_put_on_the_25_fps_grid(
    tiny_study: Path, tmp_path: Path
):
    source = tmp_path / "mine.mp4"
    make_demo_video(
        "mine", source, tmp_path / "traces", fps=30, face="astronaut",
        width=640, height=360, seconds=3.0, seed=3, annotators=schema_default("annotators"),
    )  # fmt: skip
    out, overlay = tmp_path / "mine.csv", tmp_path / "mine_overlay.mp4"
    code = predict(
        source, "--model", tiny_study / RUN, "-o", out,
        "--start", 0.5, "--end", 2.5, "--overlay", overlay,
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(out)
    assert len(table) == 2 * CLIP_FPS
    np.testing.assert_array_equal(table["frame"], np.arange(2 * CLIP_FPS))
    np.testing.assert_allclose(table["time_s"], 0.5 + table["frame"] / CLIP_FPS)
    assert table["face"].mean() > 0.3
    with_face = table[table["face"]]
    assert with_face[["valence", "arousal"]].abs().le(1).all().all()
    assert table.loc[~table["face"], ["valence", "arousal"]].isna().all().all()
    assert count_frames(overlay) == len(table)
    assert probe_video(overlay).fps == CLIP_FPS
    # The same video by URL: fetched by yt-dlp (as the download stage does), all 3 s of it.
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/mine.mp4"
        try:
            assert predict(url, "--model", tiny_study / RUN, "-o", tmp_path / "url.csv") == 0
        finally:
            server.shutdown()
    by_url = pd.read_csv(tmp_path / "url.csv")
    assert len(by_url) == 3 * CLIP_FPS and by_url["face"].mean() > 0.3
    np.testing.assert_allclose(by_url["time_s"], by_url["frame"] / CLIP_FPS)
    assert by_url.loc[by_url["face"], "valence"].notna().all()


def test_subject_photo_picks_whose_face_a_video_predicts(tiny_study: Path, tmp_path: Path):
    from affect4k.demo.people import people_video, person_photo

    truth = people_video(tmp_path / "people.avi")
    photo = person_photo("B", tmp_path / "b.png")
    out = tmp_path / "people.csv"
    assert predict(tmp_path / "people.avi", "--model", tiny_study / RUN, "-o", out,
                   "--subject", photo) == 0  # fmt: skip
    table = pd.read_csv(out)
    b_frames = set(truth.loc[truth["person"] == "B", "frame"])
    kept = set(table.loc[table["face"], "frame"])
    assert kept <= b_frames and len(kept) >= 0.95 * len(b_frames)
    assert table.loc[table["face"], "valence"].notna().all()


def test_a_photo_is_one_row_with_the_models_value_for_its_crop(
    tiny_study: Path, photos: Path, tmp_path: Path
):
    import keras

    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import subject_crop
    from affect4k.faces.scan import detection_copy
    from affect4k.faces.tracking import SubjectTracker

    photo = photos / "a_astronaut.png"
    out = tmp_path / "photo.csv"
    assert predict(photo, "--model", tiny_study / RUN / "model.keras", "-o", out) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "file", "faces", "face", "x1", "y1", "x2", "y2", "valence", "arousal"
    ]  # fmt: skip
    assert table["file"].tolist() == ["a_astronaut.png"] and table["face"].all()
    # Independently: the crop repeated over the run's 10 steps, the last step's output.
    rgb = skimage.data.astronaut()
    scored, crop = subject_crop(
        rgb, detection_copy(rgb, 640), make_detector("mtcnn"), SubjectTracker(), 112
    )
    # The CSV names the face it scored: its box, and how many faces the photo showed.
    np.testing.assert_allclose(table.loc[0, ["x1", "y1", "x2", "y2"]], scored.bbox, atol=0.05)
    assert table.loc[0, "faces"] == 1
    model = keras.models.load_model(tiny_study / RUN / "model.keras", compile=False)
    expected = model.predict_on_batch(np.repeat(crop[None, None], 10, axis=1))[0, -1]
    np.testing.assert_allclose(table.loc[0, ["valence", "arousal"]], expected, atol=1e-5)
    assert out.with_suffix(".png").stat().st_size > 5000


def test_a_folder_gets_one_row_per_image_and_nan_without_a_face(
    tiny_study: Path, photos: Path, tmp_path: Path
):
    single = tmp_path / "single.csv"
    assert predict(photos / "a_astronaut.png", "--model", tiny_study / RUN, "-o", single) == 0
    out = tmp_path / "folder.csv"
    assert predict(photos, "--model", tiny_study / RUN, "-o", out) == 0
    table = pd.read_csv(out)
    assert table["file"].tolist() == ["a_astronaut.png", "b_coffee.jpg"]
    assert table["face"].tolist() == [True, False]
    assert table.loc[1, ["valence", "arousal"]].isna().all()
    np.testing.assert_allclose(
        table.loc[0, ["valence", "arousal"]], pd.read_csv(single).loc[0, ["valence", "arousal"]]
    )


def test_bad_inputs_are_refused_with_one_line_naming_them(
    tiny_study: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    model = tiny_study / RUN
    out = tmp_path / "out.csv"
    cases = []
    assert predict(photos / "b_coffee.jpg", "--model", model, "-o", out) == 1
    cases.append("no face found in " + str(photos / "b_coffee.jpg"))
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    assert predict(broken, "--model", model, "-o", out) == 1
    cases.append(f"{broken}: not a readable video")
    assert predict(tmp_path / "absent.mp4", "--model", model, "-o", out) == 1
    cases.append(f"{tmp_path / 'absent.mp4'}: no such file or folder")
    assert predict(photos, "--model", tmp_path / "no_run", "-o", out) == 1
    cases.append(f"--model {tmp_path / 'no_run'}: no such run directory or .keras file")
    assert predict(photos, "--model", model, "-o", out, "--overlay", tmp_path / "o.mp4") == 1
    cases.append("--start, --end and --overlay apply to videos, not images")
    lone = tmp_path / "lone" / "model.keras"
    lone.parent.mkdir()
    shutil.copy(model / "model.keras", lone)
    assert predict(photos, "--model", lone, "-o", out) == 1
    cases.append("config.json is missing")
    tampered = tmp_path / "tampered"
    shutil.copytree(model, tampered)
    for text, message in (
        ('{"model": "alexnet_gru", "sequence_length": 0}', "sequence_length must be a positive"),
        ('["sequence_length", 5]', "sequence_length must be a positive integer, not None"),
        ("{", "not a training config"),
    ):
        (tampered / "config.json").write_text(text)
        assert predict(photos, "--model", tampered, "-o", out) == 1
        cases.append(f"{tampered / 'config.json'}: {message}")
    errors = capsys.readouterr().err
    for message in cases:
        assert message in errors
    assert "Traceback" not in errors
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_the_face_job_log_shows_progress(tiny_study: Path):
    log = (tiny_study / "logs/faces/tiny_a.log").read_text()
    lines = [line for line in log.splitlines() if line.startswith("faces tiny_a:")]
    assert lines and "100%" in lines[-1] and "100/100" in lines[-1]


def test_its_own_outputs_carry_its_mark_so_a_rerun_replaces_them(
    tiny_study: Path, photos: Path, tmp_path: Path
):
    from affect4k.commands.predict_inputs import written_by_predict
    from affect4k.commands.predict_overlay import write_overlay
    from affect4k.core.media import ffmpeg_exe

    out = tmp_path / "photo.csv"
    for _ in range(2):
        assert predict(photos / "a_astronaut.png", "--model", tiny_study / RUN, "-o", out) == 0
        assert written_by_predict(out) and written_by_predict(out.with_suffix(".png"))
    assert not written_by_predict(photos / "a_astronaut.png")
    # The overlay carries the mark in its comment tag; another video does not.
    clip = tmp_path / "clip.avi"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=0.2",
         "-c:v", "mpeg4", str(clip)],
        check=True,
    )  # fmt: skip
    faces = pd.DataFrame({name: [np.nan] * 5 for name in ("x1", "y1", "x2", "y2")})
    table = pd.DataFrame({"valence": [0.1] * 5, "arousal": [-0.2] * 5})
    write_overlay(clip, faces, table, tmp_path / "overlay.mp4")
    assert written_by_predict(tmp_path / "overlay.mp4")
    assert not written_by_predict(clip)
