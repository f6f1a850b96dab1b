"""One reader of a config (affect4k.config.settings.checked_config): the annotation app refuses
what the workflow refuses, with the same words, naming the file and the key."""

from pathlib import Path

import pytest
import yaml

from affect4k.commands.annotation_app.app import read_config
from affect4k.config.settings import checked_config
from affect4k.core.errors import Affect4kError

STUDY = {"videos": "videos.tsv", "annotations": "annotations"}


def test_checked_config_fills_in_the_schemas_defaults_in_place():
    config = {**STUDY, "annotation": {"lag": 0.5}}
    assert checked_config(config) is config
    assert config["annotation"]["lag"] == 0.5, "what the user wrote stays"
    assert config["annotation"]["fusion"] and config["clips"]["codec"], "defaults filled in"


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        # the schema's own check
        ({"annotation": {"fusion": "loudest"}}, "loudest"),
        # before the schema: a number that is not finite
        ({"annotation": {"max_gap_s": float("nan")}}, "annotation.max_gap_s: nan"),
        # keys that must agree
        ({"faces": {"detector": "insightface"}}, "faces.model"),
        ({"annotation": {"min_annotators": 9}}, "annotation.min_annotators"),
        # a clips key the codec ignores: checked on the section as written, before defaults
        ({"clips": {"crf": 23}}, "clips.crf: only codec libx264"),
    ],
)
def test_the_app_refuses_what_the_workflow_refuses_naming_file_and_key(tmp_path, keys, named):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **keys}))
    with pytest.raises(Affect4kError) as refused:
        read_config(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert named in str(refused.value)
    with pytest.raises(Affect4kError) as same:
        checked_config(yaml.safe_load(path.read_text()))
    assert str(refused.value) == f"{path}: {same.value}", "one reader, one message"


@pytest.mark.parametrize("text", ["- a list\n", "key: [unclosed\n"])
def test_a_config_that_is_not_a_mapping_is_refused_by_name(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(Affect4kError, match=rf"^{path}: "):
        read_config(path)
    with pytest.raises(Affect4kError, match="cannot read"):
        read_config(Path(tmp_path / "missing.yaml"))
