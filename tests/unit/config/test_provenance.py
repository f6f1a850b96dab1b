"""Which package code a workflow script runs (affect4k.config.provenance), on a package made
here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from helpers import REPO

from affect4k.config.provenance import _imported_names, code_digest, import_closure


def _tree(root: Path) -> Path:
    """src/pkg with modules a -> b (imported inside a function), c, unused; scripts/ with a
    script that imports pkg.a and a local helper that imports pkg.c."""
    pkg = root / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Package."""\n')
    (pkg / "a.py").write_text('"""A."""\n\n\ndef f():\n    from pkg import b\n\n    return b.g()\n')
    (pkg / "b.py").write_text("def g():\n    return 1\n")
    (pkg / "c.py").write_text("H = 2\n")
    (pkg / "unused.py").write_text("U = 3\n")
    scripts = root / "scripts"
    scripts.mkdir()
    (scripts / "helper.py").write_text("from pkg.c import H\n")
    script = scripts / "step.py"
    script.write_text("from helper import H\n\nwith open('x') as f:\n    from pkg.a import f\n")
    return script


def test_the_closure_follows_nested_and_local_imports_only(tmp_path):
    script = _tree(tmp_path)
    names = [
        p.relative_to(tmp_path).as_posix() for p in import_closure(script, tmp_path / "src", "pkg")
    ]
    assert names == [
        "scripts/helper.py",
        "src/pkg/__init__.py",
        "src/pkg/a.py",
        "src/pkg/b.py",
        "src/pkg/c.py",
    ]


def test_the_digest_changes_with_code_and_not_with_docs_comments_or_format(tmp_path):
    script = _tree(tmp_path)
    src = tmp_path / "src"
    before = code_digest(script, src, "pkg")
    b = src / "pkg" / "b.py"
    b.write_text('"""Now documented."""\n\n\n# a comment\ndef g( ):\n    return 1  # one\n')
    assert code_digest(script, src, "pkg") == before
    (src / "pkg" / "unused.py").write_text("U = 4\n")
    assert code_digest(script, src, "pkg") == before
    b.write_text("def g():\n    return 2\n")
    assert code_digest(script, src, "pkg") != before


def test_every_workflow_script_runs_the_job_helper_and_its_package_module():
    for script in (REPO / "workflow/scripts").glob("*.py"):
        if script.name == "common.py":
            continue
        closure = {p.name for p in import_closure(script, REPO / "src")}
        assert {"common.py", "workflow.py", "errors.py"} <= closure, script.name


def test_the_design_maps_every_rule_to_its_script_and_modules():
    """docs/design.md's stage map names rules, scripts and modules that exist, each script
    imports the first module of its row, and no rule with a script is left out."""
    import re

    text = (REPO / "docs/design.md").read_text()
    section = text.split("## Map: stage -> rule -> script -> module")[1].split("\n## ")[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    mapped = set()
    for _, rules, scripts, modules in rows[2:]:
        smk = REPO / "workflow/rules" / re.search(r"\(`(\w+\.smk)`\)", rules).group(1)
        for rule in re.findall(r"`(\w+)\*?`", rules.split("(")[0]):
            mapped.add(rule)
            if not rule.endswith("_"):
                assert re.search(rf"(?m)^\s*rule {rule}:", smk.read_text()), (rule, smk)
        names = [m.replace(".", "/") for m in re.findall(r"`([\w.]+)`", modules)]
        for script in re.findall(r"`(\w+\.py)`", scripts):
            closure = {p.relative_to(REPO / "src/affect4k").with_suffix("").as_posix()
                       for p in import_closure(REPO / "workflow/scripts" / script, REPO / "src")
                       if p.is_relative_to(REPO / "src/affect4k")}  # fmt: skip
            assert names[0] in closure, (script, names[0])
        for name in names:
            assert (REPO / "src/affect4k" / f"{name}.py").is_file(), name
    declared = set()
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"(?m)^\s*rule ", smk.read_text())[1:]:
            if "script:" in block:
                declared.add(block.split(":")[0])
    unmapped = {r for r in declared if r not in mapped and not any(
        m.endswith("_") and r.startswith(m) for m in mapped)}  # fmt: skip
    assert not unmapped, unmapped


