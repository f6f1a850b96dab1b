"""The config schema: package data, and the one home of every setting's default and allowed
values.

The workflow validates a config against it (Snakefile); code outside the workflow (a command, a
benchmark, a test) reads a default here instead of copying it, and the modules that check a
value against its allowed set (:data:`affect4k.labels.split.SPLIT_METHODS`, the backends and
devices, the models) take that set from here. This module imports only ``core``, so any room
may import it.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, TypeVar

from affect4k.core.errors import Affect4kError

T = TypeVar("T")

#: The workflow's config schema, package data (so a wheel's ``affect4k predict`` finds it too).
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"


@functools.cache
def _schema() -> dict[str, Any]:
    import yaml

    try:
        return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Affect4kError(f"cannot read the config schema {SCHEMA_PATH} ({exc})") from None


def schema_node(key: str) -> dict[str, Any]:
    """The schema of ``key``: dotted from the top (``faces.detect_width``), or from a shared
    definition (``$defs.run.model``)."""
    node = _schema()
    parts = key.split(".")
    if parts[0] == "$defs" and len(parts) > 1:
        node, parts = node["$defs"].get(parts[1], {}), parts[2:]
    for part in parts:
        node = node.get("properties", {}).get(part)
        if node is None:
            raise Affect4kError(f"config schema {SCHEMA_PATH}: no key {key}")
    return node


def schema_default(key: str) -> Any:
    """The schema's default of ``key``: what code outside the workflow uses for a setting it is
    not given, so a default is written once."""
    node = schema_node(key)
    if "default" not in node:
        raise Affect4kError(f"config schema {SCHEMA_PATH}: {key} has no default")
    return node["default"]


def schema_enum(key: str) -> tuple[Any, ...]:
    """The values the schema allows for ``key``, in its order."""
    node = schema_node(key)
    if "enum" not in node:
        raise Affect4kError(f"config schema {SCHEMA_PATH}: {key} lists no allowed values")
    return tuple(node["enum"])


def schema_range(key: str) -> range:
    """The integers the schema allows for ``key`` (its ``minimum`` to its ``maximum``)."""
    node = schema_node(key)
    return range(node["minimum"], node["maximum"] + 1)


def from_schema(cls: type[T], section: str, **given: Any) -> T:
    """The settings dataclass ``cls``, each field the schema's default of ``section.<field>``
    unless ``given``: what code outside the workflow builds instead of copying defaults."""
    names = [item.name for item in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**({name: schema_default(f"{section}.{name}") for name in names} | given))
