"""Which Keras backend, device and precision a model job runs on, decided by the config and said
aloud.

A training run that silently lands on the CPU in float32 (a missing CUDA plugin, an exported
``KERAS_BACKEND`` overriding the config) costs days before anyone notices. So the config key
``training.backend`` alone picks the backend and a conflicting ``KERAS_BACKEND`` is refused;
``training.device: gpu`` makes a job without a GPU fail at once, naming what is missing; and
:func:`setup_device` returns a one-line description every model job logs first.

Everything here must run before Keras is imported (the backend is read once, at import).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affect4k.config.schema import schema_enum
from affect4k.core.errors import Affect4kError

#: Backends this package installs (tensorflow-cpu in the base, jax in the ``jax``/``gpu`` extra).
BACKENDS = schema_enum("training.backend")
DEVICES = schema_enum("training.device")


@dataclass(frozen=True)
class DeviceInfo:
    """What a model job computes on: ``devices`` as ``platform:id (kind)`` strings."""

    backend: str
    devices: tuple[str, ...]
    gpu: bool
    precision: str
    note: str = ""

    def describe(self) -> str:
        devices = ", ".join(self.devices)
        text = f"backend {self.backend}, device(s) {devices}, precision {self.precision}"
        return f"{text} ({self.note})" if self.note else text


def select_backend(backend: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """Make ``backend`` Keras' backend, refusing anything that would silently pick another.

    An exported ``KERAS_BACKEND`` that differs is an error, not an override: the config is
    what reruns and cluster jobs see, the shell's environment is not.
    """
    if backend not in BACKENDS:
        raise Affect4kError(
            f"config key training.backend: {backend!r} is not one of {', '.join(BACKENDS)}"
        )
    exported = environ.get("KERAS_BACKEND")
    if exported and exported != backend:
        raise Affect4kError(
            f"KERAS_BACKEND={exported} is exported but config key training.backend is {backend}; "
            "unset KERAS_BACKEND or change the config key (the config decides the backend)"
        )
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != backend:
            raise Affect4kError(
                f"keras was already imported with backend {loaded}, config key "
                f"training.backend is {backend}"
            )
    if importlib.util.find_spec(backend) is None:
        extra = "jax" if backend == "jax" else None
        how = f"pip install -e '.[{extra}]'" if extra else f"pip install {backend}"
        raise Affect4kError(
            f"config key training.backend is {backend} but {backend} is not installed ({how})"
        )
    environ["KERAS_BACKEND"] = backend


def hide_gpus(environ: MutableMapping[str, str] = os.environ) -> None:
    """Keep CUDA devices from every backend (``training.device: cpu``), before they load."""
    environ["CUDA_VISIBLE_DEVICES"] = ""
    environ["JAX_PLATFORMS"] = "cpu"


def enable_compile_cache(backend: str, directory: Path) -> bool:
    """Keep compiled XLA programs in ``directory`` so the next job of the same shape skips
    compiling (33-160 s per model on an H100). Returns whether the backend has such a cache.

    JAX only: TensorFlow runs its graph without XLA on a CPU and has no persistent cache.
    Every program is kept, however fast it compiled: a job compiles dozens of small ones
    (variable initialisation, the metric updates) and together they are its start-up time.
    """
    if backend != "jax":
        return False
    import jax

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return True


def list_devices() -> tuple[tuple[str, ...], bool]:
    """The devices the loaded Keras backend computes on, and whether one is a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.devices()
        names = tuple(f"{d.platform}:{d.id} ({d.device_kind})" for d in devices)
        return names, any(d.platform == "gpu" for d in devices)
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices():
        kind = device.device_type
        if kind == "GPU":
            details = tf.config.experimental.get_device_details(device)
            kind = details.get("device_name", kind)
        names.append(f"{device.name.removeprefix('/physical_device:').lower()} ({kind})")
    return tuple(names), bool(tf.config.list_physical_devices("GPU"))


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing_gpu_support(backend: str) -> str:
    """Why ``backend`` sees no GPU, naming the package to install where one is missing."""
    if backend == "jax":
        if importlib.util.find_spec("jax_cuda12_plugin") is None:
            return "jax's CUDA plugin jax-cuda12-plugin is not installed: pip install -e '.[gpu]'"
        return "jax-cuda12-plugin is installed but found no usable GPU (check nvidia-smi)"
    if _installed("tensorflow-cpu"):
        return (
            "tensorflow-cpu has no CUDA support: install tensorflow[and-cuda]==2.21.0 instead, "
            "or use training.backend: jax with pip install -e '.[gpu]'"
        )
    return "tensorflow found no usable GPU (check nvidia-smi and tensorflow[and-cuda])"


