"""Writing a file so that readers see the old version or the new one, never half of one.

Every output the commands write (manifests, metrics JSON, reports, ``metrics.csv``, checkpoints,
exported models) goes through this module: the data is written to a temporary file in the same
folder (same file system, so the rename is atomic) and renamed onto the target only when writing
succeeded; an error or Ctrl-C removes the temporary file and leaves the target as it was.

* :func:`atomic_path` yields the temporary path, for writers that take a path
  (``Path.write_text``, ``onnx.save``, OpenVINO's ``save_model``); files that come in groups (an
  IR's ``.xml`` and ``.bin``) are renamed and removed together;
* :func:`atomic_file` yields an open binary file, optionally flushed to disk (``fsync``) before
  the rename, for files that must survive a power cut (checkpoints);
* :func:`write_text_atomic` writes a string.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temporary_path(path: str | Path, tag: str = "", keep_suffix: bool = False) -> Path:
    """The hidden name beside ``path`` that it is written under: ``.NAME.[TAG-]PID.tmp``.

    The process id keeps concurrent writers (DDP ranks, loader workers) apart, ``tag`` two
    temporary files of one process for one target.

    Args:
        path: the target.
        tag: names the temporary file's role (``"float"``, ``"int8"``), or empty.
        keep_suffix: end the name with ``path``'s suffix too, for writers and readers that
            choose by suffix (an IR's ``.xml`` finds its ``.bin`` by it).
    """
    path = Path(path)
    label = f"{tag}-{os.getpid()}" if tag else str(os.getpid())
    return path.with_name(f".{path.name}.{label}.tmp{path.suffix if keep_suffix else ''}")


def _alone(path: Path) -> list[Path]:
    return [path]


@contextmanager
def atomic_path(
    path: str | Path,
    *,
    tag: str = "",
    keep_suffix: bool = False,
    group: Callable[[Path], list[Path]] = _alone,
) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends.

    The parent folder is created. On an exception (Ctrl-C included) the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: the target.
        tag, keep_suffix: see :func:`temporary_path`.
        group: ``file -> [file, *companions]`` for files that come with others whose names
            follow from theirs (an IR's ``.bin``); they are renamed together, the main file last,
            so that a reader that finds it finds its companions too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, tag, keep_suffix)
    try:
        yield tmp
        pairs = list(zip(group(tmp), group(path), strict=True))
        for source, destination in reversed(pairs):
            os.replace(source, destination)
    except BaseException:
        for file in group(tmp):
            file.unlink(missing_ok=True)
        raise


@contextmanager
def scratch_path(
    path: str | Path,
    tag: str,
    *,
    keep_suffix: bool = False,
    group: Callable[[Path], list[Path]] = _alone,
) -> Iterator[Path]:
    """A temporary path beside ``path`` for an intermediate file (one that a later step reads),
    removed when the block ends, whatever happens; the arguments as in :func:`atomic_path`."""
    tmp = temporary_path(path, tag, keep_suffix)
    try:
        yield tmp
    finally:
        for file in group(tmp):
            file.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, *, fsync: bool = False) -> Iterator[BinaryIO]:
    """An open binary file that becomes ``path`` when the block ends (see :func:`atomic_path`).

    Args:
        path: the target.
        fsync: flush the data to disk before the rename and the folder entry after it, so that
            after a crash or power cut ``path`` holds the old file or the whole new one.

    Raises:
        OSError: the folder or the temporary file cannot be created, or writing, flushing or
            renaming fails (the temporary file is removed).
    """
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as file:
        yield file
        if fsync:
            file.flush()
            os.fsync(file.fileno())
    if fsync:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable where the platform allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``text`` written to ``path`` (UTF-8) through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
