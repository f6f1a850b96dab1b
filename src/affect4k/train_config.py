"""One training run's settings (:class:`TrainConfig`) and the input convention of its initial
weights.

Kept apart from :mod:`affect4k.runs` (how config entries expand into a grid of runs), so the
modules that build and train one model (``models``, ``training``, ``predict_cli``) need not
import the grid. Keras-free, so the workflow and settings checks import it cheaply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from affect4k.errors import Affect4kError

#: How pixels reach a model's first layer. ``study``: RGB scaled by (x - 128) / 128, the
#: study's own models and every model trained from scratch. ``caffe``: BGR on the 0-255 scale
#: minus ImageNet's mean pixel, what keras.applications' ImageNet VGG16 weights expect
#: (``keras.applications.vgg16.preprocess_input``).
INPUT_CONVENTIONS = ("study", "caffe")


def input_convention(pretrained: str | None, declared: str | None = None) -> str:
    """The input convention of an initialisation (:data:`INPUT_CONVENTIONS`): ImageNet's own,
    else what the weights' owner declared, else the study's (training from scratch, and every
    model this workflow trains from scratch)."""
    if declared is not None:
        if declared not in INPUT_CONVENTIONS:
            raise Affect4kError(
                f"input convention {declared!r}: expected one of {', '.join(INPUT_CONVENTIONS)}"
            )
        if pretrained == "imagenet" and declared != "caffe":
            raise Affect4kError("pretrained 'imagenet' weights need the caffe input convention")
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
        """A config from a job's settings (:func:`affect4k.settings.job_settings`).

        A key that is not a field is refused by name, so a typo in the config cannot silently
        fall back to a default.
        """
        if "model" not in settings:
            raise Affect4kError("training settings: no model given")
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise Affect4kError(f"training settings: unknown key(s) {', '.join(unknown)}")
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
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise Affect4kError(f"training {name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise Affect4kError(
                f"training steps_per_epoch must be >= 1, got {self.steps_per_epoch}"
            )
        if not self.learning_rate > 0:
            raise Affect4kError(f"training learning_rate must be > 0, got {self.learning_rate}")
