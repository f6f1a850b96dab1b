"""The release (``snakemake results/release``), its Croissant metadata, rehydrating it, and
taking a video down.

One workspace builds the release of four small demo videos (module fixture); the takedown test
works on a copy of it, the rehydrate test rebuilds from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.workflow import demo_config, planned_jobs, run_snakemake, write_config

from affect4k.commands.cli import main
from affect4k.core.columns import BOX_COLUMNS, DIMENSIONS
from affect4k.dataset.metadata import FILES
from affect4k.dataset.release import MANIFEST_COLUMNS, crop_hash
from affect4k.dataset.takedown import video_files

VIDEOS = {
    "rel_a": (30, "astronaut"),
    "rel_b": (25, "tom_hanks"),
    "rel_c": (24, "t1:0"),
    "rel_gone": (25, "t1:1"),
}
CONTACT = "takedown@example.org"


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace where the workflow built results/release from four 4 s demo videos."""
    work = tmp_path_factory.mktemp("release")
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in VIDEOS]
    (work / "videos.tsv").write_text("\n".join(rows) + "\n")
    config = demo_config(VIDEOS, seconds=4, release={"contact": CONTACT, "creators": ["A. B."]})
    write_config(work, config)
    run_snakemake(work, "results/release")
    return work


def release_dir(work: Path) -> Path:
    """The one release folder of a workspace (beside it: Snakemake's hidden timestamp)."""
    (folder,) = (work / "results/release").glob("[!.]*")
    return folder


def test_the_release_holds_labels_and_where_faces_are_but_no_pixels(released: Path):
    folder = release_dir(released)
    assert folder.name == "affect4k-1.0.0"
    assert {path.name for path in folder.iterdir()} == {*FILES, "croissant.json", "SHA256SUMS"}
    manifest = pd.read_parquet(folder / "manifest.parquet")
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    database = pd.read_parquet(released / "results/annotations.parquet")
    assert len(manifest) == len(database)
    for video, part in manifest.groupby("video"):
        faces = pd.read_parquet(released / f"results/faces/{video}.parquet")
        np.testing.assert_array_equal(part["frame"], faces["frame"])
        np.testing.assert_array_equal(part[list(BOX_COLUMNS)], faces[list(BOX_COLUMNS)])
        labels = database[database["video"] == video]
        np.testing.assert_array_equal(part[list(DIMENSIONS)], labels[list(DIMENSIONS)])
        np.testing.assert_allclose(part["source_time_s"], part["frame"] / 25)
        crops = np.load(released / f"results/faces/{video}.npy")
        assert part["crop_phash"].tolist() == [crop_hash(crop) for crop in crops]
        assert (part["crop_phash"] != "").tolist() == part["face"].tolist()
    assert set(manifest["split"]) <= {"train", "validation", "test"}
    # The CSV is the same table.
    csv = pd.read_csv(folder / "manifest.csv", keep_default_na=False, na_values=[""])
    np.testing.assert_allclose(csv["valence"], manifest["valence"])
    # Every annotator's trace, aligned as the database has it.
    traces = pd.read_parquet(folder / "traces.parquet")
    a1 = traces[(traces["annotator"] == "a1") & (traces["dimension"] == "valence")]
    np.testing.assert_array_equal(a1["aligned"], database["valence_a1"])
    assert traces["raw"].notna().any()
    # The checksums hold, and name every other file.
    sums = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {*FILES, "croissant.json"}
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    datasheet = (folder / "DATASHEET.md").read_text()
    for section in ("Motivation", "Composition", "Collection process", "Uses", "Maintenance"):
        assert f"## {section}" in datasheet
    assert f"{len(manifest)} frames of 4 videos" in datasheet and CONTACT in datasheet
    assert "Art. 5(1)(f)" in (folder / "LICENSE").read_text()


