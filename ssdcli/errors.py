"""Domain exceptions: user-facing problems with a message that says what, where and how to fix it.

The command line catches :class:`SsdError` in one place (the app's command group in
``ssdcli.cli.app``), prints the message as one red line and exits with ``exit_code``. Internal
invariants use ``assert`` instead.
"""


class SsdError(Exception):
    """Base class of every user-facing ssdcli error (exit code 1)."""

    exit_code: int = 1


class UsageError(SsdError):
    """A command was called with arguments that cannot work together (exit code 2)."""

    exit_code = 2


class RecipeError(SsdError):
    """A recipe file or ``--set`` override is missing, malformed or invalid (exit code 2)."""

    exit_code = 2


class DataError(SsdError):
    """A data set, manifest, image or annotation cannot be used (exit code 1)."""


class CheckpointError(SsdError):
    """A checkpoint or weights file cannot be read, trusted or matched to the model (exit 1)."""


class ModelError(SsdError):
    """A detector cannot be built from the recipe (exit code 1)."""


class ExportError(SsdError):
    """An export failed or did not verify against the eager model (exit code 1)."""


class EvalError(SsdError):
    """Evaluation cannot run on the given detections or ground truths (exit code 1)."""
