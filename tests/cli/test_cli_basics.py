"""The ``ssd`` entry point: help, version, recipe errors and exit codes, import weight."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdcli import __version__
from ssdcli.cli.app import app

runner = CliRunner()


def test_help_lists_inspect_priors() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "inspect-priors" in result.stdout


def test_command_help_shows_recipe_and_set() -> None:
    result = runner.invoke(app, ["inspect-priors", "--help"])
    assert result.exit_code == 0
    assert "RECIPE" in result.stdout and "--set" in result.stdout and "--out" in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ssdcli {__version__}"


def recipe_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("priors:\n  clipp: true\n", ["unknown key priors.clipp", "did you mean priors.clip?"]),
        ("train:\n  lr: fast\n", ["train.lr", "expected float", "'fast'"]),
        ("model:\n  size_hw: [300, 300\n", ["invalid YAML at line"]),
        ("- just\n- a list\n", ["must be a mapping of sections"]),
    ],
)
def test_bad_recipe_exits_2_with_one_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = recipe_file(tmp_path, text)
    result = runner.invoke(app, ["inspect-priors", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    for fragment in expected:
        assert fragment in lines[0]


def test_missing_recipe_exits_2_listing_shipped_recipes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect-priors", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "missing.yaml" in result.stderr and "voc300, voc512" in result.stderr


def test_unknown_shipped_name_suggests_one() -> None:
    result = runner.invoke(app, ["inspect-priors", "voc30"])
    assert result.exit_code == 2
    assert "did you mean voc300?" in result.stderr


def test_debug_raises_the_error_instead_of_one_line() -> None:
    result = runner.invoke(app, ["--debug", "inspect-priors", "--set", "priors.clip=maybe"])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "RecipeError"


def test_config_and_help_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import ssdcli.config\n"
        "assert 'torch' not in sys.modules, 'import ssdcli.config imported torch'\n"
        "from typer.testing import CliRunner\n"
        "from ssdcli.cli.app import app\n"
        "for args in (['--help'], ['inspect-priors', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "    assert 'torch' not in sys.modules, f'ssd {args} imported torch'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
