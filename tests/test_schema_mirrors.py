"""Every Python value that mirrors a value of the config schema (a default, the allowed values)
equals it, so the two cannot drift apart unnoticed. The workflow passes every setting from the
config, so a second default in Python is only what a direct caller of the package gets; until
each has one home (issue 22), this list names them. Add a pair when you add a mirror; better,
take the setting as an argument without a default, or read it with
:func:`affect4k.config.settings.schema_default` where code outside the workflow needs one."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest
import yaml

from affect4k.config.settings import SCHEMA_PATH, schema_default
from affect4k.core.errors import Affect4kError

SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())

#: (Python value, schema value). Python: a module attribute ``affect4k.mod.NAME`` or a
#: parameter default ``affect4k.mod.function(param)``. Schema: property names from the top (or
#: ``$defs.<name>``), then the keyword compared: ``default``, ``enum`` (compared as a set with
#: a tuple's items or a dict's keys) or ``range`` (``range(minimum, maximum + 1)``).
MIRRORS = [
    ("affect4k.video.frames.JPEG_QUALITY_RANGE", "frames.jpeg_quality.range"),
    ("affect4k.faces.detectors.DEFAULT_MIN_SCORE", "faces.detector.enum"),
    ("affect4k.faces.detectors.make_detector(model)", "faces.model.default"),
    ("affect4k.faces.detectors.make_detector(min_score)", "faces.min_score.default"),
    (
        "affect4k.labels.annotate.annotate_video(min_annotators)",
        "annotation.min_annotators.default",
    ),
    ("affect4k.labels.database.SPLIT_METHODS", "database.split.enum"),
    ("affect4k.model.device.BACKENDS", "training.backend.enum"),
    ("affect4k.config.settings.BACKEND_MODULES", "training.backend.enum"),
    ("affect4k.model.device.DEVICES", "training.device.enum"),
    ("affect4k.model.architectures.MODEL_NAMES", "$defs.run.model.enum"),
    ("affect4k.config.run_settings.INPUT_CONVENTIONS", "$defs.run.input_convention.enum"),
    ("affect4k.dataset.release.LICENSES", "release.license.enum"),
]

#: Pairs that drift today, with the issue that fixes them. Their test is a strict xfail of the
#: comparison only: it fails once the values agree (then remove the entry here) and when the
#: Python value is gone (then remove the pair from MIRRORS too).
DRIFTING: dict[tuple[str, str], str] = {}


def python_value(spec: str) -> Any:
    match = re.fullmatch(r"([\w.]+)\.(\w+)(?:\((\w+)\))?", spec)
    assert match, f"not a module attribute or a parameter default: {spec}"
    module, name, parameter = match.groups()
    value = getattr(importlib.import_module(module), name)
    if parameter is None:
        return value
    default = inspect.signature(value).parameters[parameter].default
    assert default is not inspect.Parameter.empty, f"{spec} has no default"
    return default


def schema_value(path: str) -> Any:
    *keys, keyword = path.split(".")
    node = SCHEMA
    if keys[0] == "$defs":
        node, keys = SCHEMA["$defs"][keys[1]], keys[2:]
    for key in keys:
        node = node["properties"][key]
    if keyword == "range":
        return range(node["minimum"], node["maximum"] + 1)
    return node[keyword]


@pytest.mark.parametrize(
    ("python", "schema"),
    [
        pytest.param(
            *pair,
            marks=pytest.mark.xfail(reason=DRIFTING[pair], raises=AssertionError, strict=True),
        )
        if pair in DRIFTING
        else pair
        for pair in MIRRORS
    ],
    ids=[python for python, _ in MIRRORS],
)
def test_python_mirror_equals_the_schema(python: str, schema: str):
    ours, theirs = python_value(python), schema_value(schema)
    if schema.endswith(".enum"):
        assert set(ours) == set(theirs), f"{python} {sorted(ours)} != schema {schema} {theirs}"
    else:
        ours = list(ours) if isinstance(ours, tuple) else ours
        assert ours == theirs, f"{python} = {ours!r}, schema {schema} = {theirs!r}"


@pytest.mark.parametrize(
    "key", ["faces.detect_width", "annotation.max_gap_s", "evaluation.batch_size"]
)
def test_schema_default_is_the_schemas_own(key: str):
    """What ``affect4k predict`` and the tests use for a setting they are not given."""
    assert schema_default(key) == schema_value(f"{key}.default")


def test_schema_default_names_a_key_it_cannot_find():
    with pytest.raises(Affect4kError, match="no key faces.no_such_key"):
        schema_default("faces.no_such_key")
    with pytest.raises(Affect4kError, match="videos has no default"):
        schema_default("videos")
