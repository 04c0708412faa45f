"""Help screens in plain words: ``--threshold FLOAT``, not ``--threshold <float range>``.

Typer labels every option with its Python type (``<bool>``, ``<list[str]>``, ``<int range>``) and
wraps arguments in braces in the usage line (``{SOURCE}...``, ``[[RECIPE]]``). The classes here
relabel them the way command-line tools usually do:

- flags carry no label (``--report``);
- values carry a metavar named for what they are: ``PATH``, ``N`` (integers), ``FLOAT``, ``TEXT``,
  or the choices themselves (``auto|float32|bf16``); an explicit ``metavar=`` wins;
- usage lines read ``SOURCE...`` for a required argument and ``[RECIPE]`` for an optional one.

Typer builds its own parameter objects, so :class:`PlainHelpCommand` (and the group mixin) turn
them into the plain subclasses when click asks for the parameter list; nothing else changes.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from typer.core import TyperArgument, TyperCommand, TyperOption

_NAMES_BY_TYPE = {int: "N", float: "FLOAT", str: "TEXT", bool: "BOOL"}


def plain_type_name(param: TyperOption | TyperArgument) -> str:
    """The label of a value: its choices, ``PATH``, ``N``, ``FLOAT`` or ``TEXT``."""
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        choices = descriptor.choices or ()
        return "|".join(str(getattr(choice, "value", choice)) for choice in choices)
    if descriptor.is_path:
        return "PATH"
    annotation: Any = descriptor.annotation
    if get_origin(annotation) is list and get_args(annotation):
        annotation = get_args(annotation)[0]
    return _NAMES_BY_TYPE.get(annotation, "VALUE")


class PlainOption(TyperOption):
    """An option labelled with a metavar (``PATH``, ``N``, ``a|b``), flags with nothing."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or plain_type_name(self)

    def display_type(self, ctx: Any) -> str:
        return self.display_type_rich(ctx) or ""


class PlainArgument(TyperArgument):
    """A positional argument shown as ``NAME`` (required) or ``[NAME]`` (optional)."""

    @property
    def display_name_raw(self) -> str:
        return (self.metavar or self.name or "ARG").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already says what it is

    def display_type(self, ctx: Any) -> str:
        return ""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name


def make_plain(params: list[Any]) -> list[Any]:
    """Turn Typer's parameter objects into the plain-labelled subclasses (in place)."""
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = PlainOption
        elif type(param) is TyperArgument:
            param.__class__ = PlainArgument
    return params


class PlainHelpMixin:
    """Mixed into a Typer command or group class: its parameters get plain labels."""

    def get_params(self, ctx: Any) -> list[Any]:
        return make_plain(super().get_params(ctx))  # type: ignore[misc]


class PlainHelpCommand(PlainHelpMixin, TyperCommand):
    """The command class every ``ssd`` subcommand uses."""
