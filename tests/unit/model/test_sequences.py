"""Tests of the sequence loader on tiny databases whose crops encode (video, frame).

Pixel channel 0 holds the video index and channels 1-2 the frame number (low, high byte), so
every gathered crop says exactly where it came from and its label can be checked against the
frame's own label.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affect4k.core.errors import Affect4kError
from affect4k.model.sequences import EvalDataset, SequenceDataset, load_split

CROP = 4


def _label(video: int, frames: np.ndarray) -> np.ndarray:
    """A label unique to (video, frame), in [-1, 1]."""
    return np.stack([frames / 1000 - 0.5, np.full(len(frames), video / 10)], axis=1)


def write_coded_database(
    root: Path,
    lengths: list[int],
    *,
    test: dict[int, np.ndarray] | None = None,
    no_face: dict[int, np.ndarray] | None = None,
    unlabelled: dict[int, np.ndarray] | None = None,
    static: int | None = None,
) -> tuple[Path, Path]:
    """Database of ``len(lengths)`` videos; ``test``/``no_face``/``unlabelled`` map video -> frames.

    The annotations' own ``face`` column is always True: the loader must use faces/*.parquet.
    """
    test, no_face, unlabelled = test or {}, no_face or {}, unlabelled or {}
    faces_dir = root / "faces"
    faces_dir.mkdir(parents=True)
    tables = []
    for video, n in enumerate(lengths):
        frames = np.arange(n)
        crops = np.zeros((n, CROP, CROP, 3), dtype=np.uint8)
        crops[..., 0] = video
        crops[..., 1] = (frames % 256)[:, None, None]
        crops[..., 2] = (frames // 256)[:, None, None]
        np.save(faces_dir / f"v{video}.npy", crops)
        face = np.ones(n, dtype=bool)
        face[no_face.get(video, [])] = False
        pd.DataFrame({"frame": frames, "face": face}).to_parquet(faces_dir / f"v{video}.parquet")
        labels = _label(video, frames)
        labels[unlabelled.get(video, [])] = np.nan
        split = np.full(n, "train", dtype=object)
        split[test.get(video, [])] = "test"
        table = pd.DataFrame(
            {
                "video": f"v{video}",
                "frame": frames,
                "time_s": frames / 25,
                "valence": labels[:, 0],
                "arousal": labels[:, 1],
                "face": True,
                "split": split,
                "static": video == static,
            }
        )
        tables.append(table)
    annotations = root / "annotations.parquet"
    pd.concat(tables).to_parquet(annotations)
    return annotations, faces_dir


def _decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(video, frame) of every crop of a gathered batch."""
    pixel = x[..., 0, 0, :].astype(np.int64)
    return pixel[..., 0], pixel[..., 1] + 256 * pixel[..., 2]


def _epoch(dataset: SequenceDataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [dataset[i] for i in range(len(dataset))]


def test_crops_are_memory_mapped_not_loaded(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [30, 40])
    videos = load_split(annotations, faces, "train")
    assert all(isinstance(video.crops, np.memmap) for video in videos)
    assert not any(video.crops.flags.writeable for video in videos)


def _mapped_resident_kb(paths: list[Path]) -> int:
    """Resident kB of this process's mappings of ``paths`` (Linux's /proc/self/smaps)."""
    names = {str(path.resolve()) for path in paths}
    resident, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", fields[0]):  # a mapping's header
            # Anonymous mappings have no sixth field: they must not count as the file before.
            current = fields[5] if len(fields) >= 6 else None
        elif fields[:1] == ["Rss:"] and current in names:
            resident += int(fields[1])
    return resident


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="needs Linux's /proc")
def test_gathering_an_epoch_leaves_no_crop_page_mapped_in_the_process(tmp_path: Path) -> None:
    """Pages read through a map count in the loader's RSS, which over the study's 15 GB of
    crops would grow to the page cache's size; the loader reads them with pread instead."""
    annotations, faces = write_coded_database(tmp_path, [3000, 2000, 2500, 1500])
    videos = load_split(annotations, faces, "train")
    dataset = SequenceDataset(videos, sequence_length=80, batch_size=4, seed=0)
    epoch = _epoch(dataset)
    assert sum(x.shape[0] * x.shape[1] for x, _ in epoch) >= 8000
    video, frame = _decode(np.concatenate([x for x, _ in epoch]))
    np.testing.assert_array_equal(np.diff(frame, axis=1), 1)  # still the frames asked for
    assert _mapped_resident_kb(sorted(faces.glob("*.npy"))) <= 4 * 4  # at most the headers


