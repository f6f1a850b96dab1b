"""Which package code a workflow job runs, and a digest of it that changes when the code does.

Snakemake reruns a job when its script changes, but a workflow script here is a thin call into
``affect4k``: the logic it runs lives in the modules it imports. Every rule therefore carries
``code_digest`` of its script as a param, so editing a module a stage imports makes that
stage's outputs stale (``snakemake --list-params-changes`` shows them), and editing a module it
does not import leaves it alone. The digest is taken over each module's syntax tree without
docstrings, so a reworded comment or docstring, or reformatting, reruns nothing.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "affect4k"


def _imported_names(tree: ast.AST) -> set[str]:
    """Dotted names ``tree`` may import, anywhere (not only on top): ``import a.b`` names
    ``a.b``; ``from a import x`` names ``a`` and ``a.x``, which is a module or a name defined
    in ``a`` (callers keep only names that are files)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str, src: Path) -> Path | None:
    """The file of dotted module ``name`` under ``src``; a package is its ``__init__.py``."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(script: Path, src: Path, package: str = PACKAGE) -> list[Path]:
    """Every file of ``package`` (under ``src``) that ``script`` imports, directly or not, and
    the modules of the script's own folder it imports on the way (``common.py``).

    Parent packages count too (importing ``a.b`` runs ``a/__init__.py``). Sorted, so the list
    and any digest of it are the same on every machine.
    """
    script = Path(script)
    seen: set[Path] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        names = _imported_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        # Modules of the script's own folder (the workflow's common.py) count too.
        local = {script.parent / f"{name}.py" for name in names}
        for module in {m for m in local if m.is_file()} - seen - {script}:
            seen.add(module)
            pending.append(module)
        for name in (n for n in names if n == package or n.startswith(f"{package}.")):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                module = _module_file(".".join(parts[:depth]), src)
                if module is not None and module not in seen:
                    seen.add(module)
                    pending.append(module)
    return sorted(seen)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(script: Path, src: Path, package: str = PACKAGE) -> str:
    """A short digest of the code in ``script``'s import closure (its own text excluded:
    Snakemake already tracks the script). Equal digests mean the same code, up to docstrings,
    comments and formatting."""
    digest = hashlib.sha256()
    for module in import_closure(script, src, package):
        tree = _without_docstrings(ast.parse(module.read_text(encoding="utf-8")))
        name = module.relative_to(src if module.is_relative_to(src) else script.parent)
        digest.update(name.as_posix().encode() + b"\0")
        digest.update(ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()[:16]