def test_croissant_validates_and_generates_the_records(released: Path):
    mlc = pytest.importorskip("mlcroissant")
    folder = release_dir(released)
    document = json.loads((folder / "croissant.json").read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    for field in (
        "dataCollection",
        "dataAnnotationProtocol",
        "annotatorDemographics",
        "dataPreprocessingProtocol",
        "dataUseCases",
        "personalSensitiveInformation",
        "dataLimitations",
        "dataBiases",
        "dataReleaseMaintenancePlan",
    ):
        assert document[f"rai:{field}"], field
    assert "Art. 5(1)(f)" in document["rai:dataUseCases"]
    assert CONTACT in document["rai:dataReleaseMaintenancePlan"]
    dataset = mlc.Dataset(jsonld=folder / "croissant.json")  # raises on any error
    assert not dataset.metadata.ctx.issues.errors
    manifest = pd.read_parquet(folder / "manifest.parquet")
    frames = list(dataset.records("frames"))
    assert len(frames) == len(manifest)
    assert frames[0]["frames/video"] == manifest["video"].iat[0].encode()
    assert frames[0]["frames/valence"] == pytest.approx(manifest["valence"].iat[0], nan_ok=True)
    videos = list(dataset.records("videos"))
    assert sorted(row["videos/video"].decode() for row in videos) == sorted(VIDEOS)


def test_the_release_loads_with_pandas_and_datasets(released: Path, tmp_path: Path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder = release_dir(released)
    frames = pd.read_parquet(folder / "manifest.parquet")
    loaded = datasets.load_dataset(
        "parquet", data_files=str(folder / "manifest.parquet"), cache_dir=str(tmp_path / "cache")
    )["train"]
    assert loaded.num_rows == len(frames) and loaded.column_names == list(frames.columns)


def test_rehydrate_rebuilds_the_crops_and_reports_a_missing_video(
    released: Path, tmp_path: Path, monkeypatch, capsys
):
    # A user's folder where one source video is no longer to be had.
    user = tmp_path / "user"
    for video in ("rel_a", "rel_b", "rel_c"):
        source = Path("resources/demo/sources") / f"{video}.mp4"
        (user / source.parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(released / source, user / source)
    monkeypatch.chdir(user)
    out = tmp_path / "rehydrated"
    assert main(["rehydrate", str(release_dir(released)), "-o", str(out)]) == 1
    report = pd.read_csv(out / "rehydrate.csv").set_index("video")
    assert report.loc["rel_gone", "status"] == "gone"
    assert "rel_gone" in report.loc["rel_gone", "note"]
    assert "1 of 4 video(s) gone or changed" in capsys.readouterr().out
    for video in ("rel_a", "rel_b", "rel_c"):
        assert report.loc[video, "status"] == "ok", report.loc[video, "note"]
        assert report.loc[video, "frames"] == report.loc[video, "frames_expected"] == 100
        # Same sources, same stages, same settings: the very same crops.
        original = np.load(released / f"results/faces/{video}.npy")
        np.testing.assert_array_equal(np.load(out / f"faces/{video}.npy"), original)


def test_rehydrate_refuses_a_release_that_does_not_match_its_checksums(
    released: Path, tmp_path: Path
):
    copy = tmp_path / "release"
    shutil.copytree(release_dir(released), copy)
    with (copy / "videos.csv").open("a") as videos:
        videos.write("evil,,file:///etc/passwd,,,1,evil,train\n")
    assert main(["rehydrate", str(copy), "-o", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def _mentions(path: Path, video: str) -> bool:
    """Whether a file's content names ``video`` (a parquet file through its table)."""
    if path.suffix == ".parquet":
        return video in pd.read_parquet(path).to_csv()
    return video.encode() in path.read_bytes()


def test_a_takedown_removes_the_video_from_every_output(released: Path, tmp_path: Path):
    work = tmp_path / "work"
    shutil.copytree(released, work, symlinks=True)
    (work / "takedown.tsv").write_text(
        "id\tdate\treason\n"
        "rel_gone\t2026-11-02\tthe person shown asked\n"
        "dQw4w9WgXcQ\t2026-11-20\tthe owner asked (not in this database)\n"
    )
    config = yaml.safe_load((work / "config.yaml").read_text())
    write_config(work, {**config, "takedown": "takedown.tsv"})
    assert list(video_files(["rel_gone"], work))
    plan = run_snakemake(work, "--dry-run", "results/release")
    # Only what depends on the video reruns; a dry run deletes nothing, it says what it would.
    assert planned_jobs(plan.stdout) == {"database": 1, "split": 1, "release": 1}
    assert "takedown: would delete results/faces/rel_gone.npy" in plan.stdout + plan.stderr
    assert (work / "results/faces/rel_gone.npy").is_file()
    run_snakemake(work, "results/release")
    left = [
        path
        for root in ("results", "logs", "benchmarks")
        for path in (work / root).rglob("*")
        if "rel_gone" in str(path.relative_to(work))
    ]
    assert not left
    folder = release_dir(work)
    assert folder.name == "affect4k-1.0.2"  # two requests: two patch versions
    changelog = folder / "CHANGELOG.md"
    assert "## 1.0.1" in changelog.read_text() and "the person shown asked" in changelog.read_text()
    named = [
        path
        for path in (work / "results").rglob("*")
        if path.is_file() and path != changelog and _mentions(path, "rel_gone")
    ]
    assert not named
    manifest = pd.read_parquet(folder / "manifest.parquet")
    assert set(manifest["video"]) == {"rel_a", "rel_b", "rel_c"}
    assert set(pd.read_csv(work / "results/split.csv")["video"]) == {"rel_a", "rel_b", "rel_c"}