#: Rule families that share one script (docs/design.md's naming rule): rule -> script stem.
SHARED_SCRIPTS = {"pretrain": "train", "report_": "report"}


def test_each_rule_script_and_command_module_is_named_by_the_naming_rule():
    """A rule's script is named like the rule (or its family's, SHARED_SCRIPTS), and every
    ``affect4k`` command runs a module of ``affect4k.commands``, so a command never shares a module
    with a rule."""
    import re

    from affect4k.commands.cli import COMMANDS

    checked = 0
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"(?m)^\s*rule ", smk.read_text())[1:]:
            script = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', block)
            if script is None:
                continue
            rule = block.split(":")[0]
            family = [stem for prefix, stem in SHARED_SCRIPTS.items() if rule.startswith(prefix)]
            assert script.group(1) == (family[0] if family else rule), (rule, smk.name)
            checked += 1
    assert checked > 10
    for command, (module, _) in COMMANDS.items():
        assert module.startswith("affect4k.commands."), command


def test_no_two_modules_of_the_package_share_a_base_name():
    """One name per thing: a newcomer who reads ``faces`` or ``predict`` finds one module."""
    modules = [p for p in (REPO / "src/affect4k").rglob("*.py") if p.name != "__init__.py"]
    modules += [p.parent for p in (REPO / "src/affect4k").rglob("__init__.py")]
    stems: dict[str, list[str]] = {}
    for path in modules:
        stems.setdefault(path.stem, []).append(str(path.relative_to(REPO / "src")))
    assert len(modules) > 60
    twins = {stem: paths for stem, paths in stems.items() if len(paths) > 1}
    assert set(twins) <= {"__main__"}, twins


def test_only_the_demo_and_tests_import_the_demo():
    """The demo generator is a stand-in for YouTube, not a library: no stage, command or core
    module depends on it (the demo rules' scripts do)."""
    importers = []
    for path in (REPO / "src/affect4k").rglob("*.py"):
        if path.is_relative_to(REPO / "src/affect4k/demo"):
            continue
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            if name == "affect4k.demo" or name.startswith("affect4k.demo."):
                importers.append(str(path.relative_to(REPO)))
    assert not importers, importers


#: Loads the workflow (parsing only, nothing planned or run) and prints each rule with a
#: ``script:`` as {rule: [script path, its ``code`` param or null]}.
SCRIPT_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

repo = Path(sys.argv[1])
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(
            configfiles=[repo / "config/config.yaml"],
            config={
                "videos": str(repo / "config/demo/videos.tsv"),
                "takedown": str(repo / "config/takedown.tsv"),
            },
        ),
        snakefile=repo / "Snakefile",
        workdir=Path.cwd(),
    )._workflow
    print(json.dumps({
        rule.name: [str(Path(rule.basedir, rule.script).resolve()), rule.params.get("code")]
        for rule in workflow.rules if rule.script
    }))
"""


def test_every_script_rule_carries_the_digest_of_its_own_script(tmp_path):
    """The ``code`` param of each rule with a script is that script's package-code digest, so
    editing a module a job imports makes its outputs stale; a rule without it fails here."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT_RULES, str(REPO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rules = json.loads(result.stdout.splitlines()[-1])
    assert {"download", "train", "report_qc", "demo_video"} <= rules.keys()
    wrong = {
        rule: (Path(script).name, code)
        for rule, (script, code) in rules.items()
        if code != code_digest(Path(script), REPO / "src")
    }
    assert not wrong, f"rules whose params lack code=package_code(<their script>): {wrong}"
