"""Every Python value that mirrors a value of the config schema (a default, the allowed values)
equals it, so the two cannot drift apart unnoticed. The workflow passes every setting from the
config, so a second default in Python is only what a direct caller of the package gets; until
each has one home (issue 22), this list names them. Add a pair when you add a mirror."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest
import yaml
from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

#: (Python value, schema value). Python: a module attribute ``affect4k.mod.NAME`` or a
#: parameter default ``affect4k.mod.function(param)``. Schema: property names from the top (or
#: ``$defs.<name>``), then the keyword compared: ``default``, ``enum`` (compared as a set with
#: a tuple's items or a dict's keys) or ``range`` (``range(minimum, maximum + 1)``).
MIRRORS = [
    ("affect4k.demo.scenes.make_demo_video(annotators)", "annotators.default"),
    ("affect4k.download.download_video(max_height)", "download.max_height.default"),
    ("affect4k.frames.export_frames(quality)", "frames.jpeg_quality.default"),
    ("affect4k.frames.JPEG_QUALITY_RANGE", "frames.jpeg_quality.range"),
    ("affect4k.detectors.DEFAULT_MIN_SCORE", "faces.detector.enum"),
    ("affect4k.detectors.make_detector(model)", "faces.model.default"),
    ("affect4k.detectors.make_detector(min_score)", "faces.min_score.default"),
    ("affect4k.faces.extract_faces(detect_width)", "faces.detect_width.default"),
    ("affect4k.predict_media.DETECT_WIDTH", "faces.detect_width.default"),
    ("affect4k.faces.IdentitySettings(cluster_threshold)", "faces.cluster_threshold.default"),
    ("affect4k.faces.IdentitySettings(subject_threshold)", "faces.subject_threshold.default"),
    ("affect4k.faces.IdentitySettings(embed_every)", "faces.embed_every.default"),
    ("affect4k.traces.resample_trace(max_gap_s)", "annotation.max_gap_s.default"),
    ("affect4k.annotate.annotate_video(max_gap_s)", "annotation.max_gap_s.default"),
    ("affect4k.annotate.annotate_video(min_annotators)", "annotation.min_annotators.default"),
    ("affect4k.database.SPLITS", "database.split.enum"),
    ("affect4k.database.build_database(split)", "database.split.default"),
    ("affect4k.database.build_database(test_fraction)", "database.test_fraction.default"),
    (
        "affect4k.database.build_database(validation_fraction)",
        "database.validation_fraction.default",
    ),
    ("affect4k.database.build_database(seed)", "database.seed.default"),
    ("affect4k.database.build_database(sequence_length)", "database.sequence_length.default"),
    ("affect4k.demo.scenes.make_demo_video(width)", "demo.width.default"),
    ("affect4k.demo.scenes.make_demo_video(height)", "demo.height.default"),
    ("affect4k.demo.scenes.make_demo_video(seconds)", "demo.seconds.default"),
    ("affect4k.demo.scenes.make_demo_video(seed)", "demo.seed.default"),
    ("affect4k.device.BACKENDS", "training.backend.enum"),
    ("affect4k.settings.BACKEND_MODULES", "training.backend.enum"),
    ("affect4k.device.DEVICES", "training.device.enum"),
    ("affect4k.models.MODEL_NAMES", "$defs.run.model.enum"),
    ("affect4k.runs.INPUT_CONVENTIONS", "$defs.run.input_convention.enum"),
    ("affect4k.predict_media.BATCH_SIZE", "evaluation.batch_size.default"),
    ("affect4k.tables.build_table(resamples)", "evaluation.resamples.default"),
    ("affect4k.ablation.build_ablation(resamples)", "evaluation.resamples.default"),
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
