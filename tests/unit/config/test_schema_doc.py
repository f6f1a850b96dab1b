"""config/README.md is the schema's descriptions (affect4k.config.schema_doc), never a second
text.
"""

from __future__ import annotations

import yaml
from helpers import REPO

from affect4k.config import schema_doc


def test_config_readme_is_generated_from_the_current_schema():
    schema = yaml.safe_load((REPO / schema_doc.SCHEMA).read_text(encoding="utf-8"))
    written = (REPO / schema_doc.README).read_text(encoding="utf-8")
    assert written == schema_doc.markdown(schema), (
        f"{schema_doc.README} is out of date with {schema_doc.SCHEMA}: run "
        f"`{schema_doc.COMMAND}` in the repository root"
    )


def test_every_key_is_a_row_with_its_type_default_and_description():
    schema = {
        "description": "Top.",
        "required": ["a"],
        "properties": {
            "a": {"type": "string", "description": "Path of {x|y}; named <run>-`<k>`."},
            "b": {
                "type": "object",
                "default": {},
                "properties": {
                    "c": {"type": "integer", "minimum": 1, "default": 3, "description": "C."},
                    "d": {"type": "string", "enum": ["p", "q"], "default": "q"},
                },
            },
            "runs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/run"}},
        },
        "$defs": {"run": {"type": "object", "properties": {"e": {"type": "boolean"}}}},
    }
    lines = schema_doc.markdown(schema).splitlines()
    assert "| `a` | string, required |  | Path of {x\\|y}; named \\<run>-`<k>`. |" in lines
    assert "| `b` | object |  |  |" in lines  # a section's default {} is not shown
    assert "| `b.c` | integer, >= 1 | `3` | C. |" in lines
    assert "| `b.d` | string, one of `p`, `q` | `q` |  |" in lines
    assert "| `runs.<name>` | entry by name (see [`run`](#run)) |  |  |" in lines
    assert lines[lines.index("## run") :][4] == "| `e` | boolean |  |  |"
