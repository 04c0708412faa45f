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
from ssdcli.cli.common import err_console
from ssdcli.cli.plain_help import PlainHelpCommand, PlainHelpMixin
from ssdcli.errors import SsdError

try:  # newer Typer carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - Typer on the click package
    from click.exceptions import ClickException


class _ErrorMappingGroup(PlainHelpMixin, TyperGroup):
    """Runs a subcommand; every error, ours or the option parser's, becomes one ``error:`` line.

    :class:`SsdError` keeps its own exit code (1 data/user, 2 usage/recipe); the parser's usage
    errors (unknown option, missing argument, bad value) exit 2 and name the command's help.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SsdError as error:
            if _debug_enabled(ctx):
                raise
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # `ssd` alone: the help, exit 2
                error.show()
            else:
                print_error(_usage_error_line(error))
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def print_error(message: str) -> None:
    """One red ``error:`` line on stderr: the one prefix every failure of ``ssd`` uses."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _usage_error_line(error: ClickException) -> str:
    """``No such option: --bogus (see 'ssd detect -h')``: the parser's message and where to look."""
    message = error.format_message().replace("\n", " ").strip()
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return message
    usage = ctx.get_usage().removeprefix("Usage: ")
    return f"{message} (usage: {usage}; see '{ctx.command_path} -h')"


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
app.command("inspect-priors", cls=PlainHelpCommand)(inspect_priors.inspect_priors)
app.command("prepare-data", cls=PlainHelpCommand)(prepare_data.prepare_data)
app.command("train", cls=PlainHelpCommand)(train.train_command)
app.command("eval", cls=PlainHelpCommand)(evaluate.eval_command)
app.command("detect", cls=PlainHelpCommand)(detect.detect_command)
app.command("export", cls=PlainHelpCommand)(export.export_command)
app.command("benchmark", cls=PlainHelpCommand)(benchmark.benchmark_command)


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
