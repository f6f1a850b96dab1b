"""The config schema as the one home of defaults and allowed values (affect4k.config.schema)."""

from __future__ import annotations

import pytest
import yaml

from affect4k.config.schema import (
    SCHEMA_PATH,
    schema_default,
    schema_enum,
    schema_node,
    schema_range,
)
from affect4k.core.errors import Affect4kError
from affect4k.labels.split import SPLIT_METHODS
from affect4k.model.device import BACKENDS, DEVICES
from affect4k.video.frames import JPEG_QUALITY_RANGE

SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.mark.parametrize(
    "key", ["faces.detect_width", "annotation.max_gap_s", "evaluation.batch_size"]
)
def test_schema_default_is_the_schemas_own(key: str):
    """What ``affect4k predict`` and the tests use for a setting they are not given."""
    section, name = key.split(".")
    assert schema_default(key) == SCHEMA["properties"][section]["properties"][name]["default"]


def test_allowed_values_come_from_the_schema_and_follow_an_edit_of_it():
    """The modules' lists are the schema's: an edit of the schema is all a new value needs."""
    assert tuple(SCHEMA["properties"]["database"]["properties"]["split"]["enum"]) == SPLIT_METHODS
    assert schema_enum("training.backend") == BACKENDS and "jax" in BACKENDS
    assert schema_enum("training.device") == DEVICES
    quality = schema_node("frames.jpeg_quality")
    assert range(quality["minimum"], quality["maximum"] + 1) == JPEG_QUALITY_RANGE
    assert schema_range("frames.jpeg_quality") == JPEG_QUALITY_RANGE
    assert "vgg16_gru" in schema_enum("$defs.run.model")


def test_the_schema_names_a_key_it_cannot_find_or_a_missing_default_or_list():
    with pytest.raises(Affect4kError, match="no key faces.no_such_key"):
        schema_default("faces.no_such_key")
    with pytest.raises(Affect4kError, match="videos has no default"):
        schema_default("videos")
    with pytest.raises(Affect4kError, match="faces.detect_width lists no allowed values"):
        schema_enum("faces.detect_width")
