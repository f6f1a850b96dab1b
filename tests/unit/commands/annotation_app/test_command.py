"""``affect4k annotate`` at start-up: the annotator, the config, the workflow it finds and the
port it listens on (affect4k.commands.annotation_app.command)."""

from __future__ import annotations

import shutil
import socket

import pytest
import yaml
from helpers import REPO
from helpers.annotation_app import ME, idle_app, videos_tsv

from affect4k.commands import cli
from affect4k.commands.annotation_app.server import AppServer
from affect4k.core.errors import Affect4kError


def test_command_refuses_an_unknown_annotator_or_a_bad_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "Snakefile", tmp_path / "Snakefile")
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    good = {"videos": "videos.tsv", "annotations": "traces"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(good))
    assert cli.main(["annotate", "--annotator", "nobody", "--configfile", "config.yaml"]) == 1
    assert "'nobody' is not in the config key 'annotators'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**good, "annotators": "a1"}))
    assert cli.main(["annotate", "--annotator", "a1", "--configfile", "bad.yaml"]) == 1
    assert "bad.yaml" in capsys.readouterr().err


def test_command_finds_the_installed_workflow_from_a_study_folder(tmp_path, monkeypatch, capsys):
    from affect4k.commands.annotation_app.command import find_snakefile

    monkeypatch.chdir(tmp_path)
    # No Snakefile here: the one of the clone the package runs from.
    assert find_snakefile(None) == REPO / "Snakefile"
    with pytest.raises(Affect4kError, match="--snakefile"):
        find_snakefile(tmp_path / "Snakefile")
    # Each error names the flag that fixes it.
    assert cli.main(["annotate", "--annotator", "a1"]) == 1
    assert "give yours with --configfile" in capsys.readouterr().err
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"videos": "videos.tsv"}))
    argv = ["annotate", "--annotator", "a1", "--configfile", "config.yaml", "--host", "0.0.0.0"]
    assert cli.main(argv) == 1
    assert "--allow-host" in capsys.readouterr().err


def test_a_config_that_is_not_finite_or_expands_to_billions_is_refused_by_the_app(
    tmp_path, monkeypatch, capsys
):
    from helpers.hostile import BILLION_LAUGHS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "videos.tsv").write_text(videos_tsv())
    (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS + "\n")
    argv = ["annotate", "--annotator", "a1", "--snakefile", str(REPO / "Snakefile")]
    assert cli.main([*argv, "--configfile", "laughs.yaml"]) == 1
    err = capsys.readouterr().err
    assert "laughs.yaml: its YAML aliases" in err and len(err) < 1000
    nan = "videos: videos.tsv\nannotations: a\nannotation: {max_lag_s: .nan}\n"
    (tmp_path / "nan.yaml").write_text(nan)
    assert cli.main([*argv, "--configfile", "nan.yaml"]) == 1
    assert "nan.yaml: annotation.max_lag_s: nan is not a finite number" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    app = idle_app(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):  # not an AttributeError from server_close
            AppServer(app, "127.0.0.1", port)
        monkeypatch.chdir(tmp_path)
        argv = ["annotate", "--annotator", ME, "--port", str(port), "--configfile", "config.yaml"]
        assert cli.main([*argv, "--snakefile", str(REPO / "Snakefile")]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
