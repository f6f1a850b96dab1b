"""A user's own config stands alone: it plans the study, never the demo, and every change
(settings, package code) reruns what it affects, while bad settings stop before any job.

The demo is what runs without --configfile; these tests give one, as a user does.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import copy_workflow, demo_config, planned_jobs, run_snakemake, write_config

from affect4k.config.run_settings import TrainConfig
from affect4k.config.schema import SCHEMA_PATH, schema_default
from affect4k.config.settings import job_settings, resolve_training
from affect4k.demo.affect_faces import DEMO_FACES, seeded_rng
from affect4k.evaluation.ablation import AblationCell, build_ablation
from affect4k.faces.persons import OVERLAP_COLUMNS

#: What the workflow passes for ``evaluation.resamples`` unless a config sets it.
RESAMPLES = schema_default("evaluation.resamples")

DIMENSIONS = ("valence", "arousal")
ANNOTATORS = ("a1", "a2", "a3", "a4")


def user_study(root: Path, videos: dict[str, str], **keys: object) -> Path:
    """A user's folder: videos.tsv, a trace per annotator and dimension, a config naming them."""
    rows = ["video_id\turl\tstart\tend", *(f"{v}\t{url}\t\t" for v, url in videos.items())]
    (root / "videos.tsv").write_text("\n".join(rows) + "\n")
    for video in videos:
        (root / "annotations" / video).mkdir(parents=True)
        for annotator in ANNOTATORS:
            for dimension in DIMENSIONS:
                trace = root / "annotations" / video / f"{annotator}.{dimension}.csv"
                trace.write_text("time_s,value\n0,0.1\n10,0.2\n")
    return write_config(root, {"videos": "videos.tsv", "annotations": "annotations", **keys})


def test_a_config_naming_only_videos_and_annotations_plans_the_study_and_no_demo(tmp_path):
    user_study(tmp_path, {"v1": "https://example.org/v1.mp4", "v2": "https://example.org/2"})
    result = run_snakemake(tmp_path, "--dry-run", "results/tables.csv")
    assert planned_jobs(result.stdout) == {
        "download": 2,
        "clip": 2,
        "faces": 2,
        "annotate": 2,
        "database": 1,
        "split": 1,
        # The study's six models but the Aff-Wild one, whose weights the user has not named.
        "train": 5,
        "predict": 5,
        "tables": 1,
    }
    output = result.stdout + result.stderr
    assert output.count("training.runs.vgg16_affwild_gru.pretrained") == 1, "said once, by key"
    for run in ("vgg16_gru", "resnet50_gru", "alexnet_gru", "vgg16_cnn", "vgg16_imagenet_gru"):
        assert f"results/models/{run}/model.keras" in output
    assert "Shell command: None" not in output


#: The README's "Training on a CPU" snippet, as a user pastes it into config.yaml.
CPU_SNIPPET = re.search(
    r"\*\*Training on a CPU\.\*\*.*?```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S
)


def test_the_readmes_cpu_training_snippet_plans_every_run_shrunk_and_each_model_builds(tmp_path):
    from snakemake.utils import validate

    from affect4k.model.architectures import build_model

    assert CPU_SNIPPET, "README: Your own videos has the 'Training on a CPU' snippet"
    snippet = yaml.safe_load(CPU_SNIPPET.group(1))
    config_path = user_study(tmp_path, {"v1": "https://example.org/v1.mp4"}, **snippet)
    result = run_snakemake(tmp_path, "--dry-run", "results/tables.csv")
    runs = snippet["training"]["runs"]
    jobs = planned_jobs(result.stdout)
    assert jobs["train"] == jobs["predict"] == len(runs) >= 4
    assert "left out" not in result.stdout + result.stderr
    # What each training job does first: build its model at the final settings, on the CPU.
    config = yaml.safe_load(config_path.read_text())
    validate(config, str(SCHEMA_PATH))
    assert config["training"]["device"] == "cpu"
    for name, settings in resolve_training(copy.deepcopy(config)).runs.items():
        train = TrainConfig.from_settings(job_settings(settings))
        assert train.width < 1 and train.sequence_length < 80, name
        model = build_model(
            train.model, input_size=train.input_size, width=train.width,
            gru_units=train.gru_units, fc_units=train.fc_units, pretrained=train.pretrained,
        )  # fmt: skip
        assert model.count_params() < 2_000_000, (name, model.count_params())


