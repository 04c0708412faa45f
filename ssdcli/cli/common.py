"""Option helpers shared by the command modules: the recipe argument, ``--set``, consoles.

Use them with ``typing.Annotated`` so every command spells its recipe options the same way::

    def train(
        recipe: Annotated[str | None, recipe_argument("shapes_tiny")] = None,
        sets: SetOption = None,
    ) -> None:
        cfg = resolve_recipe(recipe, sets, default="shapes_tiny", explicit={"data.batch_size": bs})

No torch import here (``ssd --help`` must stay light).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from ssdcli.config import Recipe, load_recipe, override_recipe
from ssdcli.console import make_console
from ssdcli.errors import UsageError

console = make_console()  # stdout: tables, results, written paths
err_console = make_console(stderr=True)  # stderr: progress, notes and errors


def recipe_argument(default_name: str) -> Any:
    """The optional positional ``RECIPE`` argument (a YAML path or a shipped recipe name)."""
    return typer.Argument(
        metavar="RECIPE",
        show_default=False,
        help=(
            "Recipe: a YAML file or the name of a shipped recipe (voc300, voc512, coco300, ...). "
            f"Default: {default_name}."
        ),
    )


def set_option() -> Any:
    """The repeatable ``--set KEY=VALUE`` option (values parsed as YAML)."""
    return typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        show_default=False,
        help="Override a recipe value, parsed as YAML, e.g. --set train.lr=1e-2 (repeatable).",
    )


SetOption = Annotated[list[str] | None, set_option()]


def resolve_recipe(
    recipe: str | None,
    sets: Sequence[str] | None,
    default: str,
    explicit: Mapping[str, Any] | None = None,
) -> Recipe:
    """Load a recipe with the full precedence: defaults < file < ``--set`` < explicit options.

    Args:
        recipe: the RECIPE argument (None: ``default``).
        sets: the ``--set`` values.
        default: the command's default recipe name.
        explicit: dotted keys of options given on the command line; None values are skipped,
            so pass an option's value directly when its default is None ("not given").
    """
    loaded = load_recipe(recipe, list(sets or ()), default=default)
    given = {key: value for key, value in (explicit or {}).items() if value is not None}
    return override_recipe(loaded, given) if given else loaded


def parse_int_list(text: str, option: str) -> list[int]:
    """``"0,2"`` -> ``[0, 2]``.

    Raises:
        UsageError: not a comma-separated list of non-negative integers.
    """
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise UsageError(f"{option} {text!r}: expected comma-separated integers >= 0, e.g. 0,2")
    return values
