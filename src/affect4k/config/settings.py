"""The workflow's config, checked and resolved once, before any job is planned.

The JSON schema checks each key on its own; this module checks what the schema cannot (keys
that must agree with each other, a backend that must be installed) and turns the training
section into the final settings of every job: defaults merged, grids and the ablation
expanded, ``pretrain:<name>`` references resolved to the model file they name. A run whose
initialisation needs a file the config does not name is left out with a warning that names the
key to set, so a study config that lists only its videos still plans the study's other models.
Every message names the config key, and nothing here touches a video or a model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affect4k.config.run_settings import (
    DEFAULT_PRETRAINED,
    MIN_INPUT_SIZE,
    PRETRAINED_MODELS,
    TrainConfig,
    input_convention,
)
from affect4k.config.runs import LIST_OPTIONS, expand_runs
from affect4k.config.schema import SCHEMA_PATH, schema_default
from affect4k.core.errors import Affect4kError

#: ``pretrained`` values that name no file of this workflow: a keras.applications download.
DOWNLOADED_WEIGHTS = ("imagenet",)
#: Models whose conv stack must start from ``pretrained`` weights; the value says which.
NEEDS_PRETRAINED = {"vgg16_affwild_gru": "the Aff-Wild VGG16 weights file"}
#: Pretraining on a corpus of still images (AffectNet's layout): each image is a sequence of its
#: own, every one labelled, in batches large enough for a CCC pooled over the batch. They
#: override ``training.defaults``; the pretraining entry overrides them.
STILL_IMAGE_SETTINGS = {"sequence_length": 1, "batch_size": 64}
STILL_IMAGE_FORMATS = ("affectnet",)


@dataclass(frozen=True)
class TrainingPlan:
    """Every training job's final settings, and the runs left out (with the key to set).

    ``runs`` and ``pretrain`` map a job name to the settings its script hands to
    :class:`affect4k.config.run_settings.TrainConfig`; ``pretrained`` is ``None``, ``"imagenet"`` or
    the path of a weights file (a pretraining run's ``model.keras`` or the user's own).
    """

    runs: dict[str, dict[str, Any]]
    pretrain: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


#: Keys of a run's settings that the workflow reads (which crops, which corpus, which grid cell)
#: and a training job does not.
WORKFLOW_KEYS = ("resolution", "corpus", "ablation_of", "entry", "config", "trained_on")
#: The name ``trained_on`` gives the database's own videos (its validation and test splits).
DATABASE = "database"
#: The evaluation sets of the database's own splits.
DATABASE_SETS = ("validation", "test")


def job_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a training job gets: its settings less :data:`WORKFLOW_KEYS`."""
    return {key: value for key, value in settings.items() if key not in WORKFLOW_KEYS}


def scored_parts(config: Mapping[str, Any]) -> dict[str, str]:
    """Which frames of each evaluation set the tables score: the database's ``validation``
    and ``test`` splits;
    an external corpus ``all`` of it, or its ``held_out`` part where a pretraining trains on
    it (the rest), so no evaluation set holds a frame a run or its initialisation trained on."""
    pretrained_on = {entry.get("corpus") for entry in config["training"]["pretrain"].values()}
    parts = {name: name for name in DATABASE_SETS}
    for corpus in config["evaluation"]["corpora"]:
        parts[corpus] = "held_out" if corpus in pretrained_on else "all"
    return parts


#: The split value of the frames each scored part takes (None: every frame).
SCORED_SPLIT = {"validation": "validation", "test": "test", "held_out": "test", "all": None}


def pretrain_model(name: str) -> str:
    """The model file a pretraining run writes (the path a ``pretrain:<name>`` run loads)."""
    return f"results/pretrained/{name}/model.keras"


#: Most values (mappings, lists and scalars, each counted where YAML aliases repeat it) a config
#: may hold. A real config holds a few hundred; nested aliases (the "billion laughs") make a
#: kilobyte of YAML stand for billions, which only become memory when printed or copied (a
#: schema error message does both), so they are counted here without expanding anything.
MAX_CONFIG_VALUES = 100_000
#: Deepest nesting of mappings and lists a config may have (the schema's is 6).
MAX_CONFIG_DEPTH = 32


