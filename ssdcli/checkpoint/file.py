"""The ssdcli checkpoint: one self-describing file, written atomically, read without running code.

A checkpoint is a ``dict`` saved with :func:`torch.save` that holds only plain values (``None``,
``bool``, ``int``, ``float``, ``str``, ``bytes``, lists, tuples, dicts) and tensors, so that
:func:`torch.load` can read it with ``weights_only=True``: a file that needs pickled classes or code
is refused instead of executed. Keys:

* ``format_version`` (int): layout of this dict, checked on load (:data:`FORMAT_VERSION`);
* ``ssdcli_version`` (str): the package version that wrote it;
* ``recipe`` (dict): the resolved recipe as plain values (``config.recipe_to_dict``);
* ``class_names`` (list[str]) and ``category_ids`` (list[int] | None): foreground classes, in label
  order ``0..C-1``;
* ``model`` (dict[str, Tensor]): the network's ``state_dict``;
* for resuming training: ``optimizer``, ``scheduler``, ``scaler``, ``ema``, ``iteration``,
  ``epoch``, ``rng`` (:mod:`ssdcli.checkpoint.rng`), ``data_order``, ``best_metric``.

``eval``, ``detect`` and ``export`` need only this file: :func:`load_detector` rebuilds the network
from the embedded recipe and loads its weights.
"""

from __future__ import annotations

import pickle
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ssdcli import __version__
from ssdcli.atomic import atomic_file
from ssdcli.errors import CheckpointError

if TYPE_CHECKING:
    from ssdcli.config import Recipe
    from ssdcli.model import Detector

FORMAT_VERSION = 1
"""Version of the payload layout; bump when keys change meaning (and teach the loader the old)."""

_LEAF_TYPES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    torch.Size,
    torch.device,
    torch.dtype,
)
_MAPPING_TYPES = (dict, OrderedDict, Counter)
_SEQUENCE_TYPES = (list, tuple, set)
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def make_payload(
    model_state: dict[str, torch.Tensor],
    recipe: dict[str, Any],
    class_names: list[str],
    category_ids: list[int] | None = None,
    **training: Any,
) -> dict[str, Any]:
    """Assemble a checkpoint payload with the version fields filled in.

    Args:
        model_state: the network's ``state_dict()`` (tensors are detached and kept as they are).
        recipe: the resolved recipe as a plain dict (``config.recipe_to_dict(recipe)``).
        class_names: foreground class names in label order ``0..C-1``.
        category_ids: original data-set ids per label (COCO), or ``None``.
        **training: optional training state (``optimizer``, ``scheduler``, ``iteration``, ...).

    Returns:
        The payload ``dict`` ready for :func:`save_checkpoint`.
    """
    return {
        "format_version": FORMAT_VERSION,
        "ssdcli_version": __version__,
        "recipe": recipe,
        "class_names": list(class_names),
        "category_ids": None if category_ids is None else [int(i) for i in category_ids],
        "model": {name: tensor.detach() for name, tensor in model_state.items()},
        **training,
    }


