"""The layout of DESIGN.md holds: the import-linter contracts (layers config → operations →
campaigns → benefits → members → portal; the domains' approval kinds independent of each
other), no import hidden inside a function to dodge a cycle, and the kernel knowing no
domain."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "operations", "campaigns", "benefits", "members", "portal")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_linter_contracts_are_kept():
    result = subprocess.run(  # noqa: S603 - our own venv's lint-imports
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_broken_layer_is_reported(tmp_path):
    """The contract is not a formality: a kernel module importing a domain breaks it."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    for name in ("members", "benefits", "campaigns"):
        (tmp_path / name / "approvals.py").write_text("")
    (tmp_path / "portal" / "leak.py").write_text("import members\n")
    contracts = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]")[1]
    (tmp_path / "pyproject.toml").write_text("[tool.importlinter]" + contracts)

    result = subprocess.run(  # noqa: S603 - our own venv's lint-imports
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode != 0
    assert "portal.leak -> members" in result.stdout


def _function_local_imports() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if node.name == "ready" and path.name == "apps.py":
                    continue  # Django's hook for registering with the kernel, after models load
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        where = path.relative_to(ROOT)
                        found.append(f"{where}:{inner.lineno} {ast.unparse(inner)}")
    return found


def test_no_module_hides_an_import_inside_a_function():
    """Imports sit at the top of a module, where the layers can be read (and checked); the
    registries let the kernel reach up without one."""
    assert _function_local_imports() == []


def test_the_kernel_imports_no_other_app_of_the_project():
    others = {"config", "operations", "campaigns", "benefits", "members"}
    offending = []
    for path in sorted((ROOT / "portal").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            offending += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in others
            ]

    assert offending == []