def checked_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (as read from YAML) checked and completed, in place and returned: the one
    reader of a config, shared by the workflow and the annotation app so both refuse the same
    files with the same words.

    In order: what the schema cannot see (:func:`check_values`, before the schema's messages
    print the config), the schema itself (which fills in every default), then what must agree
    across keys (:func:`check_config`) and the ``clips`` keys as the user wrote them
    (:func:`check_clips`, which needs the section before its defaults). Every error names the
    key.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    clips_as_given = dict(config["clips"]) if isinstance(config.get("clips"), dict) else {}
    check_values(config)
    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as error:
        raise Affect4kError(str(error)) from None
    check_config(config)
    check_clips(clips_as_given)
    return config


def check_values(config: Any) -> None:
    """Refuse what the schema cannot see, before it validates (and may print) ``config``: more
    than :data:`MAX_CONFIG_VALUES` values once aliases are expanded or nesting deeper than
    :data:`MAX_CONFIG_DEPTH`, and a number that is not finite (``.nan`` and ``.inf`` pass every
    ``minimum`` and ``maximum`` of JSON schema, since NaN compares false and infinity is a
    float). Every other bound of a number is the schema's, so the ranges are documented once.
    """
    sizes: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        if depth > MAX_CONFIG_DEPTH:
            raise Affect4kError(f"nested deeper than {MAX_CONFIG_DEPTH} levels")
        if id(node) not in sizes:
            children = node.values() if isinstance(node, dict) else node
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in children)
            if sizes[id(node)] > MAX_CONFIG_VALUES:
                raise Affect4kError(
                    f"its YAML aliases (&anchor, *anchor) expand to more than "
                    f"{MAX_CONFIG_VALUES:,} values; write the values out"
                )
        return sizes[id(node)]

    def finite(node: Any, key: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            raise Affect4kError(f"{key}: {node} is not a finite number")
        if isinstance(node, dict):
            for name, child in node.items():
                finite(child, f"{key}.{name}" if key else str(name))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                finite(child, f"{key}[{index}]")

    size(config, 0)
    finite(config, "")


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse settings that are valid one by one but cannot work together."""
    faces = config["faces"]
    if faces["detector"] == "insightface" and not faces["model"]:
        raise Affect4kError(
            "faces.model: faces.detector insightface needs a detector, a local .onnx file "
            "(e.g. scrfd_500m_bnkps.onnx) or a model pack name such as buffalo_l"
        )
    annotators = config["annotators"]
    min_annotators = config["annotation"]["min_annotators"]
    if min_annotators is not None and min_annotators > len(annotators):
        raise Affect4kError(
            f"annotation.min_annotators: {min_annotators} is more than the "
            f"{len(annotators)} annotator(s) listed in annotators"
        )


#: The ``clips`` keys each codec reads (affect4k.video.clip.ClipEncoding); the other codec ignores
#: them.
CODEC_KEYS = {"mpeg4": ("qscale",), "libx264": ("crf", "preset", "tune", "x264_options")}


def check_clips(given: Mapping[str, Any]) -> None:
    """Refuse a ``clips`` key that the chosen codec ignores.

    ``given`` is the section as the user's config wrote it, before the schema's defaults fill
    it in: a ``crf`` kept from a config written when clips were H.264 would otherwise change
    nothing, silently.
    """
    codec = given.get("codec", schema_default("clips.codec"))
    chosen = f"clips.codec is {codec}" + ("" if "codec" in given else " (the default)")
    for other, keys in CODEC_KEYS.items():
        for key in (key for key in keys if other != codec and key in given):
            raise Affect4kError(
                f"clips.{key}: only codec {other} reads it, and {chosen}; "
                f"set clips.codec: {other}, or leave clips.{key} out"
            )


def check_calibration_id(annotations: str, videos: Collection[str]) -> None:
    """Refuse a video that would take the calibration clip's id: its folder of traces in
    ``annotations``, and in the annotation app its time origin (the workflow and the app both
    ask here)."""
    from affect4k.labels.calibration import CALIBRATION_ID

    if CALIBRATION_ID in videos:
        raise Affect4kError(
            f"videos: the id {CALIBRATION_ID} is the calibration clip's (its traces live in "
            f"{annotations}/{CALIBRATION_ID}/); rename the video"
        )


def check_calibration(config: Mapping[str, Any], videos: Collection[str]) -> None:
    """Refuse a video that would take the calibration clip's folder of traces, and, under
    ``annotation.lag: measured``, a listed annotator without a calibration trace (the first
    missing file named; paths relative to the working directory, as the workflow's)."""
    from affect4k.labels.calibration import missing_traces

    check_calibration_id(config["annotations"], videos)
    if config["annotation"]["lag"] == "measured":
        missing = missing_traces(Path(config["annotations"]), config["annotators"])
        if missing:
            raise Affect4kError(
                f"annotation.lag: measured needs every annotator's calibration trace; "
                f"{missing[0]} is missing ({len(missing)} in all): trace the calibration clip "
                f"in affect4k annotate"
            )


def check_backend(backend: str) -> None:
    """A training backend must be importable before any job is planned on it, and no exported
    ``KERAS_BACKEND`` may name another (every model job refuses that at its start)."""
    if importlib.util.find_spec(backend) is None:
        raise Affect4kError(
            f"training.backend: {backend} is not installed in this environment "
            f"(pip install {backend}, or choose another backend)"
        )
    exported = os.environ.get("KERAS_BACKEND")
    if exported and exported != backend:
        raise Affect4kError(
            f"training.backend: {backend}, but KERAS_BACKEND={exported} is exported; unset it "
            "or change the key (the config decides the backend of every job)"
        )


def check_model(key: str, settings: Mapping[str, Any]) -> None:
    """Refuse, naming the key, a run whose job would fail when it builds its model.

    ``settings`` are complete (every :class:`TrainConfig` field given). These are the
    assertions of :func:`affect4k.model.architectures.build_model` that depend on more than one key
    (the schema checked each value alone); a weights file's own content is the job's to check.
    """
    model, width, pretrained = settings["model"], settings["width"], settings["pretrained"]
    backbone = model.split("_")[0]
    if settings["input_size"] < MIN_INPUT_SIZE[backbone]:
        where = (
            "training.ablation.input_sizes" if settings.get("ablation_of") else f"{key}.input_size"
        )
        raise Affect4kError(
            f"{where}: {model} needs an input of at least {MIN_INPUT_SIZE[backbone]} pixels "
            f"(its pooling), got {settings['input_size']}"
        )
    if pretrained is not None and model not in PRETRAINED_MODELS:
        raise Affect4kError(
            f"{key}.pretrained: {model} trains from scratch and takes no weights; initialised "
            f"models are {', '.join(PRETRAINED_MODELS)}"
        )
    if (pretrained or DEFAULT_PRETRAINED.get(model)) == "imagenet" and width != 1:
        raise Affect4kError(
            f"{key}.width: ImageNet's VGG16 weights need width 1 (VGG16's own channels), got "
            f"{width:g}; give this run width: 1 (training.defaults.width applies to every run)"
        )


def check_pretraining_source(
    key: str, settings: Mapping[str, Any], name: str, parent: Mapping[str, Any]
) -> None:
    """A run initialised from the pretraining ``name`` (complete ``parent`` settings) loads its
    VGG16 conv layers by name and shape: the pretraining must have them, at the run's width."""
    if not parent["model"].startswith("vgg16"):
        raise Affect4kError(
            f"{key}.pretrained: training.pretrain.{name} trains {parent['model']}, which has no "
            "VGG16 conv layers to start from (pretrain a vgg16_* model)"
        )
    if parent["width"] != settings["width"]:
        raise Affect4kError(
            f"{key}.width: {settings['width']:g} differs from training.pretrain.{name}'s width "
            f"{parent['width']:g}; conv weights load only into a model of the same width"
        )


def _convention(key: str, pretrained: str | None, declared: str | None) -> str:
    """The input convention of ``pretrained`` weights (:func:`input_convention`); ImageNet's
    weights saw caffe input, so another declared convention is refused naming the key."""
    if pretrained in DOWNLOADED_WEIGHTS and declared not in (None, "caffe"):
        raise Affect4kError(
            f"{key}.input_convention: pretrained {pretrained!r} weights need the caffe input "
            f"convention, got {declared!r}"
        )
    return input_convention(pretrained, declared)


def _resolve_pretrained(
    key: str, settings: dict[str, Any], pretrain: Mapping[str, Any], warnings: list[str]
) -> dict[str, Any] | None:
    """``settings`` with ``pretrained`` resolved, or None where the run must be left out."""
    source = settings.get("pretrained")
    declared = settings.get("input_convention")
    if source is None and settings["model"] in DEFAULT_PRETRAINED:
        # What the model starts from unless told otherwise (ImageNet's VGG16), said here, so
        # its input convention is that of those weights.
        source = DEFAULT_PRETRAINED[settings["model"]]
        settings = {**settings, "pretrained": source}
    if source is None:
        needs = NEEDS_PRETRAINED.get(settings["model"])
        if needs:
            warnings.append(
                f"{key}: left out, {settings['model']} needs {needs}; set {key}.pretrained to "
                f"its path (or to pretrain:<name> for a pretraining run of this workflow)"
            )
            return None
        return {**settings, "input_convention": _convention(key, None, declared)}
    if source.startswith("pretrain:"):
        name = source.removeprefix("pretrain:")
        if name not in pretrain:
            raise Affect4kError(
                f"{key}.pretrained: {source!r} names no entry of training.pretrain "
                f"(entries: {', '.join(pretrain) or 'none'})"
            )
        # The pretraining run's weights bring the convention it was trained with.
        parent = pretrain[name]
        inherited = _convention(
            f"training.pretrain.{name}", parent.get("pretrained"), parent.get("input_convention")
        )
        # What the pretraining's own initialisation saw, the run's weights saw too.
        seen = [*settings.get("trained_on", []), *parent.get("trained_on", [])]
        settings = {**settings, "pretrained": pretrain_model(name)}
        if seen:
            settings["trained_on"] = list(dict.fromkeys(seen))
        declared = declared or inherited
    elif source not in DOWNLOADED_WEIGHTS and not Path(source).is_file():
        raise Affect4kError(f"{key}.pretrained: weights file {source} does not exist")
    elif settings["model"] in NEEDS_PRETRAINED and "trained_on" not in settings:
        warnings.append(
            f"{key}.trained_on: not given; declare what {source} was trained on (the Aff-Wild "
            f"VGG16: [affwild2]), or its tables may score frames its weights saw"
        )
    return {**settings, "input_convention": _convention(key, source, declared)}


def _complete(key: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with every training field given (the study's default where the config is
    silent) and checked now, so a job gets final settings and never reinterprets them. The
    schema checked each value; :func:`check_model` checks what must agree."""
    config = TrainConfig.from_settings(job_settings(settings))
    workflow = {name: settings[name] for name in WORKFLOW_KEYS if name in settings}
    complete = {**dataclasses.asdict(config), **workflow}
    check_model(key, complete)
    return complete


def resolve_training(config: Mapping[str, Any]) -> TrainingPlan:
    """The final settings of every pretraining and training job of ``config``."""
    training = config["training"]
    corpora = config["evaluation"]["corpora"]
    warnings: list[str] = []
    pretrain: dict[str, dict[str, Any]] = {}
    for name, entry in training["pretrain"].items():
        key = f"training.pretrain.{name}"
        if entry.get("corpus") not in corpora:
            raise Affect4kError(
                f"{key}.corpus: must name one of evaluation.corpora "
                f"({', '.join(corpora) or 'none configured'}), got {entry.get('corpus')!r}"
            )
        still = corpora[entry["corpus"]]["format"] in STILL_IMAGE_FORMATS
        if "seeds" in entry:
            raise Affect4kError(f"{key}.seeds: a pretraining run is one run; give its seed")
        # training.defaults' seeds repeat the runs; a pretraining keeps its own seed.
        defaults = {name: value for name, value in training["defaults"].items() if name != "seeds"}
        settings = {**defaults, **(STILL_IMAGE_SETTINGS if still else {}), **entry}
        if any(isinstance(v, list) for name, v in settings.items() if name not in LIST_OPTIONS):
            raise Affect4kError(f"{key}: a pretraining run cannot be a grid")
        resolved = _resolve_pretrained(key, settings, training["pretrain"], warnings)
        if resolved is not None:
            pretrain[name] = _complete(key, resolved)
    defaults = {
        **({"seeds": training["seeds"]} if training["seeds"] else {}),
        **training["defaults"],
    }
    expanded = expand_runs(training["runs"], defaults, training["ablation"])
    runs = {}
    for name, settings in expanded.items():
        key = f"training.runs.{name}"
        resolved = _resolve_pretrained(key, settings, pretrain, warnings)
        if resolved is not None:
            runs[name] = _complete(key, resolved)
            source = str(settings.get("pretrained"))
            if source.startswith("pretrain:"):
                parent = source.removeprefix("pretrain:")
                check_pretraining_source(key, runs[name], parent, pretrain[parent])
    declared = {f"training.pretrain.{name}": entry for name, entry in pretrain.items()}
    declared.update({f"training.runs.{entry['entry']}": entry for entry in runs.values()})
    for key, settings in declared.items():
        warnings += _undeclared_sets(key, settings.get("trained_on", []), corpora)
    if runs or pretrain:
        check_backend(training["backend"])
    return TrainingPlan(runs=runs, pretrain=pretrain, warnings=warnings)


def _undeclared_sets(key: str, trained_on: list[str], corpora: Mapping[str, Any]) -> list[str]:
    """Warnings for ``trained_on`` names that are no evaluation set: nothing can be excluded
    for them (a corpus this config does not evaluate on)."""
    names = {item.partition("/")[0] for item in trained_on}
    return [
        f"{key}.trained_on: {name} is no evaluation set (database or one of "
        f"evaluation.corpora), so nothing is excluded for it"
        for name in sorted(names - {DATABASE, *corpora})
    ]


def seen_frames(trained_on: list[str], eval_set: str) -> tuple[tuple[str, ...], bool]:
    """What of ``eval_set`` a run's weights saw, from its ``trained_on`` (``<set>`` or
    ``<set>/<video>``, the set ``database`` or a corpus name): the videos to leave unscored,
    and whether it saw an unknown part (the whole set named), which makes the rows
    ``contaminated`` since no frame can be excluded."""
    target = DATABASE if eval_set in DATABASE_SETS else eval_set
    videos, whole = [], False
    for item in trained_on:
        name, _, video = item.partition("/")
        if name == target:
            if video:
                videos.append(video)
            else:
                whole = True
    return tuple(videos), whole


def seen_corpora(
    settings: Mapping[str, Any], pretrain: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Corpora whose people a run's weights saw, for the identity overlap (see
    :func:`affect4k.faces.persons.overlap_touched`): its pretraining's corpus, whose ``train`` part
    that pretraining trained on, and every corpus its ``trained_on`` names (``all``: which of
    its people were seen is not known)."""
    seen = {
        entry["corpus"]: "train"
        for name, entry in pretrain.items()
        if settings.get("pretrained") == pretrain_model(name)
    }
    for item in settings.get("trained_on", []):
        name = item.partition("/")[0]
        if name != DATABASE:
            seen[name] = "all"
    return seen


def check_trained_on(runs: Mapping[str, Mapping[str, Any]], videos: Collection[str]) -> None:
    """A ``trained_on`` entry ``database/<video>`` must name a video of videos.tsv."""
    for name, settings in runs.items():
        for item in settings.get("trained_on", []):
            set_name, _, video = item.partition("/")
            if set_name == DATABASE and video and video not in videos:
                raise Affect4kError(
                    f"training.runs.{name}.trained_on: {item!r} names no video of videos.tsv"
                )
