"""Benchmark the face stage against plain decoding of the same 4K clip; prints JSON.

Each measurement runs in a fresh process (so peak RSS is the stage's own and nothing is warm):

- ``ffmpeg_decode_fps``: ffmpeg alone, decoding and converting to raw RGB into a null sink;
- ``decode_fps``: :func:`affect4k.core.media.iter_frames` with nothing done per frame (the face
  stage's own floor: decoding plus the 24 MB per frame pipe into Python);
- ``faces_fps``: :func:`affect4k.faces.extract.extract_faces` end to end (detection, face tracks,
  dlib embeddings every ``--embed-every`` frames of a track, identities, crops), model loading
  excluded, with its peak RSS; with ``--min-face`` also once per value (``faces.min_face``:
  a wider detection copy so that smaller faces are found), as ``min_face`` rows.

Without ``--clip`` a synthetic 4K clip (scikit-image's astronaut, face ~550 px wide, moving
over a grainy textured background, H.264 in AVI like the pipeline's clips) is generated for
each ``--seconds`` value, so memory can be compared across clip lengths.

    PYTHONPATH=src python bench/faces.py --detector insightface --seconds 10 20

``--baseline OTHER/src`` also times another checkout's face stage, interleaved with this one's
(``baseline_faces_fps``, ``baseline_over_decode``): a change against what it replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import skimage.data

from affect4k.core.media import iter_frames, probe_video, run_ffmpeg, write_frames

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCRFD = REPO.parent / "shared" / "models" / "scrfd_500m_bnkps.onnx"


def synthetic_clip(path: Path, seconds: float, width: int = 3840, height: int = 2160) -> Path:
    """A 25 fps 4K H.264 AVI of the astronaut drifting across a grainy textured background."""
    n_frames = round(seconds * 25)
    person = skimage.data.astronaut()[:400]  # head and shoulders
    person = cv2.resize(person, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8, (width + n_frames * 4) // 8 + 1, 3), np.uint8)
    texture = cv2.resize(texture, (texture.shape[1] * 8, texture.shape[0] * 8))
    grain = [rng.normal(0, 3, (height, width, 3)).astype(np.int16) for _ in range(5)]
    encoder = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=25
    ).output(str(path), vcodec="libx264", preset="veryfast", crf=18, pix_fmt="yuv420p")
    span = width - person.shape[1] - 600

    def frames():
        for i in range(n_frames):
            frame = texture[:, i * 4 : i * 4 + width].copy()
            x = 300 + span - abs(6 * i % (2 * span) - span)  # back and forth, 6 px per frame
            y = height - person.shape[0] - int(40 + 40 * np.sin(i / 10))
            frame[y : y + person.shape[0], x : x + person.shape[1]] = person
            yield np.clip(frame + grain[i % len(grain)], 0, 255).astype(np.uint8).data

    write_frames(encoder, frames(), f"the synthetic clip {path}")
    return path


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ``ru_maxrss`` across exec, so a spawned child would
    report its parent's peak; ``VmHWM`` belongs to the process's own address space."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ffmpeg_decode(clip: str) -> dict:
    stream = ffmpeg.input(clip).output("-", format="null", vcodec="rawvideo", pix_fmt="rgb24")
    start = time.perf_counter()
    run_ffmpeg(stream, clip)
    return {"seconds": time.perf_counter() - start}


def python_decode(clip: str) -> dict:
    start = time.perf_counter()
    frames = sum(1 for _ in iter_frames(clip))
    return {"seconds": time.perf_counter() - start, "frames": frames, "rss_mb": _peak_rss_mb()}


def face_stage(
    clip: str,
    detector: str,
    model: str | None,
    detect_width: int,
    embed_every: int,
    min_face: int | None = None,
) -> dict:
    from affect4k.config.schema import from_schema
    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import FaceEmbedder, IdentitySettings

    # SCRFD scores real faces ~0.8-0.9 (insightface's own threshold is 0.5); MTCNN's ~0.99.
    found = make_detector(detector, model)
    embedder = FaceEmbedder()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = extract_faces(
            Path(clip),
            Path(out, "faces.parquet"),
            Path(out, "faces.npy"),
            detector=found,
            embedder=embedder,
            identity=from_schema(IdentitySettings, "faces", embed_every=embed_every),
            video_id="bench",
            detect_width=detect_width,
            min_face=min_face,
            progress=False,
        )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "face_frames": summary.face_frames, "rss_mb": _peak_rss_mb()}


def in_fresh_process(function: Callable[..., dict], *args: object) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def baseline_face_stage(src: Path, *args: object) -> dict:
    """:func:`face_stage` of another checkout's package (``src``: its ``src`` folder), in a
    fresh interpreter, so a change is timed against what it replaced in the same run."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    argv = [sys.executable, __file__, "--face-stage", *(str(a) for a in args)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def measure(clip: Path, args: argparse.Namespace) -> dict:
    ffmpeg_s, decode_s, faces_s, faces_rss, baseline_s = [], [], [], [], []
    min_face_s: dict[int, list[float]] = {value: [] for value in args.min_face}
    min_face_found: dict[int, int] = {}
    for _ in range(args.repeat):  # interleaved, so drifts in machine load hit all alike
        ffmpeg_s.append(in_fresh_process(ffmpeg_decode, str(clip))["seconds"])
        decoded = in_fresh_process(python_decode, str(clip))
        decode_s.append(decoded["seconds"])
        common = (str(clip), args.detector, args.model, args.width, args.embed_every)
        faces = in_fresh_process(face_stage, *common)
        faces_s.append(faces["seconds"])
        faces_rss.append(faces["rss_mb"])
        if args.baseline:
            baseline_s.append(baseline_face_stage(args.baseline, *common)["seconds"])
        for value in args.min_face:
            smaller = in_fresh_process(face_stage, *common, value)
            min_face_s[value].append(smaller["seconds"])
            min_face_found[value] = smaller["face_frames"]
    frames = decoded["frames"]
    info = probe_video(clip)
    decode_fps = frames / statistics.median(decode_s)
    faces_fps = frames / statistics.median(faces_s)
    return {
        "clip": str(clip),
        "size": f"{info.width}x{info.height}",
        "frames": frames,
        "face_frames": faces["face_frames"],
        "ffmpeg_decode_fps": round(frames / statistics.median(ffmpeg_s), 1),
        "decode_fps": round(decode_fps, 1),
        "faces_fps": round(faces_fps, 1),
        "faces_over_decode": round(faces_fps / decode_fps, 2),
        "faces_over_ffmpeg_decode": round(faces_fps * statistics.median(ffmpeg_s) / frames, 2),
        **(
            {
                "baseline_faces_fps": round(frames / statistics.median(baseline_s), 1),
                "baseline_over_decode": round(
                    frames / statistics.median(baseline_s) / decode_fps, 2
                ),
            }
            if baseline_s
            else {}
        ),
        "decode_peak_rss_mb": round(decoded["rss_mb"]),
        "faces_peak_rss_mb": round(max(faces_rss)),
        "min_face": [
            {
                "min_face": value,
                "face_frames": min_face_found[value],
                "faces_fps": round(frames / statistics.median(seconds), 1),
                "over_detect_width_alone": round(
                    statistics.median(faces_s) / statistics.median(seconds), 2
                ),
            }
            for value, seconds in min_face_s.items()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", choices=["mtcnn", "insightface"], default="insightface")
    parser.add_argument("--model", help=f"insightface model (default {DEFAULT_SCRFD})")
    parser.add_argument("--clip", type=Path, help="clip to use instead of synthetic ones")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--width", type=int, default=640, help="detect_width")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    parser.add_argument("--embed-every", type=int, default=10, help="faces.embed_every")
    parser.add_argument(
        "--min-face", type=int, nargs="*", default=[], help="faces.min_face values to compare"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout's src/: its face stage is timed too, interleaved (before/after)",
    )
    parser.add_argument("--face-stage", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.face_stage:  # one face stage run for --baseline, as JSON on the last line
        clip, detector, model, width, embed_every = args.face_stage
        model = None if model == "None" else model
        print(json.dumps(face_stage(clip, detector, model, int(width), int(embed_every))))
        return
    if args.detector == "insightface" and args.model is None:
        args.model = str(DEFAULT_SCRFD)
    with tempfile.TemporaryDirectory() as scratch:
        clips = (
            [args.clip]
            if args.clip
            else [synthetic_clip(Path(scratch, f"synthetic_{s:g}s.avi"), s) for s in args.seconds]
        )
        results = [measure(clip, args) for clip in clips]
    header = {"detector": args.detector, "model": args.model, "embed_every": args.embed_every}
    print(json.dumps({**header, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
