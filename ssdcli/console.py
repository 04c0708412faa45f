"""Rich consoles that keep every digit when the output goes to a file or a pipe.

Rich lays tables out for the terminal's width and falls back to 80 columns when there is no
terminal, so ``ssd eval ... > log.txt`` would cut a wide table's cells (``100x1…``) and wrap
titles mid-phrase. Logs and CI output are where tables are read most, so a console whose stream
is not a terminal lays out for :data:`FILE_WIDTH` columns instead: tables keep their natural width
(none of ours expands) and nothing is cut. ``COLUMNS`` in the environment still wins.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions

FILE_WIDTH = 1000
"""Columns laid out for a file or pipe: wider than any table the commands print."""


class OutputConsole(Console):
    """A :class:`rich.console.Console` that is :data:`FILE_WIDTH` wide when not on a terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("width") is None:
            self._width = None  # Rich froze COLUMNS at construction; read it when laying out

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        dimensions = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(FILE_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def make_console(stderr: bool = False, **options: Any) -> OutputConsole:
    """A console for stdout (results, tables) or stderr (progress, notes), never highlighting."""
    options.setdefault("highlight", False)
    return OutputConsole(stderr=stderr, **options)
