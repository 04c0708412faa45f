"""Standard streams that survive a reader who stops reading (``ssd ... | head -1``).

When the reader of a pipe exits, the next write to it fails with ``BrokenPipeError`` (EPIPE;
Python ignores SIGPIPE). Left alone, that exception ends the command wherever it happens to print,
often before the files it was asked to write are written. The convention of command-line tools is
to stop printing and finish the work instead:

* :func:`guard_std_streams` replaces ``sys.stdout`` and ``sys.stderr`` with :class:`PipeSafeStream`
  wrappers, so ``print``, ``typer.echo`` and every Rich console (they look ``sys.stdout`` up at
  each write) go through them;
* on the first EPIPE a wrapper turns into a no-op and points the stream's file descriptor at
  ``os.devnull`` (``os.dup2``), so the bytes still in the original buffer and the interpreter's
  final flush go nowhere instead of raising "Exception ignored ... BrokenPipeError" at exit.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import TextIO


class PipeSafeStream(io.TextIOBase):
    """A text stream that forwards to ``stream`` until its reader has gone, then discards.

    Args:
        stream: the original ``sys.stdout`` or ``sys.stderr``.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except OSError as error:
                self._on_error(error)
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except OSError as error:
                self._on_error(error)

    def _on_error(self, error: OSError) -> None:
        if not is_broken_pipe(error):
            raise error
        self.broken = True
        silence(self.stream)

    # What Rich and click ask of a terminal stream.
    def isatty(self) -> bool:
        return not self.broken and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)


def is_broken_pipe(error: BaseException) -> bool:
    """True for a write to a pipe whose reader has exited."""
    return isinstance(error, BrokenPipeError) or (
        isinstance(error, OSError) and error.errno == errno.EPIPE
    )


def silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at ``os.devnull`` (and drop what its buffer holds), so
    that nothing written later, nor the interpreter's flush at exit, can fail."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # now into devnull: the buffer is empty at exit


def guard_std_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`PipeSafeStream` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, PipeSafeStream):
            setattr(sys, name, PipeSafeStream(stream))


def silence_std_streams() -> None:
    """After a ``BrokenPipeError`` escaped to the top level: stop both streams for good."""
    for stream in (sys.stdout, sys.stderr):
        target = stream.stream if isinstance(stream, PipeSafeStream) else stream
        if isinstance(stream, PipeSafeStream):
            stream.broken = True
        if target is not None:
            silence(target)
