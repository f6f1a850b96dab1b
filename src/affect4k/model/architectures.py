"""The study's CNN(-RNN) valence/arousal models, built with Keras 3 for any backend.

Every model maps uint8 face crops (B, T, crop, crop, 3) to (B, T, 2) [valence, arousal] in
(-1, 1). Resizing and the input convention of the initial weights
(``affect4k.config.run_settings``) happen inside the model, so the data loader only gathers uint8
crops, all arithmetic runs on the accelerator, and a saved model carries the preprocessing its
weights were trained with. Frames are folded into the batch (B*T images) for the CNN and
unfolded for the GRU instead of wrapping the CNN in TimeDistributed, which on an H100 was 60x
slower on torch and 4x on JAX.

``width`` scales every channel count and FC size (1.0 is the study's models) so the CPU demo can
train all architectures in minutes; layer names never depend on it, so weights move between
models of equal width by name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers, ops

from affect4k.config.run_settings import (
    DEFAULT_PRETRAINED,
    MIN_INPUT_SIZE,
    PRETRAINED_MODELS,
    input_convention,
)
from affect4k.config.schema import schema_enum
from affect4k.core.errors import Affect4kError

#: The models a run may name (the schema's list).
MODEL_NAMES = schema_enum("$defs.run.model")

#: ImageNet's mean pixel in BGR order, as caffe (and keras.applications) subtract it.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

#: (channels, convolutions) of VGG16's five blocks.
_VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

#: keras.applications' names for VGG16's 13 conv layers, so ImageNet weights load by name.
VGG16_CONV_LAYERS = tuple(
    f"block{block}_conv{conv}"
    for block, (_, convs) in enumerate(_VGG16_BLOCKS, start=1)
    for conv in range(1, convs + 1)
)

#: (filters, blocks) of ResNet-50's four bottleneck stages (output channels are 4x filters).
_RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))


@keras.saving.register_keras_serializable(package="affect4k")
class FoldFrames(layers.Layer):
    """(B, T, ...) -> (B*T, ...): every frame of every sequence becomes one CNN image."""

    def call(self, frames):
        return ops.reshape(frames, (-1, *frames.shape[2:]))

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[:2]
        folded = None if batch is None or time is None else batch * time
        return (folded, *input_shape[2:])


@keras.saving.register_keras_serializable(package="affect4k")
class UnfoldFrames(layers.Layer):
    """(B*T, F) features back to (B, T, F), taking B and T from the model's input."""

    def call(self, inputs):
        features, frames = inputs
        shape = ops.shape(frames)
        return ops.reshape(features, (shape[0], shape[1], features.shape[-1]))

    def compute_output_shape(self, input_shape):
        features_shape, frames_shape = input_shape
        return (frames_shape[0], frames_shape[1], features_shape[-1])


@keras.saving.register_keras_serializable(package="affect4k")
class CaffeInput(layers.Layer):
    """RGB 0-255 -> BGR minus ImageNet's mean pixel: the input ImageNet VGG16 weights expect."""

    def call(self, images):
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=images.dtype)


@keras.saving.register_keras_serializable(package="affect4k")
class UnrolledGRU(layers.GRU):
    """Keras' GRU (same weights, same outputs) with ``steps_per_iteration`` time steps per loop
    iteration of the recurrence.

    On JAX, Keras runs a GRU as a ``lax.scan`` of one step per iteration: 80 frames x 2 layers,
    forward and backward, are about 320 small sequential iterations per training step, each
    paying the device's loop overhead. Here the input projection of all T steps is one matrix
    product (as Keras' JAX path does too) and ``ops.scan`` unrolls ``steps_per_iteration``
    steps into each iteration, so XLA can fuse consecutive steps. Only the configuration
    :func:`build_model` uses is supported: ``reset_after``, no dropout, no mask, forward.
    """

    def __init__(self, units: int, *, steps_per_iteration: int, **kwargs):
        super().__init__(units, **kwargs)
        assert steps_per_iteration >= 1, steps_per_iteration
        assert self.cell.reset_after and not (self.cell.dropout or self.cell.recurrent_dropout)
        assert not self.go_backwards and self.return_sequences and self.cell.use_bias
        self.steps_per_iteration = steps_per_iteration

    def inner_loop(self, sequences, initial_state, mask, training=False):
        assert mask is None, "UnrolledGRU does not take a mask"
        cell = self.cell
        state = initial_state[0] if isinstance(initial_state, list | tuple) else initial_state
        input_bias, recurrent_bias = cell.bias[0], cell.bias[1]
        projected = ops.matmul(sequences, cell.kernel) + input_bias

        # Same arithmetic, in the same order, as GRUCell.call with reset_after.
        def step(previous, x_t):
            inner = ops.matmul(previous, cell.recurrent_kernel) + recurrent_bias
            x_z, x_r, x_h = ops.split(x_t, 3, axis=-1)
            h_z, h_r, h_h = ops.split(inner, 3, axis=-1)
            z = cell.recurrent_activation(x_z + h_z)
            r = cell.recurrent_activation(x_r + h_r)
            candidate = cell.activation(x_h + r * h_h)
            h = z * previous + (1 - z) * candidate
            return h, h

        last, outputs = ops.scan(
            step, state, ops.transpose(projected, (1, 0, 2)), unroll=self.steps_per_iteration
        )
        return last, ops.transpose(outputs, (1, 0, 2)), [last]

    def get_config(self):
        return {**super().get_config(), "steps_per_iteration": self.steps_per_iteration}


