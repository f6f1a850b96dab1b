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

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data
from conftest import REPO

from affect4k import CLIP_FPS
from affect4k.cli import main
from affect4k.demo import make_demo_video
from affect4k.media import count_frames, probe_video

RUN = "results/models/tiny"


def write_image(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder: the astronaut (a face photo scikit-image ships), a cup of coffee (no face)."""
    folder = tmp_path_factory.mktemp("photos")
    write_image(folder / "a_astronaut.png", skimage.data.astronaut())
    write_image(folder / "b_coffee.jpg", skimage.data.coffee())
    return folder


def predict(*args: object) -> int:
    return main(["predict", *map(str, args)])


def test_a_database_clip_gets_the_numbers_of_the_predict_rule(tiny_study: Path, tmp_path: Path):
    annotations = pd.read_parquet(tiny_study / "results/annotations.parquet")
    video = annotations.loc[annotations["split"] == "test", "video"].iloc[0]
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
        width=640, height=360, seconds=3.0, seed=3,
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

    from affect4k.detectors import make_detector
    from affect4k.faces import detection_copy, subject_crop
    from affect4k.tracking import SubjectTracker

    photo = photos / "a_astronaut.png"
    out = tmp_path / "photo.csv"
    assert predict(photo, "--model", tiny_study / RUN / "model.keras", "-o", out) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "face", "valence", "arousal"]
    assert table["file"].tolist() == ["a_astronaut.png"] and table["face"].all()
    # Independently: the crop repeated over the run's 10 steps, the last step's output.
    rgb = skimage.data.astronaut()
    _, crop = subject_crop(
        rgb, detection_copy(rgb, 640), make_detector("mtcnn"), SubjectTracker(), 112
    )
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
    astronaut = photos / "a_astronaut.png"
    assert predict(photos, "--model", model, "-o", out, "--subject", astronaut) == 1
    cases.append("--subject apply to videos, not images")
    lone = tmp_path / "lone" / "model.keras"
    lone.parent.mkdir()
    shutil.copy(model / "model.keras", lone)
    assert predict(photos, "--model", lone, "-o", out) == 1
    cases.append("config.json is missing")
    errors = capsys.readouterr().err
    for message in cases:
        assert message in errors
    assert "Traceback" not in errors
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_the_face_job_log_shows_progress(tiny_study: Path):
    log = (tiny_study / "logs/faces/tiny_a.log").read_text()
    lines = [line for line in log.splitlines() if line.startswith("faces tiny_a:")]
    assert lines and "100%" in lines[-1] and "100/100" in lines[-1]
