"""Training runs as config entries: defaults, grids and the resolution x input-size ablation.

A run entry names a model and any options; options given as lists form a grid, so the study's
search (batch 2/4/6 x sequence 60/80/100) is two lines of config. The result is a flat mapping
from run name to its settings, which the workflow turns into one job per run.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from affect4k.config.run_settings import TrainConfig
from affect4k.core.errors import Affect4kError

#: Resolution of runs trained on the crops of the clips as downloaded.
NATIVE = "native"
#: Side of the face stage's crops (the study's 112x112 ArcFace alignment).
NATIVE_CROP = 112
#: Run options whose value is a list without forming a grid.
LIST_OPTIONS = ("seeds", "trained_on")
#: The study's settings that differ by model (section 6.3: ResNet-50 trained for 60 epochs);
#: ``training.defaults`` and the run entry override them.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"resnet50_gru": {"epochs": 60}}


def ablation_name(run: str, height: str, crop_size: int, input_size: int) -> str:
    """The grid run of ``run`` at one source height (``native`` or ``h<lines>``), crop size and
    network input size."""
    return f"{run}-{height}-c{crop_size}-in{input_size}"


def height_label(height: int | str) -> str:
    """A grid height as it appears in names: ``native`` or ``h<lines>``."""
    return NATIVE if height == NATIVE else f"h{height}"


def cell_resolution(height: int | str, crop_size: int) -> str:
    """The crops an ablation cell trains on: NATIVE for the face stage's own (the native clip
    at :data:`NATIVE_CROP`), else ``<height label>-c<crop size>``."""
    if height == NATIVE and crop_size == NATIVE_CROP:
        return NATIVE
    return f"{height_label(height)}-c{crop_size}"


def parse_resolution(resolution: str) -> tuple[int | None, int]:
    """``"h720-c224"`` -> (720, 224); ``"native-c448"`` -> (None, 448); NATIVE -> (None, 112):
    the source height (None: the clip as it is) and the crop size of a run's crops."""
    if resolution == NATIVE:
        return None, NATIVE_CROP
    height, crop = resolution.rsplit("-c", 1)
    return (None if height == NATIVE else int(height.removeprefix("h"))), int(crop)


def seed_name(config: str, seed: int) -> str:
    """The run of ``config`` trained with ``seed`` (when a configuration has several seeds)."""
    return f"{config}-seed{seed}"


def _seeded(config: str, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The runs of one configuration: one per seed of its ``seeds`` (one, named ``config``,
    without ``seeds`` or with a single seed), each with ``config`` naming the configuration."""
    settings = dict(settings)
    seeds = settings.pop("seeds", None)
    if seeds is None:
        return {config: {**settings, "config": config}}
    if len(seeds) == 1:
        return {config: {**settings, "seed": seeds[0], "config": config}}
    return {seed_name(config, seed): {**settings, "seed": seed, "config": config} for seed in seeds}


def expand_runs(
    runs: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
    ablation: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Flatten run entries into ``{run name: settings}``.

    Each settings dict is the model's :data:`MODEL_DEFAULTS` overlaid with ``defaults`` and
    then the entry, plus ``resolution`` (NATIVE, or ``h<height>`` for a run on clips scaled to
    that height), ``ablation_of`` (the configuration a grid cell repeats, else None), ``entry``
    (the run entry it comes from) and ``config`` (its configuration: the run less its seed).
    Grid options (lists) expand to configurations named ``<name>-<option><value>-...`` in the
    entry's option order. ``ablation`` (``runs``, ``heights``, ``crop_sizes``, ``input_sizes``,
    ``seeds``) repeats every configuration of each named entry at every source height x crop
    size x input size no larger than the crop, named by :func:`ablation_name` and trained on
    the crops :func:`cell_resolution` names, with the ablation's ``seeds`` if given (the run
    itself too); the cell at
    the native height, crop :data:`NATIVE_CROP` and the run's own input size is the
    configuration itself. ``seeds`` (a list) repeats every configuration once per seed, as
    runs named by :func:`seed_name` when there are several: seeds are repeats to average, never
    a grid to choose from.
    """
    configs: dict[str, dict[str, Any]] = {}
    of_entry: dict[str, list[str]] = {}
    for name, entry in runs.items():
        settings = {**MODEL_DEFAULTS.get(entry["model"], {}), **(defaults or {}), **entry}
        grid = {
            key: value
            for key, value in settings.items()
            if isinstance(value, list) and key not in LIST_OPTIONS
        }
        for combination in itertools.product(*grid.values()):
            chosen = dict(zip(grid, combination, strict=True))
            config = name + "".join(f"-{key}{value}" for key, value in chosen.items())
            configs[config] = {
                **settings,
                **chosen,
                "resolution": NATIVE,
                "ablation_of": None,
                "entry": name,
            }
            of_entry.setdefault(name, []).append(config)
    ablation = ablation or {}
    for name in ablation.get("runs", []):
        if name not in of_entry:
            raise Affect4kError(f"training.ablation.runs names {name!r}, which is no training run")
        for config in of_entry[name]:
            if ablation.get("seeds") is not None:
                # The run itself is the grid's reference cell: it has the cells' seeds.
                configs[config]["seeds"] = ablation["seeds"]
            base = configs[config]
            grid = itertools.product(
                ablation["heights"], ablation["crop_sizes"], ablation["input_sizes"]
            )
            for height, crop, size in grid:
                resolution = cell_resolution(height, crop)
                if size > crop or (
                    resolution == NATIVE and size == base.get("input_size", DEFAULT_INPUT_SIZE)
                ):
                    continue
                cell = {**base, "resolution": resolution, "input_size": size, "ablation_of": config}
                configs[ablation_name(config, height_label(height), crop, size)] = cell
    expanded: dict[str, dict[str, Any]] = {}
    for config, settings in configs.items():
        expanded.update(_seeded(config, settings))
    return expanded


#: The study's network input side (section 6.3), the default of every run's ``input_size``.
DEFAULT_INPUT_SIZE = TrainConfig.input_size