class _SeededInit:
    """Hands each layer its own seeded initializer so ``build_model(seed=s)`` is reproducible
    without touching the global random state."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def _next_seed(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def glorot(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self._next_seed())

    def orthogonal(self) -> keras.initializers.Initializer:
        return keras.initializers.Orthogonal(seed=self._next_seed())


def _scaled(size: int, width: float) -> int:
    return max(1, round(size * width))


def _vgg16_features(x, width: float, fc_units: int, init: _SeededInit, fc_layers: int = 1):
    """VGG16's 13 conv layers and 5 pools, flattened, then ``fc_layers`` FC layers: one before
    a GRU (Kollias' AffWildNet), two in the frame-level VGG16 (the study's, as VGG16's own)."""
    for block, (channels, convs) in enumerate(_VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(
                _scaled(channels, width),
                3,
                padding="same",
                activation="relu",
                kernel_initializer=init.glorot(),
                name=f"block{block}_conv{conv}",
            )(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in range(fc_layers):
        x = layers.Dense(
            _scaled(fc_units, width),
            activation="relu",
            kernel_initializer=init.glorot(),
            name="fc" if index == 0 else f"fc{index + 1}",
        )(x)
    return x


def _alexnet_features(x, width: float, fc_units: int, init: _SeededInit):
    """AlexNet's five conv layers (study section 5.1 kernel counts) and two FC layers.

    As in TF-slim's alexnet_v2, conv1 is unpadded with stride 4; at 96x96 input conv5 then
    outputs the 4x4x256 the study reports. Local response normalisation is omitted (Keras has
    no such layer and later work found it does not help).
    """
    convs = (  # name, channels, kernel, stride, padding, max-pool after
        ("conv1", 96, 11, 4, "valid", True),
        ("conv2", 256, 5, 1, "same", True),
        ("conv3", 384, 3, 1, "same", False),
        ("conv4", 384, 3, 1, "same", False),
        ("conv5", 256, 3, 1, "same", False),
    )
    for name, channels, kernel, stride, padding, pool in convs:
        x = layers.Conv2D(
            _scaled(channels, width),
            kernel,
            strides=stride,
            padding=padding,
            activation="relu",
            kernel_initializer=init.glorot(),
            name=name,
        )(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(
            _scaled(fc_units, width), activation="relu", kernel_initializer=init.glorot(), name=name
        )(x)
    return x


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, init: _SeededInit):
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        kernel_initializer=init.glorot(),
        name=f"{name}_conv",
    )(x)
    # momentum 0.9 (PyTorch's 0.1): with Keras' 0.99 the moving statistics lag a few hundred
    # steps behind, and a short run (the demo's) then predicts a constant at inference.
    return layers.BatchNormalization(momentum=0.9, epsilon=1.001e-5, name=f"{name}_bn")(x)


def _bottleneck(x, filters: int, stride: int, project: bool, name: str, init: _SeededInit):
    """ResNet v1 bottleneck block, named as in keras.applications.ResNet50."""
    shortcut = _conv_bn(x, 4 * filters, 1, stride, f"{name}_0", init) if project else x
    x = layers.Activation("relu", name=f"{name}_1_relu")(
        _conv_bn(x, filters, 1, stride, f"{name}_1", init)
    )
    x = layers.Activation("relu", name=f"{name}_2_relu")(
        _conv_bn(x, filters, 3, 1, f"{name}_2", init)
    )
    x = _conv_bn(x, 4 * filters, 1, 1, f"{name}_3", init)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _resnet50_features(x, width: float, fc_units: int, init: _SeededInit):
    """ResNet-50 (v1) to its globally average-pooled 2048*width features.

    Written out rather than taken from keras.applications so ``width`` can scale it; the study
    feeds these pooled features to the GRU in place of ResNet's final FC layer, so
    ``fc_units`` is unused.
    """
    x = layers.Activation("relu", name="conv1_relu")(
        _conv_bn(x, _scaled(64, width), 7, 2, "conv1", init)
    )
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(_RESNET50_STAGES, start=2):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _bottleneck(
                x, _scaled(filters, width), stride, block == 1, f"conv{stage}_block{block}", init
            )
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


_BACKBONES = {
    "vgg16": _vgg16_features,
    "resnet50": _resnet50_features,
    "alexnet": _alexnet_features,
}


def build_model(
    name: str,
    *,
    input_size: int = 96,
    crop_size: int = 112,
    width: float = 1.0,
    gru_units: int = 128,
    fc_units: int = 4096,
    pretrained: str | None = None,
    convention: str | None = None,
    seed: int = 0,
    gru_unroll: int = 1,
) -> keras.Model:
    """Build one of :data:`MODEL_NAMES`: (B, T, crop, crop, 3) crops -> (B, T, 2) float32 tanh.

    ``*_gru`` models end in a 2-layer GRU over the T frames; ``vgg16_cnn`` predicts every frame
    on its own. ``vgg16_imagenet_gru`` initialises its conv stack from ``pretrained`` (default
    ``"imagenet"``, which downloads); ``vgg16_affwild_gru`` requires ``pretrained`` to be a
    weights file (see :func:`load_conv_weights`). ``convention`` is the input convention of
    those weights (:func:`input_convention`: by default caffe for ImageNet, the study's
    otherwise). The GRUs and the output layer run in float32
    under a mixed-precision policy: an 80-step recurrence compounds bfloat16 rounding and the
    loss needs float32 predictions. ``gru_unroll`` > 1 runs them as :class:`UnrolledGRU`
    with that many steps per loop iteration (same weights and outputs, fewer sequential steps
    on a GPU); 1 keeps Keras' GRU layer.
    """
    # The config's checks (schema, affect4k.config.settings) refused, naming the key, whatever fails
    # here; a caller outside the workflow gets an assertion.
    assert name in MODEL_NAMES, name
    backbone = name.split("_")[0]
    assert width > 0 and min(crop_size, gru_units, fc_units) >= 1, (width, crop_size)
    assert input_size >= MIN_INPUT_SIZE[backbone], (name, input_size)
    pretrained = pretrained if pretrained is not None else DEFAULT_PRETRAINED.get(name)
    assert pretrained is None or name in PRETRAINED_MODELS, (name, pretrained)
    assert name != "vgg16_affwild_gru" or pretrained is not None, "needs a weights file"
    assert pretrained != "imagenet" or width == 1, ("ImageNet weights need width 1", width)

    init = _SeededInit(seed)
    frames = keras.Input((None, crop_size, crop_size, 3), dtype="float32", name="frames")
    x = FoldFrames(dtype="float32", name="fold_frames")(frames)
    if input_size != crop_size:
        # Anti-aliased: a 448 px crop fed at 112 must not alias its fine detail away.
        x = layers.Resizing(input_size, input_size, antialias=True, dtype="float32", name="resize")(
            x
        )
    if input_convention(pretrained, convention) == "caffe":
        x = CaffeInput(dtype="float32", name="normalise")(x)
    else:
        x = layers.Rescaling(1 / 128, offset=-1.0, dtype="float32", name="normalise")(x)
    extra = {"fc_layers": 2} if name == "vgg16_cnn" else {}
    x = _BACKBONES[backbone](x, width, fc_units, init, **extra)
    x = UnfoldFrames(name="unfold_frames")([x, frames])
    if name != "vgg16_cnn":
        recurrent = (
            layers.GRU
            if gru_unroll == 1
            else functools.partial(UnrolledGRU, steps_per_iteration=gru_unroll)
        )
        for layer in ("gru1", "gru2"):
            x = recurrent(
                gru_units,
                return_sequences=True,
                kernel_initializer=init.glorot(),
                recurrent_initializer=init.orthogonal(),
                dtype="float32",
                name=layer,
            )(x)
    outputs = layers.Dense(
        2, activation="tanh", kernel_initializer=init.glorot(), dtype="float32", name="va"
    )(x)
    model = keras.Model(frames, outputs, name=name)
    if pretrained is not None:
        load_conv_weights(model, pretrained)
    return model


def load_conv_weights(model: keras.Model, source: str) -> int:
    """Copy VGG16's 13 conv layers from ``source`` into ``model`` by layer name; return 13.

    ``source`` is ``"imagenet"`` (keras.applications' weights, downloaded), a keras.applications
    style ``.h5``, or a ``.keras`` / ``.weights.h5`` saved from one of our VGG16 models. Every
    conv layer must be found with the model's shapes: a half-initialised stack would train
    silently as a different experiment.
    """
    targets = [layer for layer in model.layers if layer.name in VGG16_CONV_LAYERS]
    if not targets:
        raise Affect4kError(f"model {model.name} has no VGG16 conv layers to load from {source}")
    weights = _read_conv_weights(str(source))
    missing = [layer.name for layer in targets if layer.name not in weights]
    if missing:
        raise Affect4kError(f"{source} has no weights for VGG16 conv layer(s) {', '.join(missing)}")
    for layer in targets:
        expected = [tuple(variable.shape) for variable in layer.weights]
        found = [array.shape for array in weights[layer.name]]
        if found != expected:
            raise Affect4kError(
                f"{source}: layer {layer.name} has weight shapes {found} but model {model.name} "
                f"expects {expected} (saved at another width?)"
            )
        layer.set_weights(weights[layer.name])
    return len(targets)


def _read_conv_weights(source: str) -> dict[str, list[np.ndarray]]:
    """{VGG16 conv layer name: [kernel, bias]} from any source :func:`load_conv_weights` takes."""
    if source == "imagenet":
        try:
            vgg16 = keras.applications.VGG16(include_top=False, weights="imagenet")
        except Exception as error:  # no network, no cache: say so instead of a urllib trace
            raise Affect4kError(f"cannot fetch the ImageNet VGG16 weights: {error}") from error
        return _named_conv_weights(vgg16)
    path = Path(source)
    if not path.is_file():
        raise Affect4kError(f"pretrained weights file {source} does not exist")
    try:
        if path.name.endswith(".keras"):
            return _named_conv_weights(keras.saving.load_model(path, compile=False))
        if path.name.endswith(".weights.h5"):
            return _keras3_conv_weights(path)
        if path.suffix == ".h5":
            return _legacy_h5_conv_weights(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise Affect4kError(f"cannot read pretrained weights {source}: {error}") from error
    raise Affect4kError(
        f"pretrained weights {source}: expected 'imagenet' or a .keras, .weights.h5 or .h5 file"
    )


def _named_conv_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {
        layer.name: layer.get_weights() for layer in model.layers if layer.name in VGG16_CONV_LAYERS
    }


_KERAS3_CONV = re.compile(r"conv2d(?:_(\d+))?")


def _keras3_conv_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Conv weights of a Keras 3 ``.weights.h5``, which stores no layer names.

    Keras addresses layers there by class and position (``layers/conv2d``, ``conv2d_1``, ...)
    and its own ``load_weights`` matches them by that order; in our VGG16 models the first 13
    Conv2D layers are the conv stack in order, so position k is ``VGG16_CONV_LAYERS[k]``.
    """
    with h5py.File(path, "r") as file:
        group = file.get("layers")
        if not isinstance(group, h5py.Group):
            return {}
        positions = {}
        for key in group:
            match = _KERAS3_CONV.fullmatch(key)
            if match:
                positions[int(match.group(1) or 0)] = key
        ordered = [positions[index] for index in sorted(positions)][: len(VGG16_CONV_LAYERS)]
        return {
            name: [np.asarray(group[key]["vars"][str(i)]) for i in range(len(group[key]["vars"]))]
            for name, key in zip(VGG16_CONV_LAYERS, ordered, strict=False)
        }


def _legacy_h5_conv_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Conv weights of a Keras 2 style ``.h5`` (keras.applications' files, ``model.save``),
    which lists its layers by name in the ``layer_names`` attribute."""

    def text(value) -> str:
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as file:
        group = file.get("model_weights", file)
        weights = {}
        for name in map(text, group.attrs.get("layer_names", [])):
            if name in VGG16_CONV_LAYERS:
                layer = group[name]
                weights[name] = [np.asarray(layer[text(w)]) for w in layer.attrs["weight_names"]]
        return weights
