import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import h5py
import keras
import numpy as np
import pytest
from keras import ops

from affect4k.config.run_settings import MIN_INPUT_SIZE
from affect4k.core.errors import Affect4kError
from affect4k.model.architectures import (
    _BACKBONES,
    VGG16_CONV_LAYERS,
    FoldFrames,
    UnrolledGRU,
    _SeededInit,
    build_model,
    load_conv_weights,
)
from affect4k.model.loss import ccc_loss

#: Small enough that each model builds and runs in about a second on a CPU.
SMALL = {"width": 0.0625, "crop_size": 40, "input_size": 36, "gru_units": 8, "fc_units": 256}
SCRATCH_MODELS = ("vgg16_gru", "resnet50_gru", "alexnet_gru", "vgg16_cnn")


def crops(rng, batch, time, size=SMALL["crop_size"]):
    return rng.integers(0, 256, size=(batch, time, size, size, 3), dtype=np.uint8)


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def conv_kernels(model):
    return [model.get_layer(name).get_weights()[0] for name in VGG16_CONV_LAYERS]


def randomise_conv_stack(model, rng):
    """Weights no seeded initializer would produce, so equality proves they were copied."""
    for name in VGG16_CONV_LAYERS:
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])


@pytest.mark.parametrize("name", SCRATCH_MODELS)
def test_model_maps_any_sequence_length_to_bounded_va(name, rng):
    model = build_model(name, **SMALL)
    for time in (1, 4):
        frames = crops(rng, 2, time)
        out = ops.convert_to_numpy(model(frames))
        assert out.shape == (2, time, 2)
        assert out.dtype == np.float32
        assert np.all(np.abs(out) < 1)
    as_float = ops.convert_to_numpy(model(frames.astype("float32")))
    np.testing.assert_allclose(as_float, out, atol=1e-6)
    assert not any(isinstance(layer, keras.layers.TimeDistributed) for layer in model.layers)
    assert any(isinstance(layer, FoldFrames) for layer in model.layers)


def changed_frames(model, rng, time=4, changed=1):
    frames = crops(rng, 1, time)
    other = frames.copy()
    other[0, changed] = 255 - other[0, changed]
    difference = np.abs(ops.convert_to_numpy(model(frames)) - ops.convert_to_numpy(model(other)))[0]
    return set(np.flatnonzero(difference.max(axis=1) > 1e-7))


def test_vgg16_cnn_predicts_each_frame_independently(rng):
    assert changed_frames(build_model("vgg16_cnn", **SMALL), rng) == {1}


def test_vgg16_gru_carries_a_frame_into_later_predictions(rng):
    assert changed_frames(build_model("vgg16_gru", **SMALL), rng) == {1, 2, 3}


def test_width_scales_channels_but_not_layer_names():
    narrow = build_model("vgg16_gru", **SMALL)
    wide = build_model("vgg16_gru", **{**SMALL, "width": 0.125})
    assert [layer.name for layer in narrow.layers] == [layer.name for layer in wide.layers]
    assert narrow.get_layer("block1_conv1").filters == 4
    assert wide.get_layer("block5_conv3").filters == 64
    assert wide.get_layer("fc").units == 32


def test_same_seed_same_weights():
    first, second = (build_model("vgg16_gru", **SMALL, seed=5) for _ in range(2))
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_affwild_gru_starts_from_a_saved_vgg16_cnn(tmp_path, rng, suffix):
    source = build_model("vgg16_cnn", **SMALL, seed=1)
    randomise_conv_stack(source, rng)
    path = tmp_path / f"pretrain{suffix}"
    if suffix == ".keras":
        source.save(path)
    else:
        source.save_weights(path)
    model = build_model("vgg16_affwild_gru", **SMALL, pretrained=str(path))
    fresh = build_model("vgg16_gru", **SMALL)
    for loaded, saved, initial in zip(
        conv_kernels(model), conv_kernels(source), conv_kernels(fresh), strict=True
    ):
        np.testing.assert_array_equal(loaded, saved)
        assert not np.allclose(loaded, initial)


