"""The results table: choices read validation only, every number has a group-bootstrap interval,
seeds are averaged, and frames a run's weights saw are never scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.metrics import (
    bootstrap,
    ccc,
    group_sums,
    holm,
    interval,
    metrics_of_sums,
    p_value,
    resampled_totals,
    student_t_quantile,
    va_metrics,
)
from affect4k.evaluation.ablation import AblationCell, build_ablation
from affect4k.evaluation.tables import MEAN_SEED, TableEntry, build_table
from affect4k.faces.persons import OVERLAP_COLUMNS

#: What the workflow passes for ``evaluation.resamples`` unless a config sets it.
RESAMPLES = schema_default("evaluation.resamples")

VIDEOS = [f"v{i}" for i in range(8)]
FRAMES = 60


def _predictions(path: Path, rng: np.random.Generator, noise: float, videos=VIDEOS) -> Path:
    rows = []
    for video in videos:
        labels = rng.uniform(-1, 1, (FRAMES, 2))
        predicted = labels + rng.normal(0, noise, labels.shape)
        rows.append(prediction_rows(video, labels, predicted))
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(rows, ignore_index=True).to_parquet(path)
    return path


#: run -> (config, seed, entry, ablation_of, resolution, validation noise)
RUNS = {
    "grid-b2": ("grid-b2", 0, "grid", None, "native", 0.3),
    "grid-b4-seed0": ("grid-b4", 0, "grid", None, "native", 0.6),
    "grid-b4-seed1": ("grid-b4", 1, "grid", None, "native", 0.7),
    "grid-b2-h360-in96": ("grid-b2-h360-in96", 0, "grid", "grid-b2", "h360", 0.2),
    "solo": ("solo", 0, "solo", None, "native", 1.5),
}


def _entries(tmp_path: Path, test_paths: dict[str, Path], validation_noise=None) -> list:
    rng = np.random.default_rng(1)
    entries = []
    for run, (config, seed, entry, ablation_of, resolution, noise) in RUNS.items():
        noise = (validation_noise or {}).get(run, noise)
        validation = _predictions(tmp_path / "validation" / f"{run}.parquet", rng, noise)
        paths = {"validation": validation, "test": test_paths[run]}
        for eval_set, path in paths.items():
            entries.append(
                TableEntry(
                    run,
                    "vgg16_gru",
                    resolution,
                    eval_set,
                    path,
                    scored=eval_set,
                    config=config,
                    seed=seed,
                    entry=entry,
                    ablation_of=ablation_of,
                )
            )
    return entries


def _test_predictions(tmp_path: Path, noises: dict[str, float]) -> dict[str, Path]:
    rng = np.random.default_rng(2)
    return {
        run: _predictions(tmp_path / "test" / f"{run}.parquet", rng, n) for run, n in noises.items()
    }


def _choices(table: pd.DataFrame) -> pd.DataFrame:
    return table[["run", "eval_set", "selected_for", "tied_with_best"]].fillna("")


def test_no_choice_reads_a_test_score(tmp_path: Path) -> None:
    """Permuting the test predictions between runs (and making the worst run perfect on
    test) changes every test number but no choice: grid cell, ablation cell, best run and the
    shading all come from validation. Changing validation does change them."""
    noises = {run: 0.1 + 0.3 * i for i, run in enumerate(RUNS)}
    first = build_table(
        _entries(tmp_path, _test_predictions(tmp_path, noises)),
        tmp_path / "a.csv",
        resamples=RESAMPLES,
    )
    chosen = first.drop_duplicates("config").set_index("config")["selected_for"].fillna("")
    assert chosen.to_dict() == {
        "grid-b2": "sweep:grid",
        "grid-b4": "",
        "grid-b2-h360-in96": "best;ablation:grid-b2",
        "solo": "",
    }
    permuted = dict(zip(noises, [0.0, 2.0, 1.5, 3.0, 0.0][::-1], strict=True))
    tmp = tmp_path / "permuted"
    second = build_table(
        _entries(tmp, _test_predictions(tmp, permuted)), tmp_path / "b.csv", resamples=RESAMPLES
    )
    test = second["eval_set"] == "test"
    assert not np.allclose(first.loc[test, "mean_ccc"], second.loc[test, "mean_ccc"])
    pd.testing.assert_frame_equal(_choices(first), _choices(second))
    # The control: the same test predictions, another validation winner.
    tmp = tmp_path / "other_validation"
    third = build_table(
        _entries(tmp, _test_predictions(tmp, noises), {"solo": 0.05}),
        tmp_path / "c.csv",
        resamples=RESAMPLES,
    )
    best = third[third["selected_for"].fillna("").str.contains("best")]
    assert set(best["config"]) == {"solo"}


def test_ablation_cell_is_chosen_on_validation_only(tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    spans.mkdir()
    for video in VIDEOS:
        frame = np.arange(FRAMES)
        pd.DataFrame(
            {"frame": frame, "face": True, "span": 150.0, "source_height": 2160}
        ).to_parquet(spans / f"{video}.parquet")
    rng = np.random.default_rng(3)

    def cells(validation_noise: dict[str, float], test_noise: dict[str, float]) -> list:
        return [
            AblationCell(
                "vgg", "vgg16_gru", resolution, 96,
                _predictions(tmp_path / f"{eval_set}-{resolution}-{noise}.parquet", rng, noise),
                eval_set=eval_set,
            )
            for eval_set, noises in (("validation", validation_noise), ("test", test_noise))
            for resolution, noise in noises.items()
        ]  # fmt: skip

    validation = {"native": 0.2, "h360-c112": 0.8}
    table = build_ablation(
        cells(validation, {"native": 0.9, "h360-c112": 0.1}),
        spans,
        ["native", 360],
        tmp_path / "a.csv",
        resamples=RESAMPLES,
    )
    selected = set(table.loc[table["selected"], "resolution"])
    assert selected == {"native"}, "the test split's winner is h360-c112; validation's is native"
    assert {"mean_ccc_lo", "mean_ccc_hi"} <= set(table.columns)
    swapped = build_ablation(
        cells({"native": 0.8, "h360-c112": 0.2}, {"native": 0.9, "h360-c112": 0.1}),
        spans,
        ["native", 360],
        tmp_path / "b.csv",
        resamples=RESAMPLES,
    )
    assert set(swapped.loc[swapped["selected"], "resolution"]) == {"h360-c112"}


def test_seeds_get_a_mean_row_with_sd_and_a_paired_interval(tmp_path: Path) -> None:
    noises = dict.fromkeys(RUNS, 0.5)
    table = build_table(
        _entries(tmp_path, _test_predictions(tmp_path, noises)),
        tmp_path / "t.csv",
        resamples=RESAMPLES,
    )
    seeds = table[(table["config"] == "grid-b4") & (table["eval_set"] == "validation")]
    assert list(seeds["seed"].astype(str)) == ["0", "1", MEAN_SEED]
    per_seed, mean = seeds.iloc[:2], seeds.iloc[2]
    assert mean["run"] == "grid-b4"
    for name in ("mean_ccc", "valence_mse"):
        assert mean[name] == pytest.approx(per_seed[name].mean())
        assert mean[f"{name}_sd"] == pytest.approx(per_seed[name].std(ddof=1))
        assert mean[f"{name}_lo"] <= mean[name] <= mean[f"{name}_hi"]
    assert per_seed["mean_ccc_sd"].isna().all()
    assert (table["mean_ccc_lo"] <= table["mean_ccc"]).all()
    assert (table["mean_ccc"] <= table["mean_ccc_hi"]).all()
    assert set(table["groups"]) == {len(VIDEOS)}


def test_videos_the_weights_saw_are_never_scored_and_contamination_is_marked(tmp_path: Path):
    path = _predictions(tmp_path / "p.parquet", np.random.default_rng(4), 0.3)
    entries = [
        TableEntry("r", "vgg16_gru", "native", "aw", path, scored="unseen", exclude=("v0", "v1")),
        TableEntry("s", "vgg16_gru", "native", "aw", path, contaminated=True),
    ]
    table = build_table(entries, tmp_path / "t.csv", resamples=RESAMPLES).set_index("run")
    assert table.loc["r", "frames"] == (len(VIDEOS) - 2) * FRAMES
    assert table.loc["r", "videos"] == len(VIDEOS) - 2
    assert table.loc["s", "frames"] == len(VIDEOS) * FRAMES
    assert list(table["contaminated"]) == [False, True]
    predictions = pd.read_parquet(path)
    unseen = predictions[~predictions["video"].isin(["v0", "v1"])]
    expected = va_metrics(
        unseen[["valence", "arousal"]].to_numpy(),
        unseen[["valence_pred", "arousal_pred"]].to_numpy(),
    )
    assert table.loc["r", "mean_ccc"] == pytest.approx(expected["mean_ccc"])


def test_trained_on_a_database_video_leaves_out_its_whole_group(tmp_path: Path) -> None:
    """Issue 28 item 7: ``trained_on: database/v0`` leaves out every video of v0's group (v1:
    another part of the same source, or the same person), not v0 alone."""
    path = _predictions(tmp_path / "p.parquet", np.random.default_rng(4), 0.3)
    split = tmp_path / "split.csv"
    groups = ["g0", "g0", *VIDEOS[2:]]
    pd.DataFrame({"video": VIDEOS, "group": groups}).to_csv(split, index=False)
    entry = TableEntry(
        "r", "vgg16_gru", "native", "test", path, scored="unseen", groups=split, exclude=("v0",)
    )
    table = build_table([entry], tmp_path / "t.csv", resamples=RESAMPLES)
    assert table.loc[0, "videos"] == len(VIDEOS) - 2
    assert table.loc[0, "frames"] == (len(VIDEOS) - 2) * FRAMES


def _overlap(path: Path, rows: list[tuple]) -> Path:
    columns = list(OVERLAP_COLUMNS)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_people_a_run_saw_in_another_set_mark_or_leave_its_rows(tmp_path: Path) -> None:
    """identity_overlap.csv: v0's person is the corpus's video x1 (in the corpus's train part)
    and v1's person its video x2 (held out). A run pretrained on the corpus saw x1: its
    database rows scoring v0 are contaminated, or scored without v0; a run that saw no corpus
    is clean. On the corpus, every run (trained on the database's train side) saw v1's
    person: its rows scoring x2 are marked, while a person on the test side marks nothing."""
    database = _predictions(tmp_path / "db.parquet", np.random.default_rng(7), 0.3)
    corpus = _predictions(tmp_path / "aw.parquet", np.random.default_rng(8), 0.3, ["x1", "x2"])
    overlap = _overlap(
        tmp_path / "overlap.csv",
        [
            ("p0", "v0", "test", "aw", "x1", -1, "x1", "train", 0.31),
            ("p1", "v1", "train", "aw", "x2", -1, "x2", "test", 0.28),
        ],
    )
    seen = {"aw": "train"}
    entries = [
        TableEntry("pre", "m", "native", "test", database, database=True, seen_corpora=seen),
        TableEntry("plain", "m", "native", "test", database, database=True),
        TableEntry("pre", "m", "native", "aw", corpus, seen_corpora=seen),
    ]
    marked = build_table(entries, tmp_path / "t.csv", resamples=RESAMPLES, overlap=overlap)
    assert list(marked["contaminated"]) == [True, False, True]
    assert list(marked["videos"]) == [len(VIDEOS), len(VIDEOS), 2]
    left_out = build_table(
        entries, tmp_path / "u.csv", resamples=RESAMPLES, overlap=overlap, overlap_action="exclude"
    )
    assert list(left_out["contaminated"]) == [False, False, False]
    assert list(left_out["scored"]) == ["unseen", "all", "unseen"]
    assert list(left_out["videos"]) == [len(VIDEOS) - 1, len(VIDEOS), 1]
    # The person of the database's test side was never trained on: x1 is not marked.
    only_x1 = _predictions(tmp_path / "x1.parquet", np.random.default_rng(9), 0.3, ["x1"])
    clean = TableEntry("plain", "m", "native", "aw", only_x1)
    table = build_table([clean], tmp_path / "v.csv", resamples=RESAMPLES, overlap=overlap)
    assert not table.loc[0, "contaminated"]
    with pytest.raises(Affect4kError, match="evaluation.overlap"):
        build_table(entries, tmp_path / "w.csv", resamples=RESAMPLES, overlap_action="drop")


def test_a_still_image_corpus_is_marked_or_cleaned_image_by_image(tmp_path: Path) -> None:
    """In a still-image corpus one image is one person: only that frame is left out."""
    images = _predictions(tmp_path / "an.parquet", np.random.default_rng(10), 0.3, ["affectnet"])
    overlap = _overlap(
        tmp_path / "overlap.csv",
        [("p1", "v1", "train", "an", "affectnet", 3, "4.jpg", "test", 0.3)],
    )
    entry = TableEntry("plain", "m", "native", "an", images)
    marked = build_table([entry], tmp_path / "t.csv", resamples=RESAMPLES, overlap=overlap)
    assert marked.loc[0, "contaminated"] and marked.loc[0, "frames"] == FRAMES
    cleaned = build_table(
        [entry], tmp_path / "u.csv", resamples=RESAMPLES, overlap=overlap, overlap_action="exclude"
    )
    assert not cleaned.loc[0, "contaminated"] and cleaned.loc[0, "frames"] == FRAMES - 1


def test_groups_table_groups_videos_for_the_bootstrap(tmp_path: Path) -> None:
    path = _predictions(tmp_path / "p.parquet", np.random.default_rng(5), 0.5)
    split = tmp_path / "split.csv"
    pd.DataFrame({"video": VIDEOS, "group": [f"g{i // 2}" for i in range(len(VIDEOS))]}).to_csv(
        split, index=False
    )
    entry = TableEntry("r", "vgg16_gru", "native", "test", path, groups=split)
    table = build_table([entry], tmp_path / "t.csv", resamples=RESAMPLES)
    assert table.loc[0, "groups"] == len(VIDEOS) // 2


def test_pooled_sums_give_the_metrics_and_the_bootstrap_is_over_groups() -> None:
    rng = np.random.default_rng(6)
    groups = np.repeat(np.arange(20), 200)
    offset = rng.normal(0, 0.5, (20, 2))[groups]  # each group's predictions are off alike
    labels = rng.uniform(-1, 1, (len(groups), 2))
    predicted = labels + offset + rng.normal(0, 0.1, labels.shape)
    labels[::17, 0] = np.nan
    sums = group_sums(labels, predicted, groups, 20)
    pooled = metrics_of_sums(sums.sum(axis=0))
    for name, value in va_metrics(labels, predicted).items():
        if name != "frames":
            assert float(pooled[name]) == pytest.approx(value, rel=1e-9)
    by_group = bootstrap([sums], 400, 0)[0]["mean_ccc"]
    frames = np.arange(len(groups))
    by_frame = bootstrap([group_sums(labels, predicted, frames, len(frames))], 400, 0)[0]
    width = np.subtract(*interval(by_group, method="percentile")[::-1])
    frame_width = np.subtract(*interval(by_frame["mean_ccc"], method="percentile")[::-1])
    assert width > 3 * frame_width, "frames of one group are not independent samples"
    again = bootstrap([sums], 400, 0)[0]["mean_ccc"]
    np.testing.assert_array_equal(by_group, again)


def test_no_zero_width_interval_and_none_below_the_minimum_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    entries = []
    for groups in (1, 2, 3, 8):
        path = _predictions(tmp_path / f"p{groups}.parquet", rng, 0.5)
        table = pd.DataFrame({"video": VIDEOS, "group": [f"g{i % groups}" for i in range(8)]})
        table.to_csv(tmp_path / f"split{groups}.csv", index=False)
        entries.append(
            TableEntry(
                f"r{groups}",
                "m",
                "native",
                f"set{groups}",
                path,
                groups=tmp_path / f"split{groups}.csv",
            )
        )
    table = build_table(entries, tmp_path / "t.csv", resamples=RESAMPLES, min_groups=3)
    table = table.set_index("groups")
    for groups in (1, 2):
        assert table.loc[groups, ["mean_ccc_lo", "video_ccc_hi"]].isna().all()
        assert table.loc[groups, "interval_note"] == (
            f"no interval: {groups} group(s) < evaluation.min_interval_groups 3"
        )
    for groups in (3, 8):
        row = table.loc[groups]
        assert pd.isna(row["interval_note"])
        for name in ("mean_ccc", "valence_mse", "video_ccc"):
            assert row[f"{name}_lo"] < row[name] < row[f"{name}_hi"]  # never zero width
    with_note = pd.read_csv(tmp_path / "t.csv")
    assert with_note["interval_note"].notna().sum() == 2


def test_per_video_ccc_sits_beside_the_pooled_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    rows = []
    for index, video in enumerate(VIDEOS):  # each video's predictions are off by its own bias
        labels = rng.uniform(-1, 1, (FRAMES, 2)) + index * 0.2
        predicted = labels + rng.normal(0, 0.3, labels.shape) + rng.normal(0, 0.4)
        rows.append(prediction_rows(video, labels, predicted))
    path = tmp_path / "p.parquet"
    frames = pd.concat(rows, ignore_index=True)
    frames.to_parquet(path)
    table = build_table(
        [TableEntry("r", "m", "native", "test", path)], tmp_path / "t.csv", resamples=RESAMPLES
    )
    expected = np.mean(
        [
            np.mean([ccc(part[d], part[f"{d}_pred"]) for d in ("valence", "arousal")])
            for _, part in frames.groupby("video")
        ]
    )
    row = table.iloc[0]
    assert row["video_ccc"] == pytest.approx(expected)
    assert row["video_ccc"] < row["mean_ccc"]  # pooling rewards the videos' spread of means
    assert row["video_ccc_lo"] < row["video_ccc"] < row["video_ccc_hi"]


def test_the_t_interval_and_holm() -> None:
    assert student_t_quantile(0.975, 1) == pytest.approx(12.7062047, abs=1e-6)
    assert student_t_quantile(0.975, 38) == pytest.approx(2.0243942, abs=1e-6)
    replicates = np.random.default_rng(0).normal(0.5, 0.1, 4000)
    low, high = interval(replicates, estimate=0.5, groups=5)
    half = student_t_quantile(0.975, 4) * 0.1 * np.sqrt(5 / 4)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), abs=0.01)
    assert np.isnan(interval(replicates, estimate=0.5, groups=1)).all()
    assert p_value(replicates - 0.5, 0.0, 5) == pytest.approx(1.0)
    np.testing.assert_allclose(
        holm(np.array([0.01, 0.04, np.nan, 0.03, 0.005])), [0.03, 0.06, np.nan, 0.06, 0.02]
    )


def test_a_paired_difference_detects_a_planted_0_05_on_40_groups() -> None:
    """Two runs on the same 40 groups' frames, one 0.05 worse in CCC: the paired interval of
    their difference excludes 0, where the two marginal intervals overlap."""
    rng = np.random.default_rng(9)
    n_groups, frames = 40, 100
    groups = np.repeat(np.arange(n_groups), frames)
    labels = rng.normal(0, 0.3, (n_groups, 2))[groups] + rng.normal(0, 0.3, (len(groups), 2))
    shared = rng.normal(0, 0.25, (n_groups, 2))[groups] + rng.normal(0, 0.25, labels.shape)
    good = 0.8 * labels + shared
    worse = good + rng.normal(0, 0.19, labels.shape)  # about 0.05 less CCC
    sums = [group_sums(labels, run, groups, n_groups) for run in (good, worse)]
    points = [float(metrics_of_sums(s.sum(axis=0))["mean_ccc"]) for s in sums]
    assert 0.04 < points[0] - points[1] < 0.06
    reps = [metrics_of_sums(t)["mean_ccc"] for t in resampled_totals(sums, RESAMPLES, 0)]
    marginal = [interval(r, estimate=e, groups=n_groups) for r, e in zip(reps, points, strict=True)]
    assert marginal[1][1] > marginal[0][0]  # the marginal intervals overlap...
    low, high = interval(reps[0] - reps[1], estimate=points[0] - points[1], groups=n_groups)
    assert 0 < low < points[0] - points[1] < high  # ...the paired difference does not reach 0
    assert p_value(reps[0] - reps[1], points[0] - points[1], n_groups) < 0.001


def prediction_rows(video: str, labels: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """One video's frames as a predictions table: labels and predictions, (frames, 2) each."""
    return pd.DataFrame(
        {
            "video": video,
            "frame": np.arange(len(labels)),
            "valence": labels[:, 0],
            "arousal": labels[:, 1],
            "valence_pred": predicted[:, 0],
            "arousal_pred": predicted[:, 1],
        }
    )
