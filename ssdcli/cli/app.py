"""The ``ssd`` Typer app, its command list, and the one place where errors become exit codes.

Exit codes: 0 success, 1 user or data error (:class:`~ssdcli.errors.SsdError`), 2 usage or recipe
error, 130 interrupted (Ctrl-C). ``ssd --debug COMMAND`` shows the full traceback instead of one
line. Command modules import the engine (and so torch) inside their functions, so ``ssd --help``
stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ssdcli import __version__
from ssdcli.cli import (
    benchmark,
    detect,
    evaluate,
    export,
    inspect_priors,
    pipes,
    prepare_data,
    train,
)
from ssdcli.errors import SsdError

err_console = Console(stderr=True, soft_wrap=True)


class _ErrorMappingGroup(TyperGroup):
    """Runs a subcommand and turns an :class:`SsdError` into one red line and its exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SsdError as error:
            if _debug_enabled(ctx):
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(error.exit_code) from None


def _debug_enabled(ctx: typer.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("SSD_DEBUG") == "1"


app = typer.Typer(
    cls=_ErrorMappingGroup,
    name="ssd",
    help="Train, evaluate, run and export SSD object detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ssdcli {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one line."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Train, evaluate, run and export SSD object detectors."""
    ctx.obj = {"debug": debug}


app.callback()(_root)

# Commands, one line each; every module imports torch lazily inside its function.
app.command("inspect-priors")(inspect_priors.inspect_priors)
app.command("prepare-data")(prepare_data.prepare_data)
app.command("train")(train.train_command)
app.command("eval")(evaluate.eval_command)
app.command("detect")(detect.detect_command)
app.command("export")(export.export_command)
app.command("benchmark")(benchmark.benchmark_command)


def main() -> None:
    """Console-script entry point (``ssd``).

    Output piped into a reader that quits early (``ssd detect DIR | head -1``) stops printing
    and the command still finishes its files (:mod:`ssdcli.cli.pipes`); a ``BrokenPipeError``
    that escapes anyway ends the command quietly with status 0, as if the output had been read.
    """
    pipes.guard_std_streams()
    try:
        sys.exit(app())
    except BrokenPipeError:
        pipes.silence_std_streams()
        sys.exit(0)
