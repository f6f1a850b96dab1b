"""The recurrent part alone: Keras' GRU against ``UnrolledGRU`` at several ``gru_unroll``.

Builds the models' recurrent head (two GRUs of ``--units`` and the output layer) for each
``--unroll`` value (1 = ``keras.layers.GRU``) and times one jitted forward + backward pass on
random features of the conv stack's shape, the variants interleaved in one process so that
load on a shared machine hits them alike. JAX only. One JSON line: median ms per value.

    PYTHONPATH=src python bench/gru.py --unroll 1 8 20 80
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from train import grad_step  # noqa: E402  (bench/train.py, next to this file)


def _head(unroll: int, units: int, features: int):
    import keras

    from affect4k.model.architectures import UnrolledGRU

    x = inputs = keras.Input((None, features))
    for name in ("gru1", "gru2"):
        if unroll == 1:
            layer = keras.layers.GRU(units, return_sequences=True, name=name)
        else:
            layer = UnrolledGRU(units, steps_per_iteration=unroll, return_sequences=True, name=name)
        x = layer(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="va")(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unroll", type=int, nargs="+", default=[1, 8, 20, 80])
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--features", type=int, default=4096, help="FC layer width (study: 4096)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--sequence-length", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import jax
    import numpy as np

    shape = (args.batch_size, args.sequence_length, args.features)
    features = jax.device_put(np.random.default_rng(0).normal(size=shape).astype("float32"))
    steps = {unroll: grad_step(_head(unroll, args.units, args.features)) for unroll in args.unroll}
    for step in steps.values():
        jax.block_until_ready(step(features))  # compile
    times: dict[int, list[float]] = {unroll: [] for unroll in steps}
    for _ in range(args.repeats):
        for unroll, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(features))
            times[unroll].append(time.perf_counter() - start)
    medians = {unroll: round(1000 * statistics.median(t), 2) for unroll, t in times.items()}
    result = {"device": jax.devices()[0].device_kind, "shape": list(shape), "units": args.units}
    print(json.dumps({**result, "ms_by_unroll": medians}))


if __name__ == "__main__":
    main()
