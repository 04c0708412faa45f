"""Ctrl-C while training: finish the step, save a checkpoint, then stop."""

from __future__ import annotations

import signal
import threading
from typing import Any

from rich.console import Console


class StopSignal:
    """Ctrl-C handling while training: the first press asks the loop to stop after the current
    step (a checkpoint is then saved); the second raises ``KeyboardInterrupt`` at once."""

    def __init__(self, console: Console) -> None:
        self.requested = False
        self.console = console
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.console.print(
            "[yellow]stopping after this step and saving a checkpoint "
            "(Ctrl-C again to quit at once)[/]"
        )

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
