"""Wrong paths on the command line: one line naming the path, what it is and what was expected,
exit code 2 (a usage error), before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()


def _one_line_error(
    args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, code: int = 2
) -> str:
    """The one stderr line of a command that fails with exit code ``code`` (2: usage error; 1
    for a model or checkpoint path, whose errors have always been exit 1)."""
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_directory_as_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recipes").mkdir()
    line = _one_line_error(["train", "recipes/"], tmp_path, monkeypatch)
    assert (
        "recipe recipes/: is a directory; expected a recipe YAML file or a shipped recipe name"
        in line
    )
    assert "not found" not in line


def test_a_directory_as_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "a.jpg").write_bytes(b"")
    line = _one_line_error(["detect", "a.jpg", "--model", "runs/x"], tmp_path, monkeypatch, 1)
    assert (
        "--model runs/x: is a directory; expected a model file "
        "(.pt, .onnx, .xml, .tflite or TorchScript)" in line
    )


def test_resume_from_a_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = _one_line_error(["train", "--resume", "runs/no_such_run"], tmp_path, monkeypatch)
    assert (
        "--resume runs/no_such_run: does not exist; expected a run folder from ssd train "
        "(runs/<name>)" in line
    )


def test_resume_from_a_folder_that_is_no_run(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    line = _one_line_error(["train", "--resume", "runs/empty"], tmp_path, monkeypatch)
    assert "--resume runs/empty: has no recipe.yaml; expected a run folder" in line


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["eval", "runs/x"], 1, "checkpoint runs/x: is a directory; expected an ssdcli"),
        (["export", "gone.pt"], 1, "checkpoint gone.pt: does not exist; expected an ssdcli"),
        (["inspect-priors", "--out", "runs"], 2, "--out runs: is a directory; expected a PNG"),
        (["inspect-priors", "--image", "runs"], 1, "--image runs: is a directory; expected an"),
        (["detect", "a.jpg", "--out", "a.jpg"], 2, "--out a.jpg: is a file; expected an output"),
        (["export", "a.jpg", "--out", "runs"], 2, "--out runs: is a directory; expected a file"),
        (["eval", "a.jpg", "--data", "runs"], 1, "--data runs: is a directory; expected a"),
        (["eval", "a.jpg", "--json", "runs"], 2, "--json runs: is a directory; expected a JSON"),
    ],
)
def test_every_command_names_the_path(tmp_path: Path, monkeypatch, args, code, expected) -> None:
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "a.jpg").write_bytes(b"")
    assert expected in _one_line_error(args, tmp_path, monkeypatch, code)
