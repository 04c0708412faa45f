"""Run folders: the one place where ``runs/<name>`` folders are named (``ssd train``,
``ssd detect``). Never an existing run: a new folder gets the first free number.

No torch here (layer 0); the folder is named, not created.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssdcli.errors import UsageError

NAME_PATTERN = r"[\w.\-]+"
"""What ``ssd train --name`` accepts: letters, digits, '.', '-' and '_'."""


def unique_run_dir(base: Path, stem: str, *, always_numbered: bool) -> Path:
    """The first folder under ``base`` for ``stem`` that does not exist yet.

    Args:
        base: the folder of runs (``runs/``, ``runs/detect/``).
        stem: the run's name before its number (a recipe stem, an input's name).
        always_numbered: True gives ``stem-1``, ``stem-2``, ... (training runs); False gives
            ``stem``, then ``stem-2``, ``stem-3``, ... (detect runs).
    """
    n = 1
    candidate = base / (f"{stem}-1" if always_numbered else stem)
    while candidate.exists():
        n += 1
        candidate = base / f"{stem}-{n}"
    return candidate


def named_run_dir(base: Path, name: str, *, must_be_new: bool = True) -> Path:
    """``base/name`` for a name the user chose (``ssd train --name``).

    Args:
        must_be_new: refuse a folder that exists and is not empty (False in the training
            processes other than the first, which share the folder rank 0 checked).

    Raises:
        UsageError: a name with other characters than :data:`NAME_PATTERN`, or a folder that
            already holds a run.
    """
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '-' and '_' only")
    run_dir = base / name
    if must_be_new and run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(
            f"run folder {run_dir} already exists; pick another --name, or continue it with "
            f"--resume {run_dir}"
        )
    return run_dir
