"""The study's database at scale: per-stage throughput, memory and disk on synthetic 4K, and
the training loader over a crop database of the study's size; prints JSON.

Videos (part 1). ``--videos`` synthetic 4K sources in the study's shape: each is two or three
shots of different people (the demo's faces, ``affect4k.demo``) joined at hard cuts, with film
grain (``--grain``, as bench/clips.py adds it: real 4K costs several times more to decode than
the demo's smooth pictures), 30 fps H.264 + AAC. Each is fetched through the real download path
(yt-dlp on the local file, as the demo does, with its whole-file check), cut to a 25 fps clip
with the schema's ``clips`` defaults (trimmed by ``--trim`` s at each end, as the study cut a
part of each video) and put through the face stage with the schema's ``faces`` defaults. Every
stage runs in a fresh process (its peak RSS is its own), and the source is decoded plainly by
ffmpeg (into a null sink) in the same run, so each stage's speed is also given as a multiple of
that decoding: ``x_decoding`` = (video seconds per second of the stage) / (video seconds per
second of decoding), a median over the videos. ``mb_per_minute`` is each stage's output per
minute of video.

Loader (part 2). A crop database of ``--crops`` (default the study's 403,040) 112x112 crops
over ``--crop-videos`` (116) memory-mapped ``.npy`` files is written directly (no video), with
the study's 2:1 train/test split, and one training epoch of
:class:`affect4k.model.sequences.SequenceDataset` (T = 80, B = 4) is gathered in a fresh process by
each ``--loader-threads`` count of threads, as Keras' workers gather batches for ``fit``:
first with a cold page cache (the crops written back and evicted, ``posix_fadvise``, so every
read comes from the disk), then again warm (from whatever of them the cold epoch left cached;
``resident_before`` is the share of the training crops' bytes in the page cache at the start,
read with util-linux ``fincore``). An epoch stops after ``--loader-seconds``. Reported:
images/s (median of chunks of batches) and the process's RSS sampled over the epoch
(``rss_mb``: first, largest, last).

The defaults (3 grainy videos of 6 s, epochs capped at 30 s) keep the whole run under 15
minutes on two cores (docs/performance.md).

    PYTHONPATH=src python bench/study_scale.py     # both parts (timings: docs/performance.md)
    PYTHONPATH=src python bench/study_scale.py --skip-videos --loader-threads 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import ffmpeg
import numpy as np
import pandas as pd
import yaml

from affect4k.config.schema import SCHEMA_PATH
from affect4k.core.media import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]
STUDY_CROPS = 403_040
STUDY_VIDEOS = 116


def schema_defaults(section: str) -> dict:
    """The defaults a config that leaves out ``section`` gets."""
    properties = yaml.safe_load(SCHEMA_PATH.read_text())["properties"][section]["properties"]
    return {key: spec.get("default") for key, spec in properties.items()}


def _status_mb(key: str) -> float:
    """A ``/proc/self/status`` figure in MB (``VmHWM``: this process's own peak RSS, which,
    unlike ``ru_maxrss``, a spawned child does not inherit from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_fresh_process(function: Callable[..., dict], *args: object) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# Part 1: videos -------------------------------------------------------------------------------


def make_source(
    scratch: Path, index: int, seconds: float, width: int, height: int, fps: float, grain: float
) -> Path:
    """Video ``index``: 2 or 3 shots of different demo faces, joined by stream copy, then with
    Gaussian grain of ``grain`` levels (0: none) as bench/clips.py adds it."""
    from affect4k.config.schema import schema_default
    from affect4k.core.media import run_ffmpeg
    from affect4k.demo.affect_faces import DEMO_FACES
    from affect4k.demo.scenes import make_demo_video

    shots = 2 + index % 2
    parts = []
    for shot in range(shots):
        part = scratch / f"v{index}_shot{shot}.mp4"
        make_demo_video(
            f"v{index}_shot{shot}",
            part,
            scratch / "traces" / f"v{index}_shot{shot}",
            fps=fps,
            face=DEMO_FACES[(index + shot) % len(DEMO_FACES)],
            width=width,
            height=height,
            seconds=seconds / shots,
            seed=index,
            annotators=schema_default("annotators"),
        )
        parts.append(part)
    listing = scratch / f"v{index}.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for part in parts))
    source = scratch / f"v{index}.mp4"
    # The pictures are joined by stream copy; the sound is made afresh for the whole video
    # (AAC joined by copy overlaps at each cut by its priming samples, which no download has).
    joined = ffmpeg.input(str(listing), format="concat", safe=0).video
    tone = ffmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi")
    run_ffmpeg(
        ffmpeg.output(joined, tone, str(source), vcodec="copy", acodec="aac"),
        f"joining the shots of {source}",
    )
    for part in parts:
        part.unlink()
    return add_grain(source, grain, fps) if grain else source


def add_grain(source: Path, grain: float, fps: float) -> Path:
    """``source`` with four frames of Gaussian grain cycled over its pictures, re-encoded as
    H.264 (veryfast, CRF 18) with its sound copied: a source that costs as much to decode as
    bench/clips.py's grainy one (the demo's smooth pictures decode several times faster than
    real 4K video does)."""
    from affect4k.core.media import iter_frames, probe_video, write_frames
    from affect4k.demo.scenes import with_grain

    info = probe_video(source)

    grainy = source.with_name(f"{source.stem}_grain.mp4")
    video = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.width}x{info.height}", r=fps
    )
    sound = ffmpeg.input(str(source)).audio
    write_frames(
        ffmpeg.output(
            video,
            sound,
            str(grainy),
            vcodec="libx264",
            preset="veryfast",
            crf=18,
            pix_fmt="yuv420p",
            acodec="copy",
        ),
        (frame.data for frame in with_grain(iter_frames(source), grain)),
        f"the grainy source {grainy}",
    )
    source.unlink()
    return grainy