@pytest.mark.parametrize("layout", ["full model", "weights only"])
def test_imagenet_gru_loads_a_keras_applications_vgg16_h5(tmp_path, rng, layout):
    vgg16 = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    randomise_conv_stack(vgg16, rng)
    path = tmp_path / "vgg16.h5"
    vgg16.save(path)  # Keras 2 layout: layer names under model_weights/
    if layout == "weights only":  # keras.applications' *_notop.h5 files: the same, at the root
        notop = tmp_path / "vgg16_notop.h5"
        with h5py.File(path, "r") as full, h5py.File(notop, "w") as out:
            for key, value in full["model_weights"].attrs.items():
                out.attrs[key] = value
            for key in full["model_weights"]:
                full.copy(full["model_weights"][key], out, key)
        path = notop
    small_head = {"crop_size": 32, "input_size": 32, "gru_units": 4, "fc_units": 8}
    model = build_model("vgg16_imagenet_gru", **small_head, pretrained=str(path))
    for loaded, saved in zip(conv_kernels(model), conv_kernels(vgg16), strict=True):
        np.testing.assert_array_equal(loaded, saved)
    assert ops.convert_to_numpy(model(crops(rng, 1, 2, size=32))).shape == (1, 2, 2)


def test_loading_weights_of_another_width_names_file_and_layer(tmp_path):
    path = tmp_path / "narrow.weights.h5"
    build_model("vgg16_cnn", **SMALL).save_weights(path)
    with pytest.raises(Affect4kError, match=rf"{path}.*block1_conv1.*width"):
        build_model("vgg16_affwild_gru", **{**SMALL, "width": 0.125}, pretrained=str(path))


def test_a_file_without_vgg16_conv_layers_is_refused(tmp_path):
    path = tmp_path / "alexnet.keras"
    build_model("alexnet_gru", **SMALL).save(path)
    with pytest.raises(Affect4kError, match=rf"{path}.*block1_conv1"):
        load_conv_weights(build_model("vgg16_gru", **SMALL), str(path))


def test_missing_pretrained_file_is_named(tmp_path):
    path = tmp_path / "absent.weights.h5"
    with pytest.raises(Affect4kError, match=str(path)):
        build_model("vgg16_affwild_gru", **SMALL, pretrained=str(path))


def test_min_input_size_is_what_the_backbones_take():
    """MIN_INPUT_SIZE, by which affect4k.config.settings refuses a run's input_size naming the key:
    every backbone leaves a feature there, and VGG16's and AlexNet's pooling leave no pixel one
    below it (ResNet-50's strided convolutions pad; 32 is every model's floor, the schema's)."""
    for backbone, size in MIN_INPUT_SIZE.items():
        features = _BACKBONES[backbone](keras.Input((size, size, 3)), 0.0625, 8, _SeededInit(0))
        assert features.shape[-1] >= 1, backbone
        if backbone != "resnet50":
            with pytest.raises(ValueError, match="output size would be zero or negative"):
                _BACKBONES[backbone](keras.Input((size - 1,) * 2 + (3,)), 0.0625, 8, _SeededInit(0))


def test_a_few_steps_of_ccc_loss_learn_a_trivial_mapping(rng):
    """Label = frame brightness (valence) and its negative (arousal); some frames unlabelled."""
    brightness = rng.uniform(0, 255, size=(4, 6))
    frames = np.broadcast_to(brightness[..., None, None, None], (4, 6, 40, 40, 3))
    frames = frames.astype(np.uint8)
    level = (brightness - 128) / 160
    labels = np.stack([level, -level], axis=-1).astype("float32")
    labels[1, 2] = np.nan
    model = build_model("vgg16_gru", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=ccc_loss)
    losses = [float(model.train_on_batch(frames, labels)) for _ in range(25)]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.3


def test_mixed_bfloat16_model_still_predicts_float32(rng):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("vgg16_gru", **SMALL)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    out = model(crops(rng, 2, 3))
    assert ops.dtype(out) == "float32"
    assert ops.convert_to_numpy(out).shape == (2, 3, 2)


def _first_layer_input(model, pixels):
    """What the first conv layer receives for uint8 ``pixels`` (N, crop, crop, 3)."""
    probe = keras.Model(model.input, model.get_layer("normalise").output)
    return np.asarray(probe(pixels[:, None].astype("float32")))


