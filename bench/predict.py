"""Benchmark ``affect4k predict`` on a 10 s 640x360 clip with the demo's vgg16_gru; prints JSON.

The clip is a demo video (the astronaut, 30 fps, so it must be put on the 25 fps grid first)
and the run has the demo config's vgg16_gru settings (width 1/8, 20-frame sequences); its
weights are untrained, which costs the same time as trained ones. Reported:

- ``command_s``: ``python -m affect4k predict CLIP --model RUN -o OUT.csv`` end to end in a
  fresh process (imports, model loading, everything a user waits for);
- ``stages_s``: the same stages called one by one in this process: ``load_model``, ``clip``
  (25 fps re-encode), ``faces`` (MTCNN, tracking, alignment), ``predict`` (the model over
  the crops), ``figure`` (``OUT.png``) and ``overlay`` (``--overlay`` MP4, optional).

    PYTHONPATH=src python bench/predict.py --seconds 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The demo config's vgg16_gru (config/config.yaml: training.defaults + runs.vgg16_gru).
DEMO_RUN = {"model": "vgg16_gru", "epochs": 10, "sequence_length": 20, "width": 0.125}


def make_run(run_dir: Path) -> None:
    """A run directory as training leaves it: ``model.keras`` and ``config.json``."""
    from affect4k.config.run_settings import TrainConfig
    from affect4k.model.architectures import build_model

    config = TrainConfig(**DEMO_RUN)
    model = build_model(config.model, input_size=config.input_size, width=config.width)
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config)))


def timed(stages: dict[str, float], name: str, call, *args, **kwargs):
    start = time.perf_counter()
    result = call(*args, **kwargs)
    stages[name] = round(time.perf_counter() - start, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import pandas as pd

    from affect4k.commands.predict_files import load_run, predict_crops
    from affect4k.commands.predict_overlay import write_overlay
    from affect4k.config.schema import from_schema, schema_default
    from affect4k.demo import make_demo_video
    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import IdentitySettings
    from affect4k.report.plots import prediction_figure
    from affect4k.video.clip import ClipEncoding, make_clip

    with tempfile.TemporaryDirectory(prefix="affect4k-bench-") as work:
        work = Path(work)
        source = work / "source.mp4"
        make_demo_video(
            "bench", source, work / "traces", fps=30, face="astronaut",
            width=640, height=360, seconds=args.seconds, seed=0,
            annotators=schema_default("annotators"),
        )  # fmt: skip
        make_run(work / "run")

        command = [sys.executable, "-m", "affect4k", "predict", str(source)]
        command += ["--model", str(work / "run"), "-o", str(work / "command.csv")]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        command_s = round(time.perf_counter() - start, 2)

        stages: dict[str, float] = {}
        run = timed(stages, "load_model", load_run, work / "run")
        detector = make_detector("mtcnn")
        clip = work / "clip.avi"
        timed(stages, "clip", make_clip, source, clip, video_id="bench", start=None, end=None,
              encoding=from_schema(ClipEncoding, "clips"))  # fmt: skip
        timed(stages, "faces", extract_faces, clip, work / "f.parquet", work / "f.npy",
              detector=detector, video_id="bench", progress=False,
              detect_width=schema_default("faces.detect_width"),
              identity=from_schema(IdentitySettings, "faces"))  # fmt: skip
        faces = pd.read_parquet(work / "f.parquet")
        face = faces["face"].to_numpy(bool)
        predicted = timed(
            stages, "predict", predict_crops, run, np.load(work / "f.npy"), face, static=False
        )
        table = faces[["frame", "time_s", "face"]].assign(
            valence=predicted[:, 0], arousal=predicted[:, 1]
        )
        timed(stages, "figure", prediction_figure, table, work / "out.png", "bench")
        timed(stages, "overlay", write_overlay, clip, faces, table, work / "overlay.mp4")
    print(
        json.dumps(
            {
                "clip": f"{args.seconds:g} s 640x360 30 fps",
                "frames": len(table),
                "face_frames": int(face.sum()),
                "cpu_cores": os.cpu_count(),
                "command_s": command_s,
                "stages_s": stages,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
