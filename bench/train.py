"""Training throughput (images/s) of each model through the real loader and training step.

Writes a synthetic database to a temp directory (``write_toy_corpus``: one memory-mappable
npy per video, as the pipeline writes), then builds exactly what ``affect4k.training.train``
uses: the mixed-precision policy, ``training_dataset`` (SequenceDataset over the memmaps) and
``compile_model``, and times ``model.fit`` over chunks of ``--steps`` batches. The first chunk
(compilation) is discarded; the reported figure is the median of the others. The loader alone
(one thread, no model) is timed too, to show it is not the bottleneck. One JSON line per
model on stdout. Defaults are the seed's settings: 112 px crops resized to 96 in the model,
sequences of 80, batches of 4, full width.

    KERAS_BACKEND=jax PYTHONPATH=src python bench/train.py --models vgg16_gru
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg16_gru"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=50, help="batches per timed chunk")
    parser.add_argument("--chunks", type=int, default=5, help="timed chunks after warm-up")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--sequence-length", type=int, default=80)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--crop-size", type=int, default=112)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=400, help="frames per synthetic video")
    parser.add_argument("--backend", help="Keras backend (default: $KERAS_BACKEND)")
    return parser.parse_args()


def _device_name(gpu: bool) -> str:
    import keras

    backend = keras.backend.backend()
    if gpu and backend == "jax":
        import jax

        return jax.devices()[0].device_kind
    if gpu and backend == "tensorflow":
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        return details.get("device_name", "GPU")
    if gpu and backend == "torch":
        import torch

        return torch.cuda.get_device_name(0)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    return f"CPU {platform.processor()} x{os.cpu_count()}"


def _loader_rate(dataset, batches: int = 25, repeats: int = 3) -> float:
    """Images/s of one thread gathering ``batches`` batches (median of ``repeats``)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(batches):
            dataset[index % len(dataset)]
        rates.append(
            batches * dataset.batch_size * dataset.sequence_length / (time.perf_counter() - start)
        )
    return statistics.median(rates)


def _bench_model(name: str, args: argparse.Namespace, videos: list, gpu: bool) -> dict:
    import keras

    from affect4k.training import TrainConfig, compile_model, training_dataset

    config = TrainConfig(
        model=name,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        input_size=args.input_size,
        width=args.width,
        steps_per_epoch=args.steps,
    )
    keras.utils.set_random_seed(0)
    model = compile_model(config, crop_size=args.crop_size)
    dataset = training_dataset(config, videos, gpu=gpu)
    seconds: list[float] = []

    class ChunkTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            float(logs["loss"])  # waits for the device to finish the chunk
            seconds.append(time.perf_counter() - self.start)

    model.fit(dataset, epochs=1 + args.chunks, shuffle=False, verbose=0, callbacks=[ChunkTimer()])
    images = args.steps * args.batch_size * args.sequence_length
    rates = [images / s for s in seconds[1:]]
    return {
        "model": name,
        "backend": keras.backend.backend(),
        "device": _device_name(gpu),
        "precision": keras.mixed_precision.global_policy().name,
        "images_per_s": round(statistics.median(rates), 1),
        "chunk_images_per_s": [round(rate, 1) for rate in rates],
        "warmup_s": round(seconds[0], 1),
        # One thread gathering batches from the memmaps, no model: the loader's ceiling.
        "loader_images_per_s": round(_loader_rate(dataset), 1),
        "width": args.width,
        "batch_size": args.batch_size,
        "sequence_length": args.sequence_length,
        "input_size": args.input_size,
        "crop_size": args.crop_size,
        "steps_per_chunk": args.steps,
        "params": model.count_params(),
    }


def main() -> None:
    args = _parse()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    from affect4k.external import write_toy_corpus
    from affect4k.sequences import load_split
    from affect4k.training import configure_precision

    gpu = configure_precision()
    with tempfile.TemporaryDirectory(prefix="affect4k-bench-") as tmp:
        annotations = write_toy_corpus(
            Path(tmp),
            videos=args.videos,
            frames=args.frames,
            test_videos=1,
            crop_size=args.crop_size,
        )
        videos = load_split(annotations, Path(tmp) / "faces", "train")
        for name in args.models:
            print(json.dumps(_bench_model(name, args, videos, gpu)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
