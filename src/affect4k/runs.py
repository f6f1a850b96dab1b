"""Training runs as config entries: defaults, grids and the resolution ablation.

A run entry names a model and any options; options given as lists form a grid, so the seed's
search (batch 2/4/6 x sequence 60/80/100) is two lines of config. The result is a flat mapping
from run name to its settings, which the workflow turns into one job per run.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from affect4k.errors import Affect4kError

#: Resolution of runs trained on the crops of the clips as downloaded.
NATIVE = "native"
#: How pixels reach a model's first layer. ``study``: RGB scaled by (x - 128) / 128, the
#: study's own models and every model trained from scratch. ``caffe``: BGR on the 0-255 scale
#: minus ImageNet's mean pixel, what keras.applications' ImageNet VGG16 weights expect
#: (``keras.applications.vgg16.preprocess_input``).
INPUT_CONVENTIONS = ("study", "caffe")
#: The study's settings that differ by model (section 6.3: ResNet-50 trained for 60 epochs);
#: ``training.defaults`` and the run entry override them.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"resnet50_gru": {"epochs": 60}}


def expand_runs(
    runs: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    ablation_runs: list[str] | None = None,
    ablation_resolution: str = "640x360",
) -> dict[str, dict[str, Any]]:
    """Flatten run entries into ``{run name: settings}``.

    Each settings dict is the model's :data:`MODEL_DEFAULTS` overlaid with ``defaults`` and
    then the entry, plus ``resolution`` (NATIVE, or ``ablation_resolution`` for the copies
    named ``<run>-<resolution>`` of the runs of each entry in ``ablation_runs``). Grid runs are
    named ``<name>-<option><value>-...`` in the entry's option order.
    """
    expanded: dict[str, dict[str, Any]] = {}
    of_entry: dict[str, list[str]] = {}
    for name, entry in runs.items():
        settings = {**MODEL_DEFAULTS.get(entry["model"], {}), **(defaults or {}), **entry}
        grid = {key: value for key, value in settings.items() if isinstance(value, list)}
        for combination in itertools.product(*grid.values()):
            chosen = dict(zip(grid, combination, strict=True))
            run = name + "".join(f"-{key}{value}" for key, value in chosen.items())
            expanded[run] = {**settings, **chosen, "resolution": NATIVE}
            of_entry.setdefault(name, []).append(run)
    for name in ablation_runs or []:
        if name not in of_entry:
            raise Affect4kError(f"training.ablation.runs names {name!r}, which is no training run")
        for run in of_entry[name]:
            copy = {**expanded[run], "resolution": ablation_resolution}
            expanded[f"{run}-{ablation_resolution}"] = copy
    return expanded


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


def frame_size(resolution: str) -> tuple[int, int] | None:
    """``"640x360"`` -> ``(640, 360)``; NATIVE -> None (no downscaling)."""
    if resolution == NATIVE:
        return None
    width, height = resolution.split("x")
    return int(width), int(height)
