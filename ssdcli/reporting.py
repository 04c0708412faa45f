"""The one interface every command's ``run(request, reporter)`` talks to while it works.

A command package never prints: it calls its reporter, and the CLI module decides how a message
looks (Rich, which console, escaping). Commands that say more than notes and warnings (training's
data summary, detect's per-frame results) extend :class:`Reporter` with a protocol of their own,
in their package. No torch and no Rich here (layer 0).
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Where a command's messages go while it runs.

    ``note`` is information (a default chosen, a file written); ``warn`` something the user
    should look at that does not stop the command.
    """

    def note(self, text: str) -> None:
        """One line of information, plain text (no markup)."""

    def warn(self, text: str) -> None:
        """One line about something not right that the command worked around, plain text."""

