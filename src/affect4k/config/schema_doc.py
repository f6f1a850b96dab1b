"""``config/README.md`` from the config schema's descriptions, so the page a user reads and the
schema the workflow validates against cannot disagree (tests/unit/config/test_schema_doc.py).

Run ``python3 -m affect4k.config.schema_doc`` in the repository root after changing
``src/affect4k/config/config.schema.yaml``; it rewrites ``config/README.md``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from affect4k.config.run_settings import TrainConfig
from affect4k.config.schema import SCHEMA_PATH
from affect4k.core.files import write_atomic

#: The schema as the repository names it (package data of src/affect4k/).
SCHEMA = Path("src/affect4k") / SCHEMA_PATH.relative_to(SCHEMA_PATH.parents[1])
README = Path("config/README.md")
COMMAND = "python3 -m affect4k.config.schema_doc"

HEADER = f"""\
<!-- Generated from {SCHEMA}
     by `{COMMAND}` (run in the repository root):
     edit the schema's descriptions, not this file. -->
# Configuration

Without `--configfile` the workflow runs the demo, `config/config.yaml`. The study's own config
is `config/study.yaml`; a config of your own (see the README's own-study walkthrough) needs only
`videos` and `annotations`. Every key below is checked against
`{SCHEMA}` before any job runs; a config breaking it is refused naming the key.

## Deploying a study folder

As the Snakemake workflow catalog deploys workflows: a folder of your own whose
`workflow/Snakefile` uses this workflow as a module, with your config in its `config/`.

```bash
snakedeploy deploy-workflow <repository URL> my-study --tag v0.2.0   # or a local checkout
cd my-study   # edit config/config.yaml (it starts as the demo's), then:
snakemake --cores 8 results/tables.csv
```

`snakedeploy` copies this `config/` folder (the demo's config and this page) and writes
`workflow/Snakefile` with `module affect4k: snakefile: ...` and `use rule * from affect4k`
(add `as affect4k_*` to prefix the rule names). From a local checkout, snakedeploy 0.17
writes the module's `snakefile:` as `"Snakefile"`: replace it with the checkout's Snakefile,
e.g. `"/home/me/affect4k/Snakefile"`; every output goes to the study folder
(tests/workflow/test_deploy.py). The package code runs from the checkout next to the Snakefile.
Tags follow `affect4k --version` (CHANGELOG.md).

"""

_BOUNDS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
    "minItems": "items >=",
    "maxItems": "items <=",
    "minProperties": "entries >=",
}


def _flow(value: Any) -> str:
    """A value as the YAML a user would write in the config, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.strip().removesuffix("...").strip()


def _anchor(name: str) -> str:
    return f"[`{name}`](#{name.lower()})"


def _ref(prop: dict) -> str | None:
    """The ``$defs`` name that ``prop`` is (a ``$ref``, or an ``allOf`` of one ``$ref``)."""
    refs = [prop] + prop.get("allOf", [])
    names = [part["$ref"].rsplit("/", 1)[1] for part in refs if "$ref" in part]
    return names[0] if names else None


def _kind(prop: dict) -> str:
    """Type, allowed values and bounds of ``prop``, e.g. ``integer >= 144``."""
    ref = _ref(prop)
    if ref is not None:
        return f"see {_anchor(ref)}"
    if "const" in prop:
        return f"`{_flow(prop['const'])}`"
    if "anyOf" in prop:
        return " or ".join(_kind(option) for option in prop["anyOf"])
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "array" in types and "items" in prop:
        types[types.index("array")] = f"list of ({_kind(prop['items'])})"
    parts = [" or ".join(types)] if types else []
    if "enum" in prop:
        parts.append("one of " + ", ".join(f"`{_flow(value)}`" for value in prop["enum"]))
    parts += [f"{sign} {_flow(prop[key])}" for key, sign in _BOUNDS.items() if key in prop]
    if prop.get("uniqueItems"):
        parts.append("no repeats")
    if "pattern" in prop:
        parts.append(f"matching `{prop['pattern']}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Markdown table cell: one line, ``|`` escaped, ``<`` escaped outside code spans (GitHub
    would read ``<run>`` as an HTML tag and drop it)."""
    text = " ".join(text.split()).replace("|", "\\|")
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "\\<") for p in pieces)


#: Shared definitions whose defaults live in Python, not in the schema: a training run's options
#: are :class:`TrainConfig`'s fields (the schema gives them no ``default``, which validation
#: would otherwise write into every run and so override ``training.defaults``).
PYTHON_DEFAULTS = {
    "run_options": {
        field.name: field.default
        for field in dataclasses.fields(TrainConfig)
        if field.default is not dataclasses.MISSING
    }
}


def _rows(
    schema: dict, path: str, defaults: Mapping[str, object] | None = None
) -> list[tuple[str, str, str, str]]:
    """(key, kind, default, description) of every key under ``schema``, depth first;
    ``defaults`` gives the defaults of keys the schema leaves without one."""
    rows = []
    required = set(schema.get("required", []))
    entries = list(schema.get("properties", {}).items())
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        entries.append(("<name>", extra))
    for key, prop in entries:
        name = f"{path}.{key}" if path else key
        nested = "properties" in prop or isinstance(prop.get("additionalProperties"), dict)
        kind = _kind(prop)
        if key == "<name>":
            kind = f"entry by name ({kind})"
        if "propertyNames" in prop:
            kind += f", names matching `{prop['propertyNames']['pattern']}`"
        if key in required:
            kind += ", required"
        if "default" not in prop and defaults is not None and key in defaults:
            prop = {**prop, "default": defaults[key]}
        shown = "default" in prop and not (nested and prop["default"] == {})
        default = f"`{_flow(prop['default'])}`" if shown else ""
        rows.append((f"`{name}`", kind, default, prop.get("description", "")))
        if _ref(prop) is None:
            rows += _rows(prop, name)
    return rows


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(schema: dict) -> str:
    """The configuration page: the schema's own description, a table of every key, then one
    table per shared definition (``$defs``) that keys refer to."""
    text = HEADER + " ".join(schema.get("description", "").split()) + "\n\n"
    text += _table(_rows(schema, ""))
    for name, definition in schema.get("$defs", {}).items():
        text += f"\n## {name}\n\n"
        if "description" in definition:
            text += " ".join(definition["description"].split()) + "\n\n"
        base = _ref(definition)
        if base is not None:
            text += f"Every option of {_anchor(base)}, and:\n\n"
        text += _table(_rows(definition, "", PYTHON_DEFAULTS.get(name)))
    return text


def main(root: Path = Path()) -> int:
    """Rewrite ``config/README.md`` under ``root`` from the schema under it."""
    schema = yaml.safe_load((root / SCHEMA).read_text(encoding="utf-8"))
    write_atomic(root / README, lambda temp: temp.write_text(markdown(schema), encoding="utf-8"))
    print(f"wrote {root / README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