def accelerator_available() -> bool:
    """Whether the loaded Keras backend sees a GPU."""
    return list_devices()[1]


def configure_precision(gpu: bool | None = None) -> bool:
    """bfloat16 compute on a GPU (tensor cores, no loss scaling needed), float32 on a CPU.

    Returns whether a GPU was found (``gpu``, when the caller already knows).
    """
    import keras

    gpu = accelerator_available() if gpu is None else gpu
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if gpu else "float32")
    return gpu


def setup_device(backend: str, device: str, compile_cache: Path | None = None) -> DeviceInfo:
    """Select ``backend``, restrict it to ``device``, set the precision and describe the result.

    ``device`` is ``auto`` (a GPU when the backend sees one, else the CPU, said in the
    description), ``gpu`` (no GPU is an error naming the missing plugin) or ``cpu``.
    """
    if device not in DEVICES:
        raise Affect4kError(
            f"config key training.device: {device!r} is not one of {', '.join(DEVICES)}"
        )
    select_backend(backend)
    if device == "cpu":
        hide_gpus()
    if compile_cache is not None:
        enable_compile_cache(backend, compile_cache)
    devices, gpu = list_devices()
    if device == "gpu" and not gpu:
        raise Affect4kError(
            f"config key training.device is gpu but {backend} sees only {', '.join(devices)}: "
            f"{missing_gpu_support(backend)}"
        )
    configure_precision(gpu)
    import keras

    note = ""
    if device == "auto" and not gpu:
        note = f"no GPU: {missing_gpu_support(backend)}"
    elif device == "cpu":
        note = "training.device: cpu"
    return DeviceInfo(backend, devices, gpu, keras.mixed_precision.global_policy().name, note)


@contextmanager
def held_output() -> Iterator[io.StringIO]:
    """Hold what Python and native libraries write to stderr (file descriptor 2 included) and
    what they log while the block runs; the caller writes it out later from the yielded buffer.

    Importing TensorFlow or JAX prints start-up notices; holding them lets the job's
    description be the first line of its log.
    """
    held = io.StringIO()
    sys.stderr.flush()
    saved = os.dup(2)
    # Log records (JAX logs its platform probing) too: handlers hold their own stream.
    root = logging.getLogger()
    handlers = root.handlers[:]
    capture = logging.StreamHandler(held)
    if handlers:
        capture.setFormatter(handlers[0].formatter)
    root.handlers = [capture]
    with tempfile.TemporaryFile() as native:
        os.dup2(native.fileno(), 2)
        try:
            with redirect_stderr(held):
                yield held
        finally:
            root.handlers = handlers
            os.dup2(saved, 2)
            os.close(saved)
            native.seek(0)
            held.write(native.read().decode(errors="replace"))


def model_setup(training: Mapping[str, Any]) -> Callable[[], tuple[str, str]]:
    """The ``setup`` of :func:`affect4k.core.workflow.job` for a training or prediction job: apply
    ``training.backend``, ``training.device`` and ``training.compile_cache`` (before anything
    imports keras); return the device description and the start-up output held meanwhile."""

    def setup() -> tuple[str, str]:
        cache = training["compile_cache"]
        with held_output() as startup:
            device = setup_device(
                training["backend"], training["device"], Path(cache) if cache else None
            )
        return device.describe(), startup.getvalue()

    return setup


def onnxruntime_builds(
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> list[str]:
    """Names of the installed distributions that provide the ``onnxruntime`` package.

    onnxruntime and onnxruntime-gpu both install ``onnxruntime/``; with both present the files
    of whichever pip installed last win, so the CUDA provider may be missing or the import
    broken. Read from the distributions' metadata (their file lists), not from their names.
    """
    if distributions is None:
        distributions = importlib.metadata.distributions()
    builds = set()
    for distribution in distributions:
        files = distribution.files or []
        if any(str(file).replace("\\", "/") == "onnxruntime/__init__.py" for file in files):
            builds.add(distribution.metadata["Name"])
    return sorted(builds)
