"""The layer rules of ARCHITECTURE.md, checked statically on the source and at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ssdcli"


def _imported_modules(path: Path) -> set[str]:
    """Every module named by an ``import`` or ``from ... import`` anywhere in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions): what importing ``path`` costs."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_data_never_imports_model() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "data").rglob("*.py")
        if any(name.startswith("ssdcli.model") for name in _imported_modules(path))
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["config.py", "errors.py"])
def test_config_and_errors_import_no_torch(module: str) -> None:
    assert not {
        name for name in _imported_modules(PACKAGE / module) if name.split(".")[0] == "torch"
    }


def test_cli_modules_import_torch_lazily() -> None:
    heavy = ("torch", "torchvision", "ssdcli.engine", "ssdcli.model")
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _top_level_imports(path) if name.startswith(heavy)
        )
        for path in (PACKAGE / "cli").glob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ssdcli.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
