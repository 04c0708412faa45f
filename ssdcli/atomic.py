"""Writing a file so that readers see the old version or the new one, never half of one.

Every output the commands write (manifests, metrics JSON, reports, ``metrics.csv``) goes
through :func:`atomic_path`: the data is written to a temporary file in the same folder (same
file system, so the rename is atomic) and renamed onto the target only when writing succeeded;
an error or Ctrl-C removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends.

    The parent folder is created. The temporary name starts with a dot and holds the process
    id, so concurrent writers (DDP ranks, loader workers) never share one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``text`` written to ``path`` (UTF-8) through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
