"""The demo corpus: video format, ground truth, annotators, learnable cues, external layouts."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from affect4k import CLIP_FPS, FFMPEG_ENV
from affect4k.config.schema import SCHEMA_PATH, schema_default
from affect4k.core import media
from affect4k.core.errors import Affect4kError
from affect4k.core.metrics import ccc
from affect4k.demo import (
    DEMO_FACES,
    annotator_trace,
    demo_frames,
    exact_frame_rate,
    face_track,
    latent_va,
    make_demo_video,
    render_face,
    video_seed,
)
from affect4k.demo.affect_faces import PORTRAIT_LANDMARKS, face_portrait
from affect4k.demo.annotators import annotator_profile
from affect4k.demo.corpora import make_affectnet_set, make_affwild2_set
from affect4k.labels.traces import read_trace

ANNOTATORS = ("a1", "a2", "a3", "a4")
SMALL = {
    "fps": 29.97,
    "face": "t1:3",
    "width": 640,
    "height": 360,
    "seconds": 3.0,
    "seed": 5,
    "annotators": schema_default("annotators"),
}


def frame_checksums(path: Path) -> tuple[Fraction, list[int], list[str]]:
    """Time base, per-frame pts and MD5 of every decoded frame (ffmpeg's framemd5 muxer)."""
    argv = (
        ffmpeg.input(str(path))
        .output("pipe:", format="framemd5", map="0:v")
        .global_args("-loglevel", "error")
        .compile(cmd=media.ffmpeg_exe())
    )
    lines = subprocess.run(argv, capture_output=True, check=True).stdout.decode().splitlines()
    time_base = next(Fraction(line.split(":")[1].strip()) for line in lines if line[:3] == "#tb")
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    return time_base, [int(row[2]) for row in rows], [row[5].strip() for row in rows]


def make_small(root: Path, video_id: str = "demo1") -> tuple[Path, Path]:
    video, traces = root / f"{video_id}.mp4", root / "annotations" / video_id
    make_demo_video(video_id, video, traces, **SMALL)
    return video, traces


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_small(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def small_frames(small_clip: tuple[Path, Path]) -> list[np.ndarray]:
    return list(media.iter_frames(small_clip[0]))


@pytest.fixture(scope="module")
def detector():
    from mtcnn import MTCNN

    return MTCNN()


def small_times() -> np.ndarray:
    rate = exact_frame_rate(SMALL["fps"])
    return np.arange(round(SMALL["seconds"] * rate)) / float(rate)


#: The seed make_small's video is drawn from (each video of a corpus gets its own).
SMALL_SEED = video_seed(SMALL["seed"], "demo1")


def small_track():
    return face_track(
        SMALL_SEED,
        small_times(),
        seconds=SMALL["seconds"],
        width=SMALL["width"],
        height=SMALL["height"],
    )


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        (29.97, Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (30, Fraction(30)),
        (50.0, Fraction(50)),
        (24, Fraction(24)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_frame_rates_become_exact_rationals(fps: float, expected: Fraction) -> None:
    assert exact_frame_rate(fps) == expected


def test_small_clip_has_requested_format(small_clip: tuple[Path, Path]) -> None:
    video, _ = small_clip
    info = media.probe_video(video)
    rate = Fraction(30000, 1001)
    assert (info.width, info.height) == (SMALL["width"], SMALL["height"])
    assert info.fps == pytest.approx(float(rate), abs=0.01)
    assert info.has_audio
    assert info.duration_s == pytest.approx(SMALL["seconds"], abs=0.05)
    n_frames = round(SMALL["seconds"] * rate)
    assert media.count_frames(video) == n_frames
    time_base, pts, _ = frame_checksums(video)
    # One tick of 1001/30000 s per frame: the rate is exactly 30000/1001 and constant.
    assert time_base == 1 / rate
    assert pts == list(range(n_frames))


def test_4k_clip_format(tmp_path: Path) -> None:
    video = tmp_path / "uhd.mp4"
    make_demo_video(
        "uhd",
        video,
        tmp_path / "traces",
        fps=50,
        face="astronaut",
        width=3840,
        height=2160,
        seconds=0.2,
        seed=0,
        annotators=SMALL["annotators"],
    )
    info = media.probe_video(video)
    assert (info.width, info.height, info.fps, info.has_audio) == (3840, 2160, 50, True)
    assert media.count_frames(video) == 10
    assert frame_checksums(video)[0] == Fraction(1, 50)


def test_generation_is_deterministic(tmp_path: Path, small_clip: tuple[Path, Path]) -> None:
    video, traces = make_small(tmp_path)
    assert frame_checksums(video) == frame_checksums(small_clip[0])
    assert video.read_bytes() == small_clip[0].read_bytes()
    first = sorted(path.name for path in small_clip[1].iterdir())
    assert first == sorted(f"{a}.{d}.csv" for a in ANNOTATORS for d in ("valence", "arousal"))
    for name in first:
        assert (traces / name).read_bytes() == (small_clip[1] / name).read_bytes()
    assert not [path for path in tmp_path.rglob("*") if path.name.startswith(".")]


def test_different_seeds_give_different_clips(tmp_path: Path) -> None:
    common = {**SMALL, "seconds": 0.5}
    make_demo_video("a", tmp_path / "a.mp4", tmp_path / "a", **common)
    make_demo_video("b", tmp_path / "b.mp4", tmp_path / "b", **{**common, "seed": 6})
    assert frame_checksums(tmp_path / "a.mp4")[2] != frame_checksums(tmp_path / "b.mp4")[2]
    assert (tmp_path / "a" / "a1.valence.csv").read_bytes() != (
        tmp_path / "b" / "a1.valence.csv"
    ).read_bytes()


def test_ground_truth_track_stays_in_range() -> None:
    times = np.arange(0, 10, 1 / 30)
    for seed in range(5):
        track = face_track(seed, times, seconds=10, width=3840, height=2160)
        relative = track.face_height / 2160
        assert relative.min() >= 0.15 and relative.max() <= 0.35
        assert np.abs(track.angle_deg).max() <= 30
        assert np.abs(track.angle_deg).max() >= 10, "head roll too small to need alignment"
        half = 0.71 * track.face_height
        assert (track.centre_x - half >= 0).all() and (track.centre_x + half <= 3840).all()
        assert (track.centre_y - half >= 0).all() and (track.centre_y + half <= 2160).all()
        hidden = ~track.visible
        spans = np.count_nonzero(np.diff(hidden.astype(int)) == 1) + int(hidden[0])
        assert 2 <= spans <= 3
        assert 0.05 < hidden.mean() < 0.25


def test_mtcnn_finds_the_face_where_the_track_says(
    small_frames: list[np.ndarray], detector
) -> None:
    """A real detector sees one face at the ground-truth place, and none in the hidden spans.

    MTCNN may miss a face rolled by the full 30 degrees (the face stage then reports no face,
    as it would in the wild), so misses are tolerated only beyond 20 degrees.
    """
    track = small_track()
    visible, hidden = np.flatnonzero(track.visible), np.flatnonzero(~track.visible)
    found = 0
    checked = visible[:: max(1, len(visible) // 10)]
    for index in checked:
        faces = [f for f in detector.detect_faces(small_frames[index]) if f["confidence"] > 0.9]
        assert len(faces) <= 1, f"frame {index}: {len(faces)} faces"
        if not faces:
            assert abs(track.angle_deg[index]) > 20, f"frame {index}: upright face missed"
            continue
        found += 1
        x, y, w, h = faces[0]["box"]
        distance = np.hypot(x + w / 2 - track.centre_x[index], y + h / 2 - track.centre_y[index])
        assert distance < 0.3 * track.face_height[index], f"frame {index}"
        assert 0.6 < h / track.face_height[index] < 1.4, f"frame {index}"
    assert found >= 0.8 * len(checked)
    for index in hidden[:: max(1, len(hidden) // 4)]:
        faces = [f for f in detector.detect_faces(small_frames[index]) if f["confidence"] > 0.9]
        assert faces == [], f"frame {index} should show no face"


def linear_fit(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients (intercept first) and R^2 of ``target`` on ``features``."""
    design = np.column_stack([np.ones(len(target)), features])
    coefficients = np.linalg.lstsq(design, target, rcond=None)[0]
    residual = target - design @ coefficients
    return coefficients, 1 - residual.var() / target.var()


def test_face_colour_follows_the_latent(small_frames: list[np.ndarray]) -> None:
    """In the decoded video the face centre's colour is explained by valence and arousal.

    Arousal scales the skin's own chroma (saturation), so warmth is fitted on both at once.
    """
    track = small_track()
    visible = track.visible
    valence, arousal = (dim[visible] for dim in latent_va(SMALL_SEED, small_times()))
    warmth, brightness = [], []
    for index in np.flatnonzero(visible):
        half = int(0.12 * track.face_height[index])
        x, y = int(track.centre_x[index]), int(track.centre_y[index])
        patch = small_frames[index][y - half : y + half, x - half : x + half].astype(float)
        warmth.append(patch[..., 0].mean() - patch[..., 2].mean())
        brightness.append(patch.mean())
    assert np.ptp(valence) > 0.2 and np.ptp(arousal) > 0.2, "the latent should move in 3 s"
    latent = np.column_stack([valence, arousal])
    (_, per_valence, _), fit = linear_fit(latent, np.array(warmth))
    assert fit > 0.95 and per_valence > 40
    (_, _, per_arousal), fit = linear_fit(latent, np.array(brightness))
    assert fit > 0.9 and per_arousal > 10


def test_render_face_expresses_valence_and_arousal() -> None:
    portrait = face_portrait("astronaut")
    size = portrait.shape[0]
    (_, _), (_, eye_y), _, (mlx, mly), (mrx, _) = (PORTRAIT_LANDMARKS * size).astype(int)
    levels = np.linspace(-1, 1, 9)
    mean_colour = np.array([render_face(portrait, v, 0.0).mean(axis=(0, 1)) for v in levels])
    assert np.corrcoef(mean_colour[:, 0] - mean_colour[:, 2], levels)[0, 1] > 0.99
    smile, frown = render_face(portrait, 0.9, 0.0), render_face(portrait, -0.9, 0.0)
    change = np.abs(smile.astype(int) - frown.astype(int)).sum(axis=2)
    # Beyond the uniform tint, the mouth region changes shape: far more than the forehead does.
    mouth = change[mly - 12 : mly + 12, mlx - 8 : mrx + 8]
    forehead = change[eye_y - 60 : eye_y - 36, mlx - 8 : mrx + 8]
    assert np.percentile(mouth, 90) > np.percentile(forehead, 90) + 40
    calm, excited = render_face(portrait, 0.0, -0.9), render_face(portrait, 0.0, 0.9)
    assert excited.std() > calm.std() + 15
    assert excited.mean() > calm.mean() + 15
    assert (render_face(portrait, 0.3, -0.2) == render_face(portrait, 0.3, -0.2)).all()
    with pytest.raises(Affect4kError, match="valence"):
        render_face(portrait, 1.5, 0.0)


def test_demo_faces_are_distinct_upright_and_aligned(detector) -> None:
    """The hard-coded landmarks put every identity on the template a detector would find."""
    assert len(DEMO_FACES) >= 6
    portraits = [face_portrait(face) for face in DEMO_FACES]
    for one, other in itertools.combinations(portraits, 2):
        assert np.abs(one.astype(int) - other).mean() > 10
    expected = PORTRAIT_LANDMARKS * portraits[0].shape[0]
    for face, portrait in zip(DEMO_FACES, portraits, strict=True):
        best = max(
            detector.detect_faces(np.ascontiguousarray(portrait)), key=lambda f: f["confidence"]
        )
        points = best["keypoints"]
        found = np.array([points[k] for k in ("left_eye", "right_eye", "nose")], dtype=float)
        assert np.abs(found - expected[:3]).max() < 12, face
        eyes = found[1] - found[0]
        assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) < 8, f"{face} is not upright"


def test_latent_is_bounded_smooth_and_seeded() -> None:
    times = np.arange(-5, 120, 0.01)
    valence, arousal = latent_va(3, times)
    assert np.abs(valence).max() <= 0.9 and np.abs(arousal).max() <= 0.9
    assert np.abs(np.diff(valence)).max() < 0.02  # slow: under 2 units per second
    assert np.ptp(valence) > 0.6 and np.ptp(arousal) > 0.6
    assert abs(np.corrcoef(valence, arousal)[0, 1]) < 0.6
    assert not np.allclose(latent_va(4, times)[0], valence)
    assert np.array_equal(latent_va(3, times)[0], valence)


def test_trace_files_are_well_formed(small_clip: tuple[Path, Path]) -> None:
    _, traces = small_clip
    for annotator, dimension in itertools.product(ANNOTATORS, ("valence", "arousal")):
        path = traces / f"{annotator}.{dimension}.csv"
        table = pd.read_csv(path)
        assert list(table.columns) == ["time_s", "value"]
        times, values = table["time_s"].to_numpy(), table["value"].to_numpy()
        assert times[0] == 0 and times[-1] == SMALL["seconds"]
        steps = np.diff(times)
        assert (steps > 0).all() and steps.max() <= 0.0605
        assert np.median(steps) > 0.02 and len(np.unique(steps.round(3))) > 10  # irregular
        assert np.abs(values).max() <= 1
        read_times, read_values = read_trace(path)
        assert np.array_equal(read_times, times) and np.array_equal(read_values, values)


def profiled_trace(seed: int, position: int, dimension: str) -> tuple[np.ndarray, np.ndarray]:
    lag_s, noise = annotator_profile(position)
    return annotator_trace(seed, 10.0, ANNOTATORS[position], dimension, lag_s=lag_s, noise=noise)


@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_annotators_agree_like_real_ones_once_their_lags_are_undone(dimension: str) -> None:
    """Pairwise Pearson r on a common 25 Hz grid, each trace moved back by its known lag:
    related but not identical (about 0.7-0.97); before that, the lags cost agreement."""
    grid = np.arange(0, 8, 0.04)
    for seed in range(8):
        aligned, raw = [], []
        for position in range(len(ANNOTATORS)):
            times, values = profiled_trace(seed, position, dimension)
            aligned.append(np.interp(grid, times - annotator_profile(position)[0], values))
            raw.append(np.interp(grid, times, values))
        r = np.corrcoef(aligned)[np.triu_indices(len(ANNOTATORS), 1)]
        assert 0.7 <= r.mean() <= 0.97, (seed, r)
        assert r.min() >= 0.5 and r.max() <= 0.99, (seed, r)
        assert np.corrcoef(raw)[np.triu_indices(len(ANNOTATORS), 1)].mean() < r.mean()


def test_annotators_lag_the_latent_by_their_known_lag() -> None:
    """The lag where a trace correlates best with the latent, averaged over eight clips."""
    grid = np.arange(0, 10, 0.01)
    lags = np.arange(0, 250)
    for position in range(len(ANNOTATORS)):
        scores = np.zeros(len(lags))
        for seed in range(8):
            latent = latent_va(seed, grid)[0]
            trace = np.interp(grid, *profiled_trace(seed, position, "valence"))
            scores += [np.corrcoef(latent[: len(grid) - k], trace[k:])[0, 1] for k in lags]
        found = lags[int(np.argmax(scores))] / 100
        assert found == pytest.approx(annotator_profile(position)[0], abs=0.08), position


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"face": "nobody"}, "unknown demo face 'nobody'"),
        ({"width": 641}, "must be even"),
        ({"seconds": 0}, "seconds must be positive"),
        ({"fps": 0}, "clipX: frame rate must be positive"),
        ({"annotators": ("a1", "../x")}, "not a plain file name"),
        ({"annotators": ("a1", "a1")}, "distinct"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(Affect4kError, match=message):
        make_demo_video("clipX", tmp_path / "x.mp4", tmp_path / "t", **{**SMALL, **change})
    assert not (tmp_path / "x.mp4").exists()


def test_failed_encoder_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = shutil.which("false") or pytest.skip("no 'false' program to stand in for ffmpeg")
    monkeypatch.setenv(FFMPEG_ENV, failing)
    with pytest.raises(Affect4kError, match="ffmpeg failed on clipY"):
        make_demo_video("clipY", tmp_path / "y.mp4", tmp_path / "t", **SMALL)
    assert list(tmp_path.iterdir()) == [tmp_path / "t"]
    assert list((tmp_path / "t").iterdir()) == []


def test_affwild2_set_layout(tmp_path: Path) -> None:
    root = tmp_path / "affwild2"
    make_affwild2_set(root, videos=2, frames=120, seed=1)
    labels = root / "annotations" / "VA_Estimation_Challenge" / "Validation_Set"
    videos = sorted(path.stem for path in labels.glob("*.txt"))
    assert len(videos) == 2
    assert sorted(p.name for p in (root / "cropped_aligned").iterdir()) == videos
    for video in videos:
        text = (labels / f"{video}.txt").read_text().splitlines()
        assert text[0] == "valence,arousal"
        table = pd.read_csv(labels / f"{video}.txt")
        assert len(table) == 120
        unannotated = (table == -5).all(axis=1)
        assert unannotated.any() and not unannotated.all()
        assert table[~unannotated].abs().max().max() <= 1
        assert (table[~unannotated].std() > 0.05).all()
        images = sorted((root / "cropped_aligned" / video).iterdir())
        numbers = [int(path.stem) for path in images]
        assert all(len(path.stem) == 5 and path.suffix == ".jpg" for path in images)
        assert min(numbers) >= 1 and max(numbers) <= 120
        assert 0 < 120 - len(images) <= 6, "a few frames lack their jpg"
        image = cv2.imread(str(images[0]))
        assert image.shape == (112, 112, 3)
    copy = tmp_path / "again"
    make_affwild2_set(copy, videos=2, frames=120, seed=1)
    for path in root.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (copy / path.relative_to(root)).read_bytes()
    with pytest.raises(Affect4kError, match="not empty"):
        make_affwild2_set(root, videos=1, frames=5, seed=1)
    with pytest.raises(Affect4kError, match="frames"):
        make_affwild2_set(tmp_path / "none", videos=1, frames=0, seed=1)


def test_affwild2_crops_carry_the_valence_cue(tmp_path: Path) -> None:
    root = tmp_path / "affwild2"
    make_affwild2_set(root, videos=1, frames=150, seed=3)
    (label_file,) = (root / "annotations" / "VA_Estimation_Challenge" / "Validation_Set").iterdir()
    table = pd.read_csv(label_file)
    warmth, labels = [], []
    for frame, row in table.iterrows():
        image = root / "cropped_aligned" / label_file.stem / f"{frame + 1:05d}.jpg"
        if row["valence"] == -5 or not image.exists():
            continue
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)[30:90, 30:90].astype(float)
        warmth.append(rgb[..., 0].mean() - rgb[..., 2].mean())
        labels.append(row[["valence", "arousal"]].to_numpy(float))
    (_, per_valence, _), fit = linear_fit(np.array(labels), np.array(warmth))
    assert fit > 0.9 and per_valence > 40


def test_affectnet_set_layout(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    make_affectnet_set(root, images=40, seed=2)
    table = pd.read_csv(root / "labels.csv")
    assert list(table.columns) == ["subDirectory_filePath", "expression", "valence", "arousal"]
    assert len(table) == 40
    invalid = (table["valence"] == -2) & (table["arousal"] == -2)
    assert invalid.any() and not invalid.all()
    valid = table[~invalid]
    assert valid[["valence", "arousal"]].abs().max().max() <= 1
    assert set(valid["expression"]) <= set(range(8)) and valid["expression"].nunique() > 2
    sizes = set()
    for relative in table["subDirectory_filePath"]:
        image = cv2.imread(str(root / "images" / relative))
        assert image is not None, relative
        assert image.shape[0] == image.shape[1] and 150 <= image.shape[0] <= 300
        sizes.add(image.shape[0])
    assert len(sizes) > 5
    happy = valid[valid["expression"] == 1]
    assert (happy["valence"] > 0).all()


def test_videos_of_one_corpus_have_their_own_label_traces(tmp_path: Path) -> None:
    """Shuffled labels (the sync test control) only differ if the videos traces differ."""
    for video_id in ("first", "second"):
        make_demo_video(
            video_id,
            tmp_path / f"{video_id}.mp4",
            tmp_path / video_id,
            fps=25,
            face="astronaut",
            width=64,
            height=64,
            seconds=1.0,
            seed=0,
            annotators=SMALL["annotators"],
        )
    first, second = ((tmp_path / v / "a1.valence.csv").read_text() for v in ("first", "second"))
    assert first != second


# --- the demo's annotators: lags to find, noise to weigh ------------------------------------


@pytest.fixture(scope="module")
def demo_labels(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo config's traces (no video), through the lags, annotate and database stages
    twice: with the demo's settings (lag estimate, EWE) and with the study's (none, mean)."""
    import yaml

    from affect4k.demo.scenes import write_demo_traces
    from affect4k.labels.annotate import annotate_video, estimate_annotation_lags, lag_table
    from affect4k.labels.database import build_database

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    defaults = schema["properties"]["demo"]["properties"]
    demo = {key: spec["default"] for key, spec in defaults.items() if "default" in spec}
    demo |= config["demo"]
    annotators = config["annotators"]
    root = tmp_path_factory.mktemp("demo_labels")
    seeds, trace_dirs, faces = {}, {}, {}
    n_frames = round(demo["seconds"] * CLIP_FPS)
    for video in demo["videos"]:
        seeds[video] = video_seed(demo["seed"], video)
        trace_dirs[video] = root / "annotations" / video
        write_demo_traces(
            trace_dirs[video], seed=seeds[video], seconds=demo["seconds"], annotators=annotators
        )
        faces[video] = root / f"{video}.faces.parquet"
        pd.DataFrame(
            {"frame": np.arange(n_frames), "time_s": np.arange(n_frames) / CLIP_FPS, "face": True}
        ).to_parquet(faces[video])
    lags_csv = root / "lags.csv"
    # The annotation settings as the workflow resolves them: the schema's defaults, then the config.
    defaults = schema["properties"]["annotation"]["properties"]
    settings = {key: spec["default"] for key, spec in defaults.items() if "default" in spec}
    settings |= config["annotation"]
    estimate_annotation_lags(
        trace_dirs,
        annotators,
        lags_csv,
        max_lag_s=settings["max_lag_s"],
        max_gap_s=settings["max_gap_s"],
        per_video=settings["per_video"],
    )
    built = {}
    for name, lag, fusion in (("demo", "estimate", settings["fusion"]), ("study", "none", "mean")):
        lags = lag_table(lag, lags_csv, list(demo["videos"]), annotators)
        tables = []
        for video in demo["videos"]:
            tables.append(root / name / f"{video}.parquet")
            annotate_video(
                video,
                faces[video],
                trace_dirs[video],
                annotators,
                tables[-1],
                min_annotators=settings["min_annotators"],
                max_gap_s=settings["max_gap_s"],
                lags={
                    (row.dimension, row.annotator): row.lag_s
                    for row in lags[lags["video"] == video].itertuples()
                },
            )
        out = root / name
        build_database(
            tables,
            annotators,
            out / "annotations.parquet",
            out / "agreement.csv",
            fusion=fusion,
            per_video=settings["per_video"],
            lags=lags,
            out_annotators=out / "annotators.csv",
        )
        built[name] = {
            "labels": pd.read_parquet(out / "annotations.parquet"),
            "annotators": pd.read_csv(out / "annotators.csv"),
            "agreement": pd.read_csv(out / "agreement.csv"),
        }
    built.update(config=config, seeds=seeds, lags=pd.read_csv(lags_csv))
    assert settings["lag"] == "estimate" and settings["fusion"] == "ewe"
    return built


def test_the_demo_lags_are_found_within_two_frames(demo_labels: dict) -> None:
    """Relative to the least-delayed annotator: traces alone cannot tell an absolute delay."""
    annotators = demo_labels["config"]["annotators"]
    true = {name: annotator_profile(i)[0] for i, name in enumerate(annotators)}
    least = min(true.values())
    lags = demo_labels["lags"]
    assert len(lags) == len(annotators) * 2 * len(demo_labels["seeds"])
    for row in lags.itertuples():
        expected = true[row.annotator] - least
        assert abs(row.lag_s - expected) <= 2 / CLIP_FPS, (row, expected)
    assert sorted(set(lags["lag_s"].round(2))) != [0.0]  # something was found


def test_ewe_weights_rank_the_demo_annotators_by_their_noise(demo_labels: dict) -> None:
    annotators = demo_labels["config"]["annotators"]
    noise = {name: annotator_profile(i)[1] for i, name in enumerate(annotators)}
    table = demo_labels["demo"]["annotators"]
    for dimension, rows in table.groupby("dimension"):
        by_weight = rows.sort_values("weight", ascending=False)["annotator"].tolist()
        assert by_weight == sorted(annotators, key=noise.get), (dimension, rows)
        assert rows["weight"].sum() == pytest.approx(1.0, abs=1e-3)  # each rounded to 1e-4
        # Compensating the lags raises every annotator's agreement with the others.
        lagged = rows["lag_s"] > 0.5
        assert (rows.loc[lagged, "ccc"] > rows.loc[lagged, "ccc_raw"]).all(), rows


def test_the_demo_labels_follow_the_latent_better_than_the_plain_mean(demo_labels: dict) -> None:
    for pick, dimension in enumerate(("valence", "arousal")):
        scores = {}
        for name in ("demo", "study"):
            labels = demo_labels[name]["labels"]
            truth = np.concatenate(
                [
                    latent_va(demo_labels["seeds"][video], rows["time_s"].to_numpy())[pick]
                    for video, rows in labels.groupby("video", sort=True)
                ]
            )
            scores[name] = ccc(truth, labels.sort_values(["video", "frame"])[dimension].to_numpy())
        assert scores["demo"] > scores["study"] + 0.05, (dimension, scores)
        agreement = demo_labels["demo"]["agreement"]
        everyone = agreement[
            (agreement["annotator_a"] == "*") & (agreement["dimension"] == dimension)
        ].set_index("stage")
        assert everyone.loc["aligned", "alpha"] > everyone.loc["raw", "alpha"]


def test_the_graded_cue_disappears_where_the_face_bins_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ablation's positive control: the amplitudes of two gratings on the face's halves
    follow valence (left) and arousal (right), with no coarse leak; scaled down (the ablation's
    own downscale), the valence grating (2.5 px of a 112 px crop) survives while the face still
    spans 112 px or more, its bin's condition, and the arousal grating (5 px) while it spans 56
    or more; frames within 25 % of either limit are left out (the fall is gradual)."""
    from affect4k.faces.align import downscale

    seed, seconds, size = 3, 4.0, {"width": 960, "height": 540}
    times = np.arange(100) / 25
    valence, arousal = latent_va(seed, times)
    track = face_track(seed, times, seconds=seconds, face_size=0.3, **size)

    def render() -> list[np.ndarray]:
        frames = demo_frames(
            seed, "astronaut", fps=Fraction(25), seconds=seconds, cue="graded", face_size=0.3,
            **size,
        )  # fmt: skip
        return list(frames)

    cued = render()
    lowest = (np.full(len(times), -1.0), np.full(len(times), -1.0))
    monkeypatch.setattr("affect4k.demo.scenes.latent_va", lambda *_: lowest)
    plain = render()
    energy: dict[str, list[float]] = {"left": [], "right": []}
    checked = {"present": 0, "absent": 0}
    for index in np.flatnonzero(track.visible):
        x, y, side = track.centre_x[index], track.centre_y[index], track.face_height[index]
        rows = slice(int(y - side / 6), int(y + side / 6))
        halves = {
            "left": (rows, slice(int(x - side / 3), int(x - side / 8))),
            "right": (rows, slice(int(x + side / 8), int(x + side / 3))),
        }
        difference = cued[index].astype(float) - plain[index]
        for name, (rows, cols) in halves.items():
            energy[name].append(difference[rows, cols].std())
        face = (
            slice(int(y - side / 3), int(y + side / 3)),
            slice(int(x - side / 3), int(x + side / 3)),
        )
        # No coarse leak: the face's mean grey level is the plain face's (but for the part of
        # a period the window cuts off, under 1 grey).
        assert abs(difference[face].mean()) < 1.0
        for factor in (2, 4):
            out = (960 // factor, 540 // factor)
            small = downscale(cued[index], out).astype(float) - downscale(plain[index], out)
            span = side / factor  # the face's crop square at that height, in its pixels
            for name, limit in (("left", 112), ("right", 56)):
                rows, cols = halves[name]
                rows = slice(rows.start // factor, rows.stop // factor)
                cols = slice(cols.start // factor, cols.stop // factor)
                kept = small[rows, cols].std() / max(difference[halves[name]].std(), 1e-9)
                if difference[halves[name]].std() < 2 or 0.75 * limit < span < 1.25 * limit:
                    continue
                if span >= 1.25 * limit:
                    assert kept > 0.3, (index, factor, name, span, kept)
                    checked["present"] += 1
                else:
                    assert kept < 0.3, (index, factor, name, span, kept)
                    checked["absent"] += 1
    assert min(checked.values()) > 20, checked
    assert np.corrcoef(energy["left"], valence[track.visible])[0, 1] > 0.9
    assert np.corrcoef(energy["right"], arousal[track.visible])[0, 1] > 0.9


def test_grain_is_gaussian_cycled_over_four_frames_and_the_same_every_time():
    """The benchmarks' grainy sources (bench/clips.py, bench/study_scale.py) are reproducible."""
    from affect4k.demo.scenes import GRAIN_FRAMES, with_grain

    grey = [np.full((64, 48, 3), 128, np.uint8) for _ in range(GRAIN_FRAMES + 1)]
    first, again = list(with_grain(iter(grey), 3.0)), list(with_grain(iter(grey), 3.0))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert np.array_equal(first[0], first[GRAIN_FRAMES])
    assert not np.array_equal(first[0], first[1])
    # Gaussian of 3 levels, truncated to whole levels toward 0
    assert 2.4 < np.std(first[0].astype(float) - 128) <= 3.0
    assert all(frame.dtype == np.uint8 for frame in first)