def test_imagenet_weights_get_imagenets_caffe_input(tmp_path, rng):
    """BGR, 0-255, ImageNet's mean pixel subtracted: keras' own preprocess_input, pixel for
    pixel (the weights file is local; 'imagenet' itself would download)."""
    size = {**SMALL, "input_size": SMALL["crop_size"]}
    path = tmp_path / "vgg.keras"
    build_model("vgg16_gru", **size).save(path)
    model = build_model("vgg16_imagenet_gru", **size, pretrained=str(path), convention="caffe")
    pixels = crops(rng, 3, 1)[:, 0]
    expected = keras.applications.vgg16.preprocess_input(pixels.astype("float32"))
    np.testing.assert_allclose(_first_layer_input(model, pixels), expected, atol=1e-4)
    # The convention is part of the saved model: predict needs no flag to agree with it.
    model.save(tmp_path / "caffe.keras")
    reloaded = keras.saving.load_model(tmp_path / "caffe.keras", compile=False)
    np.testing.assert_allclose(_first_layer_input(reloaded, pixels), expected, atol=1e-4)


@pytest.mark.parametrize("name", ["vgg16_gru", "vgg16_affwild_gru"])
def test_scratch_and_affwild_weights_get_the_studys_input(tmp_path, rng, name):
    size = {**SMALL, "input_size": SMALL["crop_size"]}
    path = tmp_path / "vgg.keras"
    build_model("vgg16_gru", **size).save(path)
    pretrained = str(path) if name == "vgg16_affwild_gru" else None
    model = build_model(name, **size, pretrained=pretrained)
    pixels = crops(rng, 2, 1)[:, 0]
    expected = (pixels.astype("float32") - 128) / 128
    np.testing.assert_allclose(_first_layer_input(model, pixels), expected, atol=1e-6)


def test_frame_level_vgg16_has_the_studys_two_fc_layers():
    model = build_model("vgg16_cnn", **SMALL)
    fc = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert fc == ["fc", "fc2", "va"]
    gru_model = build_model("vgg16_gru", **SMALL)
    assert [layer.name for layer in gru_model.layers if layer.name.startswith("fc")] == ["fc"]


def _gru_pair(steps_per_iteration, rng, features=6, units=5):
    """Keras' GRU and an UnrolledGRU holding the same random (non-initializer) weights."""
    reference = keras.layers.GRU(units, return_sequences=True)
    unrolled = UnrolledGRU(units, steps_per_iteration=steps_per_iteration, return_sequences=True)
    for layer in (reference, unrolled):
        layer.build((None, None, features))
    reference.set_weights([rng.normal(size=w.shape).astype("float32") for w in reference.weights])
    unrolled.set_weights(reference.get_weights())
    return reference, unrolled


@pytest.mark.parametrize("steps_per_iteration", [2, 7, 100])
def test_unrolled_gru_outputs_equal_keras_gru(steps_per_iteration, rng):
    reference, unrolled = _gru_pair(steps_per_iteration, rng)
    # 23 steps: a remainder after the unrolled blocks, and 100 > 23 unrolls fully.
    sequences = rng.normal(size=(3, 23, 6)).astype("float32")
    expected = ops.convert_to_numpy(reference(sequences))
    assert np.abs(expected).mean() > 0.1, "the recurrence is far from its zero state"
    np.testing.assert_allclose(ops.convert_to_numpy(unrolled(sequences)), expected, atol=1e-6)


def test_unrolled_gru_trains_like_keras_gru(rng):
    """Equal gradients: one SGD step on each leaves equal weights."""
    reference, unrolled = _gru_pair(4, rng)
    sequences = rng.normal(size=(4, 12, 6)).astype("float32")
    targets = rng.uniform(-1, 1, size=(4, 12, 5)).astype("float32")
    trained = []
    for layer in (reference, unrolled):
        model = keras.Sequential([keras.Input((None, 6)), layer])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        before = [np.array(w) for w in layer.get_weights()]
        model.train_on_batch(sequences, targets)
        after = layer.get_weights()
        assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
        trained.append(after)
    for got, want in zip(trained[1], trained[0], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_gru_unroll_builds_the_same_model_and_round_trips(tmp_path, rng):
    reference = build_model("alexnet_gru", **SMALL)
    unrolled = build_model("alexnet_gru", gru_unroll=8, **SMALL)
    assert isinstance(unrolled.get_layer("gru1"), UnrolledGRU)
    assert type(reference.get_layer("gru1")) is keras.layers.GRU
    for got, want in zip(unrolled.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(got), ops.convert_to_numpy(want))
    frames = crops(rng, 2, 5)
    expected = ops.convert_to_numpy(unrolled(frames))
    np.testing.assert_allclose(expected, ops.convert_to_numpy(reference(frames)), atol=1e-6)
    unrolled.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert loaded.get_layer("gru2").steps_per_iteration == 8
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(frames)), expected, atol=1e-6)