@pytest.mark.parametrize(
    "args",
    [["--report", "report.html"], ["--summary"], ["--dry-run", "results/annotations.parquet"]],
)
def test_the_left_out_run_is_not_mentioned_where_no_table_is_planned(tmp_path, args):
    user_study(tmp_path, {"v1": "https://example.org/v1.mp4"})
    result = run_snakemake(tmp_path, *args, check=False)
    assert "vgg16_affwild_gru" not in result.stdout + result.stderr


def test_a_users_video_with_a_demo_id_is_never_generated(tmp_path):
    """Even a config that copies the demo section cannot make the demo write the user's data."""
    demo = demo_config({"demo_hanks": (29.97, "tom_hanks")}, seconds=2)["demo"]
    user_study(tmp_path, {"demo_hanks": "https://example.org/mine.mp4"}, demo=demo)
    result = run_snakemake(tmp_path, "--dry-run", "results/annotations.parquet")
    jobs = planned_jobs(result.stdout)
    assert "demo_video" not in jobs and jobs["download"] == 1
    assert "resources/demo/annotations" not in result.stdout


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"faces": {"detector": "insightface"}}, "faces.model"),
        ({"annotation": {"min_annotators": 5}}, "annotation.min_annotators"),
        ({"training": {"ablation": {"heights": [0]}}}, "heights"),
        (
            {"training": {"runs": {"x": {"model": "vgg16_gru", "pretrained": "pretrain:p"}}}},
            "training.runs.x.pretrained",
        ),
        ({"training": {"backend": "torch"}}, "backend"),
    ],
)
def test_settings_that_cannot_work_stop_before_any_job_and_name_the_key(tmp_path, keys, named):
    if "torch" in str(keys) and importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here, so the torch backend is valid")
    user_study(tmp_path, {"v1": "https://example.org/v1.mp4"}, **keys)
    result = run_snakemake(tmp_path, "results/tables.csv", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output
    assert "Traceback" not in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_a_broken_config_file_is_refused_before_any_job(tmp_path):
    user_study(tmp_path, {"v1": "https://example.org/v1.mp4"})
    broken = tmp_path / "broken.yaml"
    broken.write_text("videos: videos.tsv\nannotations: [annotations\n")
    result = run_snakemake(tmp_path, "results/tables.csv", config=broken, check=False)
    assert result.returncode != 0
    assert "not valid JSON or YAML" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--dag"],
        ["--rulegraph"],
        ["--summary"],
        ["--list-changes", "params"],
        ["--list-changes", "code"],
        ["--report", "report.html"],
    ],
)
def test_inspection_commands_need_no_cores(tmp_path, args):
    """The bare demo, as a user first meets it, from a copy of the repository."""
    snakefile = copy_workflow(tmp_path)
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), *args]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    # Nothing is built here: --report has no figures to pack (tests/workflow/test_report.py
    # packs some).
    assert result.returncode == 0 or "marked for report but does not exist" in output, output
    assert "number of cores" not in output


# --- a real small study, run through a copy of the workflow whose code the tests edit --------

TINY_RUN = {
    "model": "alexnet_gru",
    "epochs": 1,
    "sequence_length": 10,
    "width": 0.0625,
    "gru_units": 4,
    "fc_units": 8,
    "input_size": 48,
    "learning_rate": 1.0e-3,
}
VIDEOS = {"u1": (30, "astronaut"), "u2": (25, "t1:1"), "u3": (29.97, "tom_hanks")}
TINY_VGG = {**TINY_RUN, "model": "vgg16_cnn"}
# A corpus that a pretraining trains on, and a run initialised from that pretraining.
TRAINING = {
    "runs": {"tiny": TINY_RUN, "from_aw": {**TINY_VGG, "model": "vgg16_affwild_gru"}},
    "pretrain": {"aw": {**TINY_VGG, "corpus": "aw"}},
    # The resolution ablation, shrunk: the tiny run again on the 720p clips scaled to 360 lines.
    "ablation": {
        "runs": ["tiny"],
        "heights": ["native", 360],
        "crop_sizes": [112],
        "input_sizes": [48],
    },
}
TRAINING["runs"]["from_aw"]["pretrained"] = "pretrain:aw"
EVALUATION = {"corpora": {"aw": {"format": "affwild2", "root": "resources/demo/corpora/aw"}}}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("study")
    snakefile = copy_workflow(root / "workflow_copy")
    work = root / "work"
    work.mkdir()
    rows = ["video_id\turl\tstart\tend"]
    rows += [f"{video}\tresources/demo/sources/{video}.mp4\t\t" for video in VIDEOS]
    (work / "videos.tsv").write_text("\n".join(rows) + "\n")
    config = demo_config(VIDEOS, seconds=2, training=TRAINING, evaluation=EVALUATION)
    config["demo"]["corpora"] = {"aw": {"format": "affwild2", "videos": 3, "frames": 40}}
    config["demo"].update(width=1280, height=720)
    write_config(work, config)
    run_snakemake(work, "results/tables.csv", "results/ablation.csv", snakefile=snakefile)
    return {"work": work, "snakefile": snakefile, "config": config}