def stage_download(url: str, out: str) -> dict:
    from affect4k.config.schema import schema_default
    from affect4k.video.download import download_video

    start = time.perf_counter()
    download_video("bench", url, Path(out), max_height=schema_default("download.max_height"))
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _status_mb("VmHWM")}


def stage_clip(source: str, out: str, start_s: float, end_s: float, settings: dict) -> dict:
    from affect4k.video.clip import ClipEncoding, make_clip

    start = time.perf_counter()
    frames = make_clip(
        Path(source),
        Path(out),
        video_id="bench",
        start=start_s,
        end=end_s,
        encoding=ClipEncoding(**settings),
    )
    return {
        "seconds": time.perf_counter() - start,
        "frames": frames,
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def stage_faces(clip: str, table: str, crops: str, settings: dict) -> dict:
    from affect4k.config.schema import from_schema
    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import IdentitySettings

    detector = make_detector(
        settings["detector"], settings["model"], min_score=settings["min_score"]
    )
    start = time.perf_counter()
    summary = extract_faces(
        Path(clip),
        Path(table),
        Path(crops),
        detector=detector,
        video_id="bench",
        detect_width=settings["detect_width"],
        identity=from_schema(IdentitySettings, "faces"),
        progress=False,
    )
    return {
        "seconds": time.perf_counter() - start,
        "face_frames": summary.face_frames,
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def decode_seconds(path: Path) -> float:
    """ffmpeg alone decoding ``path``'s video into a null sink."""
    from affect4k.core.media import run_ffmpeg

    start = time.perf_counter()
    stream = ffmpeg.input(str(path)).video.output("-", format="null")
    run_ffmpeg(stream, f"decoding {path}")
    return time.perf_counter() - start


def videos_part(args: argparse.Namespace, scratch: Path) -> dict:
    clips = schema_defaults("clips")
    faces = schema_defaults("faces")
    per_video = []
    generate_s = []
    for index in range(args.videos):
        start = time.perf_counter()
        source = make_source(
            scratch, index, args.seconds, args.width, args.height, args.fps, args.grain
        )
        generate_s.append(time.perf_counter() - start)
        download = scratch / f"v{index}.mkv"
        clip = scratch / f"v{index}.avi"
        table, crops = scratch / f"v{index}.parquet", scratch / f"v{index}.npy"
        stages = {"download": in_fresh_process(stage_download, str(source), str(download))}
        decode = decode_seconds(download)
        end = args.seconds - args.trim
        stages["clip"] = in_fresh_process(
            stage_clip, str(download), str(clip), args.trim, end, clips
        )
        stages["faces"] = in_fresh_process(stage_faces, str(clip), str(table), str(crops), faces)
        clip_seconds = end - args.trim
        sizes = {
            "download": download.stat().st_size,
            "clip": clip.stat().st_size,
            "faces": table.stat().st_size + crops.stat().st_size,
        }
        row = {"decode_s": decode, "clip_frames": stages["clip"]["frames"]}
        for name, figures in stages.items():
            # download and decoding cover the whole source; the later stages the trimmed clip
            seconds_of_video = args.seconds if name == "download" else clip_seconds
            row[name] = {
                "seconds": figures["seconds"],
                # frames of the 25 fps grid per second, whatever the source's rate
                "fps": seconds_of_video * 25 / figures["seconds"],
                "x_decoding": (seconds_of_video / figures["seconds"]) / (args.seconds / decode),
                "peak_rss_mb": figures["peak_rss_mb"],
                "mb_per_minute": sizes[name] / 1e6 * 60 / seconds_of_video,
            }
        per_video.append(row)
        for path in (source, download, clip, table, crops):
            path.unlink()

    def median(stage: str, key: str, digits: int = 2) -> float:
        return round(statistics.median(video[stage][key] for video in per_video), digits)

    return {
        "videos": args.videos,
        "seconds_each": args.seconds,
        "size": f"{args.width}x{args.height}",
        "source_fps": args.fps,
        "grain": args.grain,
        "generate_s_median": round(statistics.median(generate_s), 1),
        "decode_fps_median": round(
            statistics.median(args.seconds * args.fps / v["decode_s"] for v in per_video), 1
        ),
        "clip_settings": clips,
        "face_settings": {k: faces[k] for k in ("detector", "detect_width", "min_score")},
        "stages": {
            stage: {
                "fps": median(stage, "fps", 1),
                "x_decoding": median(stage, "x_decoding"),
                "peak_rss_mb": round(max(v[stage]["peak_rss_mb"] for v in per_video)),
                "mb_per_minute": median(stage, "mb_per_minute", 0),
            }
            for stage in ("download", "clip", "faces")
        },
        "per_video_x_decoding": [
            {stage: round(v[stage]["x_decoding"], 2) for stage in ("download", "clip", "faces")}
            for v in per_video
        ],
    }


# Part 2: the training loader ------------------------------------------------------------------


def crop_database(root: Path, crops: int, videos: int, size: int) -> tuple[Path, Path]:
    """``crops`` random-looking crops over ``videos`` npy files, their face tables and an
    annotation table with every third video in the test split; written directly, as bytes
    (a generator holding a memmap of them would itself grow to their size)."""
    faces_dir = root / "faces"
    faces_dir.mkdir(parents=True)
    counts = np.full(videos, crops // videos)
    counts[: crops % videos] += 1
    frame_bytes = size * size * 3
    block = np.random.default_rng(0).integers(0, 256, 64 * frame_bytes, np.uint8).tobytes()
    rows = []
    for index, count in enumerate(counts):
        name = f"v{index:03d}"
        with open(faces_dir / f"{name}.npy", "wb") as out:
            header = {"descr": "|u1", "fortran_order": False, "shape": (int(count), size, size, 3)}
            np.lib.format.write_array_header_1_0(out, header)
            left = int(count) * frame_bytes
            while left:
                shift = (index * 7919 % 64) * frame_bytes  # videos differ in content
                piece = (block[shift:] + block[:shift])[:left]
                out.write(piece)
                left -= len(piece)
        frames = np.arange(count)
        pd.DataFrame({"frame": frames, "face": frames % 50 != 0}).to_parquet(
            faces_dir / f"{name}.parquet"
        )
        rng = np.random.default_rng(index)
        rows.append(
            pd.DataFrame(
                {
                    "video": name,
                    "frame": frames,
                    "valence": rng.uniform(-1, 1, count).astype(np.float32),
                    "arousal": rng.uniform(-1, 1, count).astype(np.float32),
                    "split": "test" if index % 3 == 2 else "train",
                }
            )
        )
    annotations = root / "annotations.parquet"
    pd.concat(rows, ignore_index=True).to_parquet(annotations)
    return annotations, faces_dir


def crop_files(faces_dir: Path, split: str | None = None) -> list[Path]:
    """The database's ``.npy`` files (only ``split``'s, every third video being a test one)."""
    paths = sorted(faces_dir.glob("*.npy"))
    if split is None:
        return paths
    return [path for index, path in enumerate(paths) if (index % 3 == 2) == (split == "test")]


def evict(paths: list[Path]) -> None:
    """Drop ``paths``' pages from the page cache (written back first), so the next reads come
    from the disk: a cold cache, as after a reboot or when the crops do not fit in RAM. The
    host of a virtual machine may still cache the disk itself."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_fraction(paths: list[Path]) -> float | None:
    """The share of ``paths``' bytes in the page cache (util-linux ``fincore``; None without)."""
    try:
        listing = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE"]
            + [str(path) for path in paths],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    rows = [[int(value) for value in line.split()] for line in listing.splitlines() if line]
    return round(sum(r[0] for r in rows) / max(1, sum(r[1] for r in rows)), 3)


def loader_epoch(
    annotations: str, faces_dir: str, chunk: int, max_seconds: float, threads: int
) -> dict:
    """One training epoch's batches gathered by ``threads`` threads, in order, as Keras'
    workers gather them for ``fit``; RSS sampled every ``chunk`` batches."""
    from affect4k.model.sequences import SequenceDataset, load_split

    videos = load_split(Path(annotations), Path(faces_dir), "train")
    dataset = SequenceDataset(videos, sequence_length=80, batch_size=4, seed=0)
    rss = [_status_mb("VmRSS")]
    rates = []
    images = 0
    start = last = time.perf_counter()
    batches = 0
    pool = ThreadPoolExecutor(threads)
    ahead = deque(
        pool.submit(dataset.__getitem__, i) for i in range(min(2 * threads, len(dataset)))
    )
    for index in range(len(dataset)):
        x, _ = ahead.popleft().result()
        if index + len(ahead) + 1 < len(dataset):
            ahead.append(pool.submit(dataset.__getitem__, index + len(ahead) + 1))
        images += x.shape[0] * x.shape[1]
        batches += 1
        if batches % chunk == 0:
            now = time.perf_counter()
            rates.append(chunk * x.shape[0] * x.shape[1] / (now - last))
            rss.append(_status_mb("VmRSS"))
            last = now
            if now - start > max_seconds:
                break
    seconds = time.perf_counter() - start
    pool.shutdown(cancel_futures=True)
    return {
        "threads": threads,
        "train_videos": len(videos),
        "batches": batches,
        "of_batches": len(dataset),
        "images": images,
        "images_per_s": round(statistics.median(rates) if rates else images / seconds),
        "images_per_s_overall": round(images / seconds),
        "rss_mb": {
            "first": round(rss[0]),
            "max": round(max(rss)),
            "last": round(rss[-1]),
            "anon_last": round(_status_mb("RssAnon")),
            "file_last": round(_status_mb("RssFile")),
        },
    }


def loader_part(args: argparse.Namespace, scratch: Path) -> dict:
    available = _meminfo_kb("MemAvailable")
    start = time.perf_counter()
    annotations, faces_dir = crop_database(
        scratch / "database", args.crops, args.crop_videos, args.crop_size
    )
    write_s = time.perf_counter() - start
    disk = sum(path.stat().st_size for path in faces_dir.iterdir())
    train_files = crop_files(faces_dir, "train")
    epochs = []
    for threads in args.loader_threads:
        # Cold: the training crops evicted from the page cache, every read from the disk. Warm:
        # right after, the same epoch again, from whatever of them the cold one left cached.
        for cache in ("cold", "warm"):
            if cache == "cold":
                evict(crop_files(faces_dir))
            resident = resident_fraction(train_files)
            figures = in_fresh_process(
                loader_epoch,
                str(annotations),
                str(faces_dir),
                args.chunk,
                args.loader_seconds,
                threads,
            )
            epochs.append({"page_cache": cache, "resident_before": resident, **figures})
    return {
        "crops": args.crops,
        "videos": args.crop_videos,
        "crop_size": args.crop_size,
        "database_gb": round(disk / 1e9, 2),
        "write_s": round(write_s, 1),
        "mem_total_gb": round(_meminfo_kb("MemTotal") / 1e6, 1),
        "mem_available_gb_before": round(available / 1e6, 1),
        "epochs": epochs,
        "target_images_per_s": 19_000,
        "target_rss_mb": 4_000,
    }


def _meminfo_kb(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each video")
    parser.add_argument("--trim", type=float, default=0.5, help="seconds cut at each end")
    parser.add_argument("--fps", type=float, default=30.0, help="the sources' frame rate")
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument(
        "--grain", type=float, default=3.0, help="grain's standard deviation (0: smooth)"
    )
    parser.add_argument("--crops", type=int, default=STUDY_CROPS)
    parser.add_argument("--crop-videos", type=int, default=STUDY_VIDEOS)
    parser.add_argument("--crop-size", type=int, default=112)
    parser.add_argument("--chunk", type=int, default=100, help="batches per loader figure")
    parser.add_argument(
        "--loader-threads", type=int, nargs="+", default=[1, 2], help="an epoch for each"
    )
    parser.add_argument("--loader-seconds", type=float, default=30.0, help="epoch time cap")
    parser.add_argument("--skip-videos", action="store_true")
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--scratch", type=Path, help="folder for the scratch files")
    args = parser.parse_args()
    result: dict = {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        if not args.skip_videos:
            result["videos"] = videos_part(args, Path(scratch))
        if not args.skip_loader:
            result["loader"] = loader_part(args, Path(scratch))
    result["load_average_end"] = os.getloadavg()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["ffmpeg"] = subprocess.run(
        [ffmpeg_exe(), "-version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