def test_a_crop_file_cut_short_is_named(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [100, 100])
    videos = load_split(annotations, faces, "train")
    npy = faces / "v1.npy"
    with open(npy, "r+b") as file:
        file.truncate(npy.stat().st_size - 10 * CROP * CROP * 3)
    dataset = EvalDataset(videos, sequence_length=100, batch_size=2)
    with pytest.raises(Affect4kError, match=r"v1\.npy: ends before frame 99"):
        dataset.batch(0)


def test_batches_are_consecutive_frames_of_distinct_videos_with_their_labels(
    tmp_path: Path,
) -> None:
    annotations, faces = write_coded_database(tmp_path, [200, 90, 60, 130, 75, 40])
    videos = load_split(annotations, faces, "train")
    dataset = SequenceDataset(videos, sequence_length=16, batch_size=4, seed=3)
    seen = set()
    for x, y in _epoch(dataset):
        assert x.shape == (4, 16, CROP, CROP, 3) and x.dtype == np.uint8
        assert y.shape == (4, 16, 2) and y.dtype == np.float32
        video, frame = _decode(x)
        assert len(set(video[:, 0])) == 4, "a batch mixes 4 different videos"
        assert (video == video[:, :1]).all()
        np.testing.assert_array_equal(np.diff(frame, axis=1), 1)
        for row in range(4):
            np.testing.assert_allclose(y[row], _label(video[row, 0], frame[row]), atol=1e-6)
            seen.update(zip(video[row], frame[row], strict=True))
    assert len(seen) >= 0.9 * (200 + 90 + 60 + 130 + 75 + 40), "an epoch covers the frames"


def test_epochs_are_deterministic_and_differ(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [100, 120, 90])
    videos = load_split(annotations, faces, "train")

    def frames_of_epoch(epoch: int) -> list[np.ndarray]:
        dataset = SequenceDataset(videos, sequence_length=10, batch_size=2, seed=7)
        dataset.set_epoch(epoch)
        return [_decode(x)[1] for x, _ in _epoch(dataset)]

    first = frames_of_epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, frames_of_epoch(1), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, frames_of_epoch(2), strict=True))


