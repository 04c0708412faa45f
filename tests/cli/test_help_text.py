"""Every ``--help`` reads like a person wrote it: no type tags, plain usage lines, choices and
defaults shown."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app

runner = CliRunner()
COMMANDS = ["", "prepare-data", "train", "eval", "detect", "export", "inspect-priors", "benchmark"]
TYPE_TAGS = ("<bool>", "<list", "range>", "<str>", "<int>", "<float>", "<path>")


def _help(command: str) -> str:
    args = [command, "--help"] if command else ["--help"]
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_type_tags(command: str) -> None:
    text = _help(command)
    for tag in TYPE_TAGS:
        assert tag not in text, f"ssd {command} --help shows {tag!r}"
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "[[" not in usage, usage


OPTIONAL_ACTIONS = {
    "--set",
    "--out",
    "--json",
    "--save-json",
    "--save-detections",
    "--plot",
    "--classes",
    "--image",
    "--data",
    "--calibration",
    "--preview",
    "--resume",
    "--images-dir",
    "--levels",
    "--cells",
    "--name",
    "--split",
    "--metric",
    "--batch",
    "--report-threshold",
    "--format",
}
"""Options whose absence means "not done" or whose help names what happens without them."""


@pytest.mark.parametrize("command", COMMANDS[1:])
def test_every_value_option_says_its_default(command: str) -> None:
    """An option that takes a value shows ``[default: ...]`` or says in its help what happens
    when it is not given."""
    import typer.main

    group = typer.main.get_command(app)
    click_command = group.commands[command]  # type: ignore[attr-defined]
    ctx = click_command.make_context(command, [], resilient_parsing=True)
    for param in click_command.get_params(ctx):
        if param.param_type_name != "option" or param.is_flag or "--help" in param.opts:
            continue
        name = max(param.opts, key=len)
        help_text = (param.help or "").lower()
        shown = param.show_default is not False and param.default is not None
        if name in OPTIONAL_ACTIONS:
            assert "default" in help_text or shown or param.default is None, name
            continue
        assert shown or "default" in help_text, f"ssd {command} {name}: no default shown"


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("detect", "--precision", "auto|float32|bf16"),
        ("eval", "--precision", "auto|float32|bf16"),
        ("detect", "--device", "cpu|cuda|cuda:N|mps|auto"),
        ("train", "--device", "cpu|cuda|cuda:N|mps|auto"),
        ("export", "--format", "onnx|torchscript"),
        ("prepare-data", "--format", "voc|coco|yolo"),
    ],
)
def test_choices_are_listed(command: str, option: str, choices: str) -> None:
    line = next(line for line in _help(command).splitlines() if f" {option} " in line)
    assert choices in line, line


def test_usage_errors_have_the_one_error_prefix() -> None:
    result = runner.invoke(app, ["detect", "x.jpg", "--bogus"])
    assert result.exit_code == 2
    assert result.output.startswith("error: No such option: --bogus"), result.output
    assert "Error" not in result.output and "ssd detect -h" in result.output
    missing = runner.invoke(app, ["export"])
    assert missing.exit_code == 2 and missing.output.startswith("error: Missing argument")
