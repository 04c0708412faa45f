"""Layer rules the report modules keep: metrics stay numpy-only, viz imports no command package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ssdcli"
COMMANDS = ("train", "evaluate", "detect", "export", "inspect", "cli")


def _imports(path: Path) -> set[str]:
    """Every absolute module named by an import anywhere in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "metrics").glob("*.py")), ids=lambda p: p.name)
def test_metrics_import_no_torch(path: Path) -> None:
    assert {n for n in _imports(path) if n.split(".")[0] in ("torch", "torchvision")} == set()


@pytest.mark.parametrize("path", sorted((PACKAGE / "viz").glob("*.py")), ids=lambda p: p.name)
def test_viz_imports_no_command_package(path: Path) -> None:
    command_modules = tuple(f"ssdcli.{name}" for name in COMMANDS)
    assert {n for n in _imports(path) if n.startswith(command_modules)} == set()
