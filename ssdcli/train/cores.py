"""How many CPU cores a run keeps busy: CPU seconds of all its processes over wall seconds.

``resource.getrusage`` gives the CPU time (user + system) of this process (``RUSAGE_SELF``) and
of its children that have ended and been waited for (``RUSAGE_CHILDREN``). Loader workers and
training processes that are still running are not in ``RUSAGE_CHILDREN`` yet, so their time is
read from ``/proc/<pid>/stat`` (utime + stime of live children; Linux only, skipped elsewhere).
A child counted live at one reading and ended at the next moves from one source to the other,
so the sum stays consistent.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

__all__ = ["CpuClock", "cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _live_children_seconds(pid: int) -> float:
    """User + system CPU seconds of the live descendants of ``pid`` (0.0 without /proc)."""
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        children = [int(c) for c in children_file.read_text().split()]
    except (OSError, ValueError):
        return 0.0
    total = 0.0
    for child in children:
        try:
            # Fields after the command name (which may hold spaces): utime is the 14th field.
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS
        except (OSError, ValueError, IndexError):
            continue  # it ended between the two reads: RUSAGE_CHILDREN has it once waited for
        total += _live_children_seconds(child)
    return total


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and all its descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
        + _live_children_seconds(os.getpid())
    )  # fmt: skip


class CpuClock:
    """Wall time and CPU time since it was made; ``cores()`` is their ratio.

    On a 2-core machine 2.0 means both cores were kept busy all along by this run.
    """

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = cpu_seconds()

    def wall(self) -> float:
        """Wall seconds since the clock was made."""
        return time.perf_counter() - self.wall0

    def cpu(self) -> float:
        """CPU seconds of this process and its descendants since the clock was made."""
        return cpu_seconds() - self.cpu0

    def cores(self) -> float:
        """Mean number of cores busy: CPU seconds / wall seconds (0.0 before any time passed)."""
        wall = self.wall()
        return self.cpu() / wall if wall > 0 else 0.0
