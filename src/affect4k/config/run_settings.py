"""One training run's settings (:class:`TrainConfig`) and the input convention of its initial
weights.

Kept apart from :mod:`affect4k.config.runs` (how config entries expand into a grid of runs), so the
modules that build and train one model (``model.architectures``, ``model.train``,
``commands.predict_files``) need not import the grid. Keras-free, so the workflow and settings
checks import it cheaply.

The settings are checked once, where the config enters: the schema (each key's type and
range) and :mod:`affect4k.config.settings` (keys that must agree, what a model needs), each
refusal naming the config key. Here and in the modules that train, a setting that got past
them is a bug, so they only assert.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from affect4k.config.schema import schema_enum

#: How pixels reach a model's first layer. ``study``: RGB scaled by (x - 128) / 128, the
#: study's own models and every model trained from scratch. ``caffe``: BGR on the 0-255 scale
#: minus ImageNet's mean pixel, what keras.applications' ImageNet VGG16 weights expect
#: (``keras.applications.vgg16.preprocess_input``).
INPUT_CONVENTIONS = schema_enum("$defs.run.input_convention")
#: What :func:`affect4k.model.architectures.build_model` can build, known without Keras: the
#: smallest ``input_size`` each backbone's pooling leaves a pixel of, the models whose VGG16 conv
#: stack starts from ``pretrained`` weights, and the weights a model starts from when ``pretrained``
#: is not given.
MIN_INPUT_SIZE = {"vgg16": 32, "resnet50": 32, "alexnet": 35}
PRETRAINED_MODELS = ("vgg16_imagenet_gru", "vgg16_affwild_gru")
DEFAULT_PRETRAINED = {"vgg16_imagenet_gru": "imagenet"}


def input_convention(pretrained: str | None, declared: str | None = None) -> str:
    """The input convention of an initialisation (:data:`INPUT_CONVENTIONS`): ImageNet's own,
    else what the weights' owner declared, else the study's (training from scratch, and every
    model this workflow trains from scratch). ImageNet's weights take caffe input only
    (:func:`affect4k.config.settings.resolve_training` refuses another, naming the key)."""
    if declared is not None:
        assert declared in INPUT_CONVENTIONS, declared
        assert pretrained != "imagenet" or declared == "caffe", declared
        return declared
    return "caffe" if pretrained == "imagenet" else "study"


@dataclass(frozen=True)
class TrainConfig:
    """One training run; the defaults are the study's settings (sections 6.2-6.3)."""

    model: str
    epochs: int = 50
    batch_size: int = 4
    sequence_length: int = 80
    learning_rate: float = 1e-5
    input_size: int = 96
    width: float = 1.0
    gru_units: int = 128
    fc_units: int = 4096
    pretrained: str | None = None
    input_convention: str | None = None
    seed: int = 0
    checkpoint_every: int = 10
    shuffle_labels: bool = False
    steps_per_epoch: int | None = None
    #: Epochs between scores of the validation split (what ``best.keras`` is chosen on). The
    #: study scored train and test every epoch; a scored image costs about a quarter of a
    #: trained one, so that took a quarter of a CPU epoch (docs/performance.md).
    eval_every: int = 2
    #: Epochs between scores of the train split (several times the validation split's frames).
    eval_train_every: int = 10
    #: Sequences per scoring batch; a forward pass alone keeps a GPU busy only at larger ones.
    eval_batch_size: int = 16
    #: Time steps per loop iteration of the GRUs (1 = Keras' GRU layer), see build_model.
    gru_unroll: int = 1

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """A config from a job's settings (:func:`affect4k.config.settings.job_settings`), every key
        a field: the schema refuses a config key that is none (a typo never falls back to a
        default), and ``job_settings`` keeps the workflow's own keys from a job."""
        fields = {field.name for field in dataclasses.fields(cls)}
        assert "model" in settings and set(settings) <= fields, sorted(set(settings) - fields)
        return cls(**settings)

    def __post_init__(self) -> None:
        positive = (
            "epochs",
            "batch_size",
            "sequence_length",
            "checkpoint_every",
            "eval_every",
            "eval_train_every",
            "eval_batch_size",
            "gru_unroll",
            "gru_units",
            "fc_units",
        )
        for name in positive:
            assert getattr(self, name) >= 1, (name, getattr(self, name))
        assert self.steps_per_epoch is None or self.steps_per_epoch >= 1, self.steps_per_epoch
        assert self.learning_rate > 0 and self.width > 0, (self.learning_rate, self.width)
