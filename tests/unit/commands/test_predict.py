"""``affect4k predict`` without a trained run: which files it may write, how it sizes its inputs,
whose face a group photo scores, and its figure (affect4k.commands.predict_files,
predict_inputs, predict_overlay)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from helpers.hostile import pixel_bomb
from helpers.predict import predict, write_image

from affect4k.core.errors import Affect4kError


def refused(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run ``affect4k predict`` expecting a refusal: its one error line."""
    assert predict(*args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_no_output_lands_on_the_input_another_output_or_a_file_it_did_not_write(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The checks come before the model is loaded: a run that does not exist is never reached.
    model = tmp_path / "no_run"
    folder = tmp_path / "in"
    shutil.copytree(photos, folder)
    photo, video = folder / "a_astronaut.png", tmp_path / "clip.mp4"
    video.write_bytes(b"a video")
    before = {path: path.read_bytes() for path in (photo, video)}
    # The figure beside -o would replace the photo.
    error = refused(capsys, photo, "--model", model, "-o", folder / "a_astronaut.csv")
    assert f"the figure {photo} (beside -o) would overwrite the input {photo}" in error
    # So would any image of an input folder, and --overlay naming the input video.
    error = refused(capsys, folder, "--model", model, "-o", folder / "a_astronaut.csv")
    assert f"would overwrite the input {photo}" in error
    # A new figure in the input folder would be read as a photo by the next run.
    error = refused(capsys, folder, "--model", model, "-o", folder / "scores.csv")
    assert f"the figure {folder / 'scores.png'} (beside -o) would land in the input folder" in error
    assert not (folder / "scores.png").exists() and not (folder / "scores.csv").exists()
    error = refused(capsys, video, "--model", model, "-o", tmp_path / "v.csv", "--overlay", video)
    assert f"--overlay {video} would overwrite the input {video}" in error
    # A link to the input is the input; a hard link too.
    (tmp_path / "link.png").symlink_to(photo)
    error = refused(capsys, photo, "--model", model, "-o", tmp_path / "link.csv")
    assert f"would overwrite the input {photo}" in error
    os.link(video, tmp_path / "hard.mp4")
    error = refused(capsys, video, "--model", model, "-o", tmp_path / "v.csv", "--overlay",
                    tmp_path / "hard.mp4")  # fmt: skip
    assert f"would overwrite the input {video}" in error
    # Two outputs on one file.
    error = refused(capsys, video, "--model", model, "-o", tmp_path / "v.csv", "--overlay",
                    tmp_path / "v.png")  # fmt: skip
    assert f"the figure {tmp_path / 'v.png'} (beside -o) and --overlay" in error
    assert "are the same file" in error
    # Existing files this command did not write: a CSV, a figure, an overlay, a folder.
    mine = tmp_path / "mine.csv"
    mine.write_text("frame,valence\n0,0.5\n")
    error = refused(capsys, video, "--model", model, "-o", mine)
    assert f"-o {mine}: {mine} exists and was not written by affect4k predict" in error
    shutil.copy(photo, tmp_path / "notes.png")
    error = refused(capsys, video, "--model", model, "-o", tmp_path / "notes.csv")
    assert "notes.png exists and was not written by affect4k predict" in error
    error = refused(capsys, photo, "--model", model, "-o", tmp_path / "o.csv", "--overlay", mine)
    assert f"--overlay {mine}: {mine} exists and was not written" in error
    assert mine.read_text() == "frame,valence\n0,0.5\n"
    assert all(path.read_bytes() == data for path, data in before.items())


def test_inputs_are_sized_from_their_header_and_only_files_or_folders_are_read(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):

    from affect4k.core.media import ffmpeg_exe

    model, out = tmp_path / "no_run", tmp_path / "out.csv"

    # A PNG that declares 30000x30000 pixels and holds a few bytes: were it decoded, it would
    # fail as unreadable (or take gigabytes); its header alone refuses it.
    bomb = pixel_bomb(tmp_path / "bomb.png")
    error = refused(capsys, bomb, "--model", model, "-o", out)
    assert error.endswith(f"{bomb}: 30000x30000 is 900,000,000 pixels, above the limit of "
                          "100,000,000")  # fmt: skip
    # The --subject photo too, before anything else is read.
    error = refused(capsys, tmp_path / "v.mp4", "--model", model, "-o", out, "--subject", bomb)
    assert error.endswith(f"--subject {bomb}: 30000x30000 is 900,000,000 pixels, above the "
                          "limit of 100,000,000")  # fmt: skip
    # The limit is a flag, and applies to every image of a folder.
    error = refused(capsys, photos, "--model", model, "-o", out, "--max-pixels", 100_000)
    assert f"{photos / 'a_astronaut.png'}: 512x512 is 262,144 pixels, above" in error
    # Videos above 8K, from their header.
    wide = tmp_path / "wide.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=s=8200x64:r=25:d=0.08",
         "-c:v", "ffv1", str(wide)],
        check=True,
    )  # fmt: skip
    error = refused(capsys, wide, "--model", model, "-o", out)
    assert f"{wide}: 8200x64 frames are above 8K (8192x4320)" in error
    # A FIFO would block the command, a device never end: both refused at once.
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "affect4k", "predict", str(fifo), "--model", str(model), "-o",
         str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{fifo}: not a regular file or folder" in result.stderr
    error = refused(capsys, "/dev/zero", "--model", model, "-o", out)
    assert "/dev/zero: not a regular file or folder" in error
    assert not out.exists()


