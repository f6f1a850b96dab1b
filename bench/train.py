"""Training throughput (images/s) of each model through the real loader, training step and
per-epoch scoring.

Writes a synthetic database to a temp directory (``write_toy_corpus``: one memory-mappable
npy per video, a third of the videos in the test split as in the study, a sixth in the
validation split), then builds exactly
what ``affect4k.model.train.train`` uses: ``setup_device`` (backend, device, precision, compile
cache), ``training_dataset`` (SequenceDataset over the memmaps), ``compile_model`` and
``score_splits``. Per model, one JSON line on stdout:

- ``fit_images_per_s``: ``model.fit`` over chunks of ``--steps`` batches; the first chunk
  (compilation) is discarded, the median of the others reported;
- ``epoch_images_per_s``: the same, with an epoch's share of scoring added as ``train``
  schedules it (validation split every ``--eval-every``, train split every ``--eval-train-every``
  epochs), and ``eval_share``, that share of an epoch's time;
- ``loader_images_per_s``: one thread gathering batches, no model (the loader's ceiling);
- ``startup_s``: building the model, compiling and training the first chunk (run twice with
  the same ``--compile-cache`` to see what the cache saves a second job);
- with ``--profile DIR`` (JAX): a profiler trace of a few training steps in DIR (TensorBoard's
  profile plugin or Perfetto read it) and one training step split into host-to-device
  transfer, conv stack (forward + backward) and GRU (forward + backward).

Defaults are the study's settings: 112 px crops resized to 96 in the model, sequences of 80,
batches of 4, full width.

    PYTHONPATH=src python bench/train.py --backend jax --models vgg16_gru
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
    # Unset: TrainConfig's defaults, as a run that leaves them out of the config.
    for option in ("gru-unroll", "eval-every", "eval-train-every", "eval-batch-size"):
        parser.add_argument(f"--{option}", type=int, help=f"training {option.replace('-', '_')}")
    parser.add_argument("--videos", type=int, default=15)
    parser.add_argument("--frames", type=int, default=400, help="frames per synthetic video")
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "gpu", "cpu"])
    parser.add_argument("--compile-cache", type=Path, help="JAX compilation cache folder")
    parser.add_argument("--profile", type=Path, help="write a profiler trace here (JAX)")
    return parser.parse_args()


def _device_name(gpu: bool) -> str:
    """The accelerator's model name, or the CPU's with its core count."""
    import keras

    if gpu and keras.backend.backend() == "jax":
        import jax

        return jax.devices()[0].device_kind
    if gpu:
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        return details.get("device_name", "GPU")
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


def median_seconds(run: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``run()`` after one untimed call (compilation)."""
    import jax

    jax.block_until_ready(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grad_step(part) -> Callable:
    """A jitted forward + backward pass of the Keras model ``part`` (sum of its outputs)."""
    import jax
    import jax.numpy as jnp

    def loss(trainable, non_trainable, x):
        y, _ = part.stateless_call(trainable, non_trainable, x, training=True)
        return jnp.sum(y.astype(jnp.float32))

    gradient = jax.jit(jax.grad(loss))
    trainable = [v.value for v in part.trainable_variables]
    non_trainable = [v.value for v in part.non_trainable_variables]
    return lambda x: gradient(trainable, non_trainable, x)


def _profile(model, dataset, fit: Callable[[], None], trace_dir: Path) -> dict:
    """A trace of a chunk of training steps, and one step split into transfer, conv stack and GRU.

    The parts are timed as separate jitted forward + backward passes of the model cut at
    ``unfold_frames`` (the conv stack up to its FC layer; then the GRUs and the output layer),
    so their sum approximates a step but leaves out the optimizer update.
    """
    import jax
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit("--profile needs the JAX backend (--backend jax)")
    x, _ = dataset[0]
    unfold = model.get_layer("unfold_frames")
    conv = keras.Model(model.inputs, unfold.output)
    features = keras.Input((None, unfold.output.shape[-1]))
    y = features
    for layer in model.layers[model.layers.index(unfold) + 1 :]:
        y = layer(y)
    head = keras.Model(features, y)
    on_device = jax.device_put(x)
    conv_features = conv(on_device)
    conv_step, head_step, whole_step = grad_step(conv), grad_step(head), grad_step(model)
    parts = {
        "transfer_ms": median_seconds(lambda: jax.device_put(x)),
        "conv_ms": median_seconds(lambda: conv_step(on_device)),
        "gru_ms": median_seconds(lambda: head_step(conv_features)),
        "whole_forward_backward_ms": median_seconds(lambda: whole_step(on_device)),
    }
    parts = {name: round(1000 * seconds, 2) for name, seconds in parts.items()}
    split = parts["transfer_ms"] + parts["conv_ms"] + parts["gru_ms"]
    trace_dir.mkdir(parents=True, exist_ok=True)
    with jax.profiler.trace(str(trace_dir)):
        fit()
    return {
        **parts,
        "gru_share": round(parts["gru_ms"] / split, 3),
        "conv_share": round(parts["conv_ms"] / split, 3),
        "transfer_share": round(parts["transfer_ms"] / split, 3),
        "trace_dir": str(trace_dir),
    }


def _bench_model(name: str, args: argparse.Namespace, videos: dict, gpu: bool) -> dict:
    import keras

    from affect4k.core.columns import SCORED_SPLITS
    from affect4k.model.train import (
        TrainConfig,
        compile_model,
        score_splits,
        training_dataset,
    )

    config = TrainConfig(
        model=name,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        input_size=args.input_size,
        width=args.width,
        steps_per_epoch=args.steps,
        **{
            name: getattr(args, name)
            for name in ("gru_unroll", "eval_every", "eval_train_every", "eval_batch_size")
            if getattr(args, name) is not None
        },
    )
    keras.utils.set_random_seed(0)
    built = time.perf_counter()
    model = compile_model(config, crop_size=args.crop_size)
    dataset = training_dataset(config, videos["train"], gpu=gpu)
    seconds: list[float] = []
    ends: list[float] = []

    class ChunkTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            float(logs["loss"])  # waits for the device to finish the chunk
            ends.append(time.perf_counter())
            seconds.append(ends[-1] - self.start)

    model.fit(dataset, epochs=1 + args.chunks, shuffle=False, verbose=0, callbacks=[ChunkTimer()])
    # Model built, compiled and its first chunk trained: what --compile-cache shortens.
    startup = ends[0] - built
    images = args.steps * args.batch_size * args.sequence_length
    rates = [images / s for s in seconds[1:]]
    fit_rate = statistics.median(rates)

    # Scoring as train() schedules it, per epoch on average (the last epoch's extra scores
    # left out); each split timed after one untimed pass (compilation).
    split_seconds = {}
    for split in SCORED_SPLITS:
        score_splits(model, videos, config, [split])
        start = time.perf_counter()
        score_splits(model, videos, config, [split])
        split_seconds[split] = time.perf_counter() - start
    scoring = (
        split_seconds["validation"] / config.eval_every
        + split_seconds["train"] / config.eval_train_every
    )
    # One epoch covers the train split's windows once (steps_per_epoch unset).
    whole_epoch = training_dataset(
        dataclasses.replace(config, steps_per_epoch=None), videos["train"], gpu=gpu
    )
    epoch_images = len(whole_epoch) * args.batch_size * args.sequence_length
    epoch_fit = epoch_images / fit_rate
    result = {
        "model": name,
        "backend": keras.backend.backend(),
        "device": _device_name(gpu),
        "precision": keras.mixed_precision.global_policy().name,
        "fit_images_per_s": round(fit_rate, 1),
        "chunk_images_per_s": [round(rate, 1) for rate in rates],
        "epoch_images_per_s": round(epoch_images / (epoch_fit + scoring), 1),
        "eval_share": round(scoring / (epoch_fit + scoring), 3),
        "score_train_split_s": round(split_seconds["train"], 2),
        "score_validation_split_s": round(split_seconds["validation"], 2),
        "epoch_fit_s": round(epoch_fit, 2),
        "warmup_s": round(seconds[0], 1),
        "startup_s": round(startup, 1),
        "loader_images_per_s": round(_loader_rate(dataset), 1),
        "width": args.width,
        "batch_size": args.batch_size,
        "sequence_length": args.sequence_length,
        "input_size": args.input_size,
        "crop_size": args.crop_size,
        "gru_unroll": config.gru_unroll,
        "eval_every": config.eval_every,
        "eval_train_every": config.eval_train_every,
        "eval_batch_size": config.eval_batch_size,
        "steps_per_chunk": args.steps,
        "params": model.count_params(),
    }
    if args.profile:

        def fit() -> None:
            model.fit(dataset, epochs=1, shuffle=False, verbose=0)

        result["profile"] = _profile(model, dataset, fit, args.profile / name)
    return result


def main() -> None:
    args = _parse()
    from affect4k.model.device import setup_device

    device = setup_device(args.backend, args.device, args.compile_cache)
    # Only now: these import keras, whose backend setup_device chose.
    from affect4k.core.columns import SCORED_SPLITS
    from affect4k.demo.corpora import write_toy_corpus
    from affect4k.model.sequences import load_split

    print(f"# {device.describe()}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="affect4k-bench-") as tmp:
        annotations = write_toy_corpus(
            Path(tmp),
            videos=args.videos,
            frames=args.frames,
            test_videos=max(1, args.videos // 3),
            validation_videos=max(1, args.videos // 6),
            crop_size=args.crop_size,
        )
        videos = {
            split: load_split(annotations, Path(tmp) / "faces", split) for split in SCORED_SPLITS
        }
        for name in args.models:
            print(json.dumps(_bench_model(name, args, videos, device.gpu)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