def to_plain(value: Any, where: str = "payload") -> Any:
    """``value`` with NumPy scalars made Python scalars; anything else not plain is an error.

    Args:
        value: a payload or part of one (containers are rebuilt, tensors are not copied).
        where: the key path used in the message (``payload['rng']['numpy']``).

    Raises:
        TypeError: naming the first value that ``weights_only`` loading could not read.
    """
    kind = type(value)
    if kind in _LEAF_TYPES or kind in _TENSOR_TYPES:
        return value
    if isinstance(value, np.generic):  # e.g. a metric computed with NumPy: lossless
        return value.item()
    if kind in _MAPPING_TYPES:
        items = {
            to_plain(key, f"{where} key {key!r}"): to_plain(item, f"{where}[{key!r}]")
            for key, item in value.items()
        }
        return kind(items)
    if kind in _SEQUENCE_TYPES:
        return kind(to_plain(item, f"{where}[{index}]") for index, item in enumerate(value))
    raise TypeError(
        f"{where} holds a {kind.__module__}.{kind.__qualname__}; checkpoints hold only plain "
        "values and tensors (convert it, e.g. numpy arrays with torch.from_numpy)"
    )


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: readers see the old file or the new one.

    The payload is written to a temporary file in the same folder, flushed to disk, then renamed
    over ``path`` (:func:`ssdcli.atomic.atomic_file` with ``fsync``). On any failure the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path: destination file (its folder is created if missing).
        payload: plain values and tensors only (see :func:`to_plain`; NumPy scalars are
            converted to Python scalars).

    Raises:
        TypeError: the payload holds a value that ``weights_only`` loading would refuse.
        CheckpointError: the file cannot be written (permissions, disk full).
    """
    path = Path(path)
    payload = to_plain(payload)
    opened = False
    try:
        with atomic_file(path, fsync=True) as file:
            opened = True
            torch.save(payload, file)
    except OSError as error:
        if opened:  # writing, flushing or renaming failed
            fix = "check free disk space and permissions"
        else:  # the folder or the temporary file could not be created
            fix = "check that the folder is writable"
        raise CheckpointError(f"cannot write checkpoint {path}: {error}; {fix}") from error


def read_weights_file(path: str | Path) -> Any:
    """Load any PyTorch weights file with ``weights_only=True`` onto the CPU.

    Used for ssdcli checkpoints and for foreign state dicts (torchvision, ssd.pytorch).

    Raises:
        CheckpointError: the file is missing, unreadable, or needs pickled code to load.
    """
    path = Path(path)
    if not path.is_file():
        from ssdcli.paths import CHECKPOINT_FILE, path_message, what_is

        raise CheckpointError(path_message("checkpoint", path, what_is(path), CHECKPOINT_FILE))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise _unreadable(path, error) from error
        raise CheckpointError(
            f"{path} was not written by ssdcli or contains pickled code; refusing to execute it "
            "(only tensors and plain values are loaded). If you trust the file, re-save its "
            "state_dict() with torch.save and start from that"
        ) from error
    except Exception as error:  # torch raises RuntimeError, KeyError, EOFError... on bad files
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    return CheckpointError(
        f"cannot read checkpoint {path} ({type(error).__name__}: {first_line}); "
        "the file is truncated or not a PyTorch file"
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an ssdcli checkpoint and check its format version.

    Args:
        path: a file written by :func:`save_checkpoint`.

    Returns:
        The payload ``dict`` (tensors on the CPU).

    Raises:
        CheckpointError: unreadable, refused (pickled code), not an ssdcli checkpoint, or written
            in a format this version cannot read.
    """
    payload = read_weights_file(path)
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(
            f"{path} is not an ssdcli checkpoint (no format_version); to start from torchvision or "
            "ssd.pytorch weights set model.init to this file in a recipe"
        )
    version = payload["format_version"]
    if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r} (written by ssdcli "
            f"{payload.get('ssdcli_version', '?')}); this ssdcli {__version__} reads formats "
            f"1..{FORMAT_VERSION}; upgrade ssdcli"
        )
    missing = [key for key in ("recipe", "class_names", "model") if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is missing {', '.join(missing)}; the file is incomplete")
    return payload


@dataclass
class LoadedDetector:
    """A detector rebuilt from a checkpoint, with what is needed to report its detections.

    Attributes:
        detector: network (eval mode, on the requested device), priors and level specs.
        recipe: the resolved recipe embedded in the checkpoint.
        class_names: foreground names in label order ``0..C-1``.
        category_ids: original data-set ids per label (COCO), or ``None``.
    """

    detector: Detector
    recipe: Recipe
    class_names: list[str]
    category_ids: list[int] | None


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> LoadedDetector:
    """Rebuild the detector a checkpoint describes and load its weights.

    Args:
        path: an ssdcli checkpoint.
        device: where the network and priors go.

    Returns:
        :class:`LoadedDetector` with the network in eval mode.

    Raises:
        CheckpointError: the file cannot be used (see :func:`load_checkpoint`) or its weights do not
            fit the network its recipe describes.
    """
    from ssdcli.config import override_recipe, recipe_from_dict
    from ssdcli.model import build_detector
    from ssdcli.model.efficientnet import PACKAGED

    payload = load_checkpoint(path)
    recipe = recipe_from_dict(payload["recipe"], source=str(path))
    class_names = [str(name) for name in payload["class_names"]]
    build_recipe = recipe
    if recipe.model.backbone in PACKAGED:
        # Every weight comes from the file, and these backbones' layout does not depend on their
        # starting weights: the weights package need not be installed where the model runs.
        build_recipe = override_recipe(recipe, {"model.backbone_weights": None}, str(path))
    detector = build_detector(build_recipe, num_classes=len(class_names))
    try:
        detector.model.load_state_dict(payload["model"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights in {path} do not fit the network its recipe describes: "
            f"{str(error).splitlines()[0]}; the file was edited or written by an incompatible "
            "version"
        ) from error
    detector.model.to(device).eval()
    detector.priors_P4 = detector.priors_P4.to(device)
    return LoadedDetector(detector, recipe, class_names, payload.get("category_ids"))