def _dry_run(study: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return run_snakemake(
        study["work"], "--dry-run", *args, "results/tables.csv", snakefile=study["snakefile"]
    )


def test_a_changed_learning_rate_retrains_and_succeeds(study):
    work = study["work"]
    changed = {**TINY_RUN, "learning_rate": 3.0e-4}
    config = {**study["config"], "training": {**TRAINING, "runs": {**TRAINING["runs"]}}}
    config["training"]["runs"]["tiny"] = changed
    write_config(work, config)
    try:
        # The run and its ablation copy retrain; nothing upstream does.
        plan = planned_jobs(_dry_run(study, "results/ablation.csv").stdout)
        assert plan == {"train": 2, "predict": 2, "tables": 1, "ablation": 1}
        run_snakemake(work, "results/tables.csv", snakefile=study["snakefile"])
        saved = json.loads((work / "results/models/tiny/config.json").read_text())
        assert saved["learning_rate"] == 3.0e-4
        assert "Nothing to be done" in _dry_run(study).stdout
    finally:
        write_config(work, study["config"])
        run_snakemake(work, "results/tables.csv", snakefile=study["snakefile"])


def test_editing_package_code_marks_exactly_the_stages_that_import_it_stale(study):
    module = study["snakefile"].parent / "src/affect4k/labels/annotate.py"
    original = module.read_text()
    try:
        # A docstring or comment is not code: nothing reruns.
        module.write_text(original.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
        assert "Nothing to be done" in _dry_run(study).stdout
        module.write_text(original + "\n\ndef added() -> int:\n    return 1\n")
        plan = planned_jobs(_dry_run(study).stdout)
        assert plan["annotate"] == len(VIDEOS) and plan["database"] == 1
        for untouched in ("demo_video", "download", "clip", "faces"):
            assert untouched not in plan, untouched
        changes = run_snakemake(
            study["work"], "--list-changes", "params", snakefile=study["snakefile"]
        )
        assert "results/annotations/u1.parquet" in changes.stdout
    finally:
        module.write_text(original)
    assert "Nothing to be done" in _dry_run(study).stdout


def test_no_table_scores_a_frame_its_run_or_initialisation_trained_on(study):
    work = study["work"]
    corpus = pd.read_parquet(work / "results/external/aw/annotations.parquet")
    trained_on = set(corpus.loc[corpus["split"] == "train", ["video", "frame"]].itertuples(False))
    held_out = set(corpus.loc[corpus["split"] == "test", ["video", "frame"]].itertuples(False))
    assert trained_on and held_out
    for run in ("tiny", "from_aw"):
        scored = pd.read_parquet(work / f"results/predictions/{run}/aw.parquet")
        keys = set(scored[["video", "frame"]].itertuples(index=False))
        assert keys and keys <= held_out and not keys & trained_on, run
    table = pd.read_csv(work / "results/tables.csv").set_index(["run", "eval_set"])
    assert table.loc[("from_aw", "aw"), "scored"] == "held_out"
    assert table.loc[("tiny", "test"), "scored"] == "test"


def test_the_identity_overlap_names_only_people_the_database_has(study):
    """The demo corpus renders its videos from the demo's faces (video k's face drawn by
    ``seeded_rng(seed, "affwild2", k)``): identity_overlap.csv may list a corpus video only
    where its face is one of the database's, under that video's person."""
    work = study["work"]
    overlap = pd.read_csv(work / "results/identity_overlap.csv")
    assert list(overlap.columns) == list(OVERLAP_COLUMNS)
    split = pd.read_csv(work / "results/split.csv").set_index("video")
    assert split["person"].nunique() == len(VIDEOS), "three faces, three people"
    for row in overlap.itertuples():
        index = int(row.corpus_video.removeprefix("video")) - 1
        rng = seeded_rng(0, "affwild2", str(index))
        rng.integers(2**31)
        face = DEMO_FACES[int(rng.integers(len(DEMO_FACES)))]
        videos = [video for video, (_, shown) in VIDEOS.items() if shown == face]
        assert videos and row.person == split.loc[videos[0], "person"], row


def test_the_ablation_crops_the_native_faces_scaled_and_scores_every_cell_per_face_bin(study):
    work = study["work"]
    native = pd.read_parquet(work / "results/faces/u1.parquet")
    # The cell's table is the native one: the same frames, the same landmarks.
    pd.testing.assert_frame_equal(
        pd.read_parquet(work / "results/faces_h360-c112/u1.parquet"), native
    )
    crops = np.load(work / "results/faces_h360-c112/u1.npy", mmap_mode="r")
    kept = native["face"].to_numpy()
    assert crops.shape == (len(native), 112, 112, 3)
    assert not crops[~kept].any() and crops[kept].reshape(kept.sum(), -1).any(axis=1).all()
    table = pd.read_csv(work / "results/ablation.csv")
    assert sorted(table["resolution"].unique()) == ["h360-c112", "native"]
    assert set(table["run"]) == {"tiny"} and set(table["input_size"]) == {48}
    cells = [
        AblationCell(
            "tiny",
            "alexnet_gru",
            resolution,
            48,
            work / f"results/predictions/{run}/{eval_set}.parquet",
            eval_set=eval_set,
        )
        for run, resolution in (("tiny", "native"), ("tiny-h360-c112-in48", "h360-c112"))
        for eval_set in ("validation", "test")
    ]
    again = build_ablation(
        cells,
        work / "results/ablation/spans",
        study["config"]["training"]["ablation"]["heights"],
        work / "again.csv",
        groups=work / "results/split.csv",
        resamples=RESAMPLES,
    )
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    assert set(table["eval_set"]) == {"validation", "test"}
    assert table["selected"].any()
    everything = table[table["face_bin"] == "all"]
    assert (everything["frames"] > 0).all()
    # Every cell is scored on the same frames.
    assert everything.groupby("eval_set")["frames"].nunique().eq(1).all()
    # A row has an ordered interval, or none and says why (a face bin too small to score,
    # fewer groups than evaluation.min_interval_groups).
    defined = table.dropna(subset=["mean_ccc_lo", "mean_ccc_hi"])
    assert (defined["mean_ccc_lo"] <= defined["mean_ccc_hi"]).all()
    undefined = table[table["mean_ccc_lo"].isna()]
    assert undefined["interval_note"].notna().all() or undefined["mean_ccc"].isna().all()


def test_the_demo_is_the_default_only_without_a_configfile(tmp_path):
    snakefile = copy_workflow(tmp_path)
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--dry-run"]
    result = subprocess.run(
        [*argv, "--cores", "2", "results/tables.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    jobs = planned_jobs(result.stdout)
    assert jobs["demo_video"] == 6 and jobs["pretrain"] == 2 and jobs["import_corpus"] == 2


def test_a_config_of_nested_aliases_or_a_nan_stops_the_workflow_with_one_line(tmp_path):
    """Checked before the schema, whose error message would print the expanded value."""
    from helpers.hostile import BILLION_LAUGHS

    user_study(tmp_path, {"v1": "https://example.org/v1.mp4"})
    (tmp_path / "config.yaml").write_text(BILLION_LAUGHS + "\n")
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "config: its YAML aliases (&anchor, *anchor) expand to more than" in said
    write_config(tmp_path, {"videos": "videos.tsv", "annotations": "annotations"})
    config = (tmp_path / "config.yaml").read_text() + "annotation: {max_gap_s: .nan}\n"
    (tmp_path / "config.yaml").write_text(config)
    result = run_snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "config: annotation.max_gap_s: nan is not a finite number" in said
