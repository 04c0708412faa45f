"""Checking a path argument, with one-line messages that say what the path is and what was expected.

Every command checks its path arguments through these helpers before any work, so a wrong path is
reported the same way everywhere::

    --model runs/x: is a directory; expected a model file (.pt, .onnx, .xml, .tflite or TorchScript)
    --resume runs/no_such_run: does not exist; expected a run folder from ssd train (runs/<name>)

The error class is a usage error (exit code 2) unless the caller passes another
:class:`~ssdcli.errors.SsdError` subclass. No torch import here (``ssd --help`` must stay light).
"""

from __future__ import annotations

from pathlib import Path

from ssdcli.errors import SsdError, UsageError

MODEL_FILE = "a model file (.pt, .onnx, .xml, .tflite or TorchScript)"
CHECKPOINT_FILE = "an ssdcli checkpoint file (.pt)"
RUN_FOLDER = "a run folder from ssd train (runs/<name>)"
RECIPE_FILE = "a recipe YAML file or a shipped recipe name"


def what_is(path: Path) -> str:
    """``"does not exist"``, ``"is a directory"``, ``"is a file"`` or ``"is not a regular file"``
    (a device, a socket, a broken link)."""
    if path.is_dir():
        return "is a directory"
    if path.is_file():
        return "is a file"
    if path.exists() or path.is_symlink():
        return "is not a regular file"
    return "does not exist"


def path_message(label: str, path: Path | str, state: str, expected: str) -> str:
    """``"<label> <path>: <state>; expected <expected>"`` (label: the option or argument)."""
    return f"{label} {path}: {state}; expected {expected}".lstrip()


def existing_file(
    path: Path | str, label: str, expected: str, error: type[SsdError] = UsageError
) -> Path:
    """``path`` when it is an existing file.

    Raises:
        error: it is missing, a directory or not a regular file (the message says which).
    """
    path = Path(path)
    state = what_is(path)
    if state != "is a file":
        raise error(path_message(label, path, state, expected))
    return path


def existing_dir(
    path: Path | str, label: str, expected: str, error: type[SsdError] = UsageError
) -> Path:
    """``path`` when it is an existing directory.

    Raises:
        error: it is missing or not a directory (the message says which).
    """
    path = Path(path)
    state = what_is(path)
    if state != "is a directory":
        raise error(path_message(label, path, state, expected))
    return path


def output_file(path: Path | str, label: str, expected: str) -> Path:
    """``path`` when a file can be written there: not an existing directory, and its parent, if
    it exists, is a directory (a missing parent is created by the writer).

    Raises:
        UsageError: the path or its nearest existing parent is in the way.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(path_message(label, path, "is a directory", expected))
    parent = _nearest_existing_parent(path)
    if parent is not None and not parent.is_dir():
        raise UsageError(
            path_message(label, path, f"its parent {parent} {what_is(parent)}", expected)
        )
    return path


def output_dir(path: Path | str, label: str, expected: str) -> Path:
    """``path`` when a folder can be written there (missing or a directory).

    Raises:
        UsageError: the path is an existing file (or its nearest existing parent is).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(path_message(label, path, what_is(path), expected))
    parent = _nearest_existing_parent(path)
    if parent is not None and not parent.is_dir():
        raise UsageError(
            path_message(label, path, f"its parent {parent} {what_is(parent)}", expected)
        )
    return path


def _nearest_existing_parent(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.exists():
            return parent
    return None