def group_photo(tmp_path: Path) -> Path:
    """A frame of the people clip's third shot: B (about 110 px) on the left, A (58) right."""
    from affect4k.core.media import iter_frames
    from affect4k.demo.people import people_video

    people_video(tmp_path / "people.avi")
    frame = next(f for index, f in enumerate(iter_frames(tmp_path / "people.avi")) if index == 100)
    return write_image(tmp_path / "group.png", frame)


def test_a_group_photo_names_the_face_it_scored_and_subject_picks_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The choice of face, without a model: each crop's prediction is its row's index."""
    from affect4k.commands import predict_files as predict_cli
    from affect4k.demo.people import person_photo
    from affect4k.faces.detectors import make_detector

    monkeypatch.setattr(
        predict_cli,
        "predict_crops",
        lambda run, crops, face, static: np.where(face[:, None], 0.5, np.nan) * np.ones((1, 2)),
    )
    run = predict_cli.RunModel(name="fake", model=None, sequence_length=1, crop_size=112)
    photo, detector = group_photo(tmp_path), make_detector("mtcnn")
    largest = predict_cli.predict_images([photo], run, detector)
    assert largest.loc[0, "faces"] == 2 and largest.loc[0, "face"]
    assert largest.loc[0, "x2"] < 320, "the larger face, B's, on the left"
    chosen = predict_cli.predict_images(
        [photo], run, detector, subject=person_photo("A", tmp_path / "a.png")
    )
    assert chosen.loc[0, "faces"] == 2 and chosen.loc[0, "x1"] > 320, "A's, on the right"
    with pytest.raises(Affect4kError, match="no face of the person of --subject .*f.png"):
        predict_cli.predict_images(
            [photo], run, detector, subject=person_photo("F", tmp_path / "f.png")
        )


def test_the_figure_keeps_the_whole_time_axis_and_shades_absences(monkeypatch):
    from affect4k.report import plots

    drawn = []
    monkeypatch.setattr(plots, "save", lambda figure, path: drawn.append(figure))
    frames = np.arange(100)
    face = (frames >= 20) & (frames < 70)  # absent at the start, and for the last 30 frames
    values = np.where(face, 0.3, np.nan)
    table = pd.DataFrame(
        {"frame": frames, "time_s": frames / 25, "face": face, "valence": values,
         "arousal": values}
    )  # fmt: skip
    plots.prediction_figure(table, Path("unused.png"), "clip")
    traces = drawn[0].axes[0]
    low, high = traces.get_xlim()
    assert low <= 0 and high >= 99 / 25, "the axis covers every frame, not only the face's"
    shaded = [patch.get_x() for patch in traces.patches]
    assert len(shaded) == 2 and min(shaded) < 0 and max(shaded) == pytest.approx(69.5 / 25)
    photos = pd.DataFrame(
        {"file": ["g.png", "c.jpg"], "faces": [2, 0], "face": [True, False],
         "x1": [10.0, np.nan], "y1": [20.0, np.nan], "x2": [50.0, np.nan], "y2": [70.0, np.nan],
         "valence": [0.1, np.nan], "arousal": [0.2, np.nan]}
    )  # fmt: skip
    plots.prediction_figure(photos, Path("unused.png"), "photos")
    labels = [label.get_text() for label in drawn[1].axes[0].get_xticklabels()]
    assert labels == ["g.png\nbox 10,20,50,70 of 2 faces", "c.jpg\nnone scored of 0 faces"]