def test_no_face_unlabelled_and_other_split_frames_are_nan(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(
        tmp_path,
        [120, 120],
        no_face={0: np.arange(10, 30)},
        unlabelled={1: np.arange(50, 55)},
        test={0: np.arange(80, 120)},
    )
    videos = load_split(annotations, faces, "train")
    dataset = SequenceDataset(videos, sequence_length=20, batch_size=2, seed=0)
    masked_seen = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for x, y in _epoch(dataset):
            video, frame = _decode(x)
            masked = ((video == 0) & (frame >= 10) & (frame < 30)) | (
                (video == 1) & (frame >= 50) & (frame < 55)
            )
            assert np.isnan(y[masked]).all()
            assert np.isfinite(y[~masked]).all()
            assert not ((video == 0) & (frame >= 80)).any(), "no test frame in a train sequence"
            masked_seen += masked.sum()
    assert masked_seen > 0


def test_sequences_without_a_labelled_face_are_skipped(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(
        tmp_path, [50, 50, 50], no_face={2: np.arange(50)}, unlabelled={1: np.arange(0, 25)}
    )
    dataset = SequenceDataset(
        load_split(annotations, faces, "train"), sequence_length=25, batch_size=2, seed=0
    )
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for _, y in _epoch(dataset):
            assert np.isfinite(y).any(axis=(1, 2)).all()


def test_face_mask_comes_from_the_faces_directory(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [40, 40], no_face={1: np.arange(5)})
    video = load_split(annotations, faces, "train")[1]
    assert np.isnan(video.targets[:5]).all() and np.isfinite(video.targets[5:]).all()


def test_shuffle_labels_gives_every_sequence_labels_from_another_video(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [60, 80, 70, 50], no_face={2: np.arange(8)})
    videos = load_split(annotations, faces, "train")
    dataset = SequenceDataset(videos, sequence_length=10, batch_size=2, seed=0, shuffle_labels=True)
    donors = set()
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for x, y in _epoch(dataset):
            for row, (video_of_step, frames) in enumerate(zip(*_decode(x), strict=True)):
                video, finite = int(video_of_step[0]), np.isfinite(y[row, :, 0])
                assert not np.isnan(videos[video].targets[frames[finite]]).any(), "mask kept"
                # the coded labels name their (video, frame): another video's, every time
                donor = {int(round(value * 10)) for value in y[row, finite, 1]}
                assert len(donor) == 1 and video not in donor
                donors |= {(video, *donor)}
    assert len(donors) > len(videos), "donors are drawn afresh, not one fixed pairing"


def test_fewer_videos_than_batch_rows_still_fill_batches(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [30, 30])
    dataset = SequenceDataset(
        load_split(annotations, faces, "train"), sequence_length=8, batch_size=4, seed=0
    )
    assert all(x.shape[0] == 4 for x, _ in _epoch(dataset))


def test_steps_per_epoch_fixes_the_epoch_length(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [40, 40, 40])
    videos = load_split(annotations, faces, "train")
    dataset = SequenceDataset(videos, sequence_length=10, batch_size=2, seed=0, steps_per_epoch=25)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        assert len(dataset) == 25 and len(_epoch(dataset)) == 25


def test_eval_windows_cover_each_split_frame_exactly_once(tmp_path: Path) -> None:
    lengths = [37, 5, 80, 41]
    test = {0: np.arange(10, 20), 2: np.arange(0, 80, 2)}
    annotations, faces = write_coded_database(tmp_path, lengths, test=test)
    for split in ("train", "test", None):
        videos = load_split(annotations, faces, split)
        expected = {
            (video.name, frame) for video in videos for frame in np.flatnonzero(video.in_split)
        }
        covered = []
        dataset = EvalDataset(videos, sequence_length=8, batch_size=3)
        batches = list(dataset)
        assert len(batches) == len(dataset)
        for index, batch in enumerate(batches):
            assert batch.x.shape == (3, 8, CROP, CROP, 3)
            np.testing.assert_array_equal(dataset.batch(index).frames, batch.frames)
            coded_video, coded_frame = _decode(batch.x)
            for row in np.flatnonzero(batch.video >= 0):
                steps = batch.frames[row] >= 0
                name = videos[batch.video[row]].name
                assert (coded_video[row, steps] == int(name[1:])).all()
                np.testing.assert_array_equal(coded_frame[row, steps], batch.frames[row, steps])
                covered.extend((name, int(f)) for f in batch.frames[row, steps])
        assert len(covered) == len(set(covered)) == len(expected)
        assert set(covered) == expected


def test_static_video_repeats_each_image_and_labels_the_last_step(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [6, 30, 30], static=0)
    videos = load_split(annotations, faces, "train")
    assert [video.static for video in videos] == [True, False, False]
    rows = []
    for batch in EvalDataset(videos[:1], sequence_length=5, batch_size=4):
        for row in np.flatnonzero(batch.video >= 0):
            _, coded_frame = _decode(batch.x[row])
            assert (coded_frame == batch.frames[row, -1]).all(), "one image repeated T times"
            assert (batch.frames[row, :-1] == -1).all()
            rows.append(int(batch.frames[row, -1]))
    assert sorted(rows) == list(range(6))
    dataset = SequenceDataset(videos[:1], sequence_length=5, batch_size=2, seed=0)
    for _, y in _epoch(dataset):
        assert np.isnan(y[:, :-1]).all() and np.isfinite(y[:, -1]).all()


def test_missing_crops_name_the_video(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [20, 20])
    (faces / "v1.npy").unlink()
    with pytest.raises(Affect4kError, match="video v1"):
        load_split(annotations, faces, "train")


def test_faces_table_must_match_the_crops(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [20, 20])
    pd.DataFrame({"frame": np.arange(19), "face": True}).to_parquet(faces / "v0.parquet")
    with pytest.raises(Affect4kError, match="v0.parquet"):
        load_split(annotations, faces, "train")


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    annotations, faces = write_coded_database(tmp_path, [20, 20])
    with pytest.raises(Affect4kError, match="no frame in split 'validation'"):
        load_split(annotations, faces, "validation")
