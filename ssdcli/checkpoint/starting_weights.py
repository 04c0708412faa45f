"""Starting weights (``model.init``): ssdcli checkpoints and foreign SSD weights, with fine-tuning.

The training engine calls two functions::

    recipe = resolve_init_recipe(recipe)            # before build_detector
    detector = build_detector(recipe, num_classes)
    initialize_from(detector, recipe, class_names)  # copies weights, says what happened

:func:`resolve_init_recipe` sets the priors, input normalisation and network that torchvision
and ssd.pytorch weights were trained with (their layout fixes them); for an ssdcli checkpoint
the recipe stays as written. :func:`initialize_from` copies every tensor into the network. When
the class count (or the class names) differ, the backbone, extras and box head are kept and the
class-head layers whose shape depends on the class count keep their fresh initialisation
(fine-tuning); one line says which. ``model.freeze`` is applied by ``build_detector``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ssdcli.checkpoint.file import make_payload, read_weights_file, save_checkpoint
from ssdcli.errors import CheckpointError, RecipeError

if TYPE_CHECKING:
    from ssdcli.config import Recipe
    from ssdcli.model import Detector

__all__ = [
    "InitSource",
    "import_to_checkpoint",
    "initialize_from",
    "read_init",
    "resolve_init_recipe",
]

_GENERIC_NAME = re.compile(r"class_\d+")


@dataclass
class InitSource:
    """A weights file read and converted to our parameter names.

    Attributes:
        path: the file.
        format: ``"ssdcli"``, ``"torchvision"`` or ``"ssd_pytorch"``.
        state_dict: tensors under our parameter names (class head in our class layout).
        class_names: foreground names the class head was trained for (``class_<i>`` if unknown).
        category_ids: original data-set ids per class, or None.
        recipe_overrides: dotted recipe keys the weights require (empty for ssdcli files).
        description: what the file is, for the report line.
        arch: ``"ssd300_vgg16"`` or ``"ssdlite320_mobilenet_v3_large"`` for foreign files.
    """

    path: str
    format: str
    state_dict: dict[str, Tensor]
    class_names: list[str]
    category_ids: list[int] | None
    recipe_overrides: dict[str, Any]
    description: str
    arch: str | None = None


def read_init(path: str | Path, init_format: str = "auto") -> InitSource:
    """Read ``path`` (``weights_only``), recognise or check its layout and convert it.

    Args:
        path: ssdcli checkpoint, torchvision SSD state dict or ssd.pytorch checkpoint.
        init_format: ``"auto"`` or the format the recipe states.

    Raises:
        CheckpointError: unreadable, refused, unrecognised, or not the stated format.
    """
    from ssdcli.model.importers import detect_format, import_weights

    loaded = read_weights_file(path)
    if isinstance(loaded, dict) and "format_version" not in loaded:
        for key in ("model", "state_dict"):  # training scripts often wrap the state dict
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict):
        raise CheckpointError(f"model.init: {path} holds no state dict; give a weights file")
    found = detect_format(loaded)
    if init_format not in ("auto", found):
        raise CheckpointError(
            f"model.init: {path} looks like a {found} file, not {init_format}; set "
            f"model.init_format to {found} or auto"
        )
    if found == "ssdcli":
        return _ssdcli_source(str(path), loaded)
    imported = import_weights(loaded, found)
    return InitSource(
        str(path),
        found,
        imported.state_dict,
        imported.class_names,
        imported.category_ids,
        imported.recipe_overrides,
        "; ".join(imported.notes),
        imported.arch,
    )


def _ssdcli_source(path: str, loaded: dict[str, Any]) -> InitSource:
    if "format_version" in loaded:
        from ssdcli.checkpoint.file import load_checkpoint

        payload = load_checkpoint(path)  # version checks
        names = [str(name) for name in payload["class_names"]]
        return InitSource(
            path, "ssdcli", payload["model"], names, payload.get("category_ids"), {}, "ssdcli"
        )
    heads = [k for k in loaded if re.fullmatch(r"cls_head\.0\.(project\.)?bias", k)]
    # A bare state dict: the class count only, from the first level's class bias.
    anchors = loaded["box_head.0." + ("project." if "project" in heads[0] else "") + "bias"]
    num_k = loaded[heads[0]].shape[0] * 4 // anchors.shape[0]
    names = [f"class_{i}" for i in range(1, num_k)]
    return InitSource(path, "ssdcli", dict(loaded), names, None, {}, "ssdcli state dict")


def resolve_init_recipe(recipe: Recipe) -> Recipe:
    """The recipe with the network, priors and input normalisation that ``model.init`` requires.

    torchvision and ssd.pytorch weights only work with the priors and preprocessing they were
    trained with, so those values replace the recipe's. Without ``model.init``, or for an ssdcli
    checkpoint, the recipe is returned unchanged.
    """
    if recipe.model.init is None:
        return recipe
    from ssdcli.config import override_recipe

    source = read_init(recipe.model.init, recipe.model.init_format)
    if not source.recipe_overrides:
        return recipe
    values = {**source.recipe_overrides, "model.init_format": source.format}
    return override_recipe(recipe, values, source=f"model.init ({source.description})")


def _mismatches(recipe: Recipe, overrides: dict[str, Any]) -> list[str]:
    from ssdcli.config import recipe_to_dict

    data = recipe_to_dict(recipe)
    wrong = []
    for dotted, value in overrides.items():
        node: Any = data
        for part in dotted.split("."):
            node = node[part]
        same = node == value or (isinstance(value, list) and list(node or []) == value)
        if not same and not _close(node, value):
            wrong.append(dotted)
    return wrong


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def initialize_from(
    detector: Detector,
    recipe: Recipe,
    class_names: list[str],
    log: Callable[[str], None] | None = None,
) -> str:
    """Copy ``model.init`` weights into a built detector, fine-tuning the class head if needed.

    Args:
        detector: built from ``resolve_init_recipe(recipe)`` for ``len(class_names)`` classes.
        recipe: that resolved recipe.
        class_names: the data set's foreground names, in label order.
        log: receives the one-line report (default: printed to stderr).

    Returns:
        The report line (what was loaded; which layers were re-initialised, if any).

    Raises:
        CheckpointError: the weights do not fit the network (other than the class head).
        RecipeError: the recipe was not resolved with :func:`resolve_init_recipe`.
    """
    assert recipe.model.init is not None, "initialize_from needs model.init"
    source = read_init(recipe.model.init, recipe.model.init_format)
    wrong = _mismatches(recipe, source.recipe_overrides)
    if wrong:
        raise RecipeError(
            f"model.init: {source.path} ({source.description}) needs {', '.join(wrong)} as its "
            "layout sets them; build the detector from resolve_init_recipe(recipe)"
        )
    same_classes = len(source.class_names) == len(class_names) and (
        source.class_names == list(class_names)
        or all(_GENERIC_NAME.fullmatch(name) for name in source.class_names)
    )
    reinit = _load_fitting(detector, source, keep_class_head=same_classes)
    line = f"model.init: loaded {source.description} weights from {source.path}"
    if reinit:
        why = (
            f"{len(source.class_names)} classes"
            if len(source.class_names) != len(class_names)
            else "other class names"
        )
        line += (
            f"; class head re-initialised for {len(class_names)} classes (weights have {why}): "
            + ", ".join(reinit)
        )
    (log or _print_stderr)(line)
    return line


def _print_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _load_fitting(detector: Detector, source: InitSource, keep_class_head: bool) -> list[str]:
    """Copy every tensor; class-head tensors that cannot be kept stay as built.

    Returns:
        Names of the re-initialised class-head layers (``cls_head.0``, ``cls_head.1.project``).
    """
    target = detector.model.state_dict()
    missing = [key for key in target if key not in source.state_dict]
    unexpected = [key for key in source.state_dict if key not in target]
    wrong_shape = [
        key
        for key in target
        if key in source.state_dict and source.state_dict[key].shape != target[key].shape
    ]
    skip = [] if keep_class_head else _class_output_keys(target)
    problems = [k for k in missing + unexpected + wrong_shape if k not in skip]
    if problems:
        raise CheckpointError(
            f"model.init: {source.path} does not fit the recipe's network: {len(problems)} "
            f"tensors missing, extra or of another shape (e.g. {problems[:3]}); use a recipe "
            "with the same model and priors sections as the weights"
        )
    fitting = {k: v for k, v in source.state_dict.items() if k in target and k not in skip}
    detector.model.load_state_dict(fitting, strict=False)
    return sorted({key.rsplit(".", 1)[0] for key in skip})


def _class_output_keys(state: dict[str, Tensor]) -> list[str]:
    """The class head's output layers: the tensors whose rows are anchors x classes."""
    return [k for k in state if re.fullmatch(r"cls_head\.\d+\.(project\.)?(weight|bias)", k)]


def import_to_checkpoint(
    source_path: str | Path,
    checkpoint_path: str | Path,
    init_format: str = "auto",
    recipe: Recipe | None = None,
) -> Path:
    """Write foreign SSD weights as an ssdcli checkpoint that ``eval``/``detect``/``export`` read.

    Args:
        source_path: torchvision or ssd.pytorch weights.
        checkpoint_path: the ssdcli checkpoint to write.
        init_format: ``"auto"``, ``"torchvision"`` or ``"ssd_pytorch"``.
        recipe: base recipe (data, eval, export sections); its network and priors are replaced.

    Returns:
        ``checkpoint_path``.
    """
    from ssdcli.config import Recipe, override_recipe, recipe_to_dict
    from ssdcli.model import build_detector
    from ssdcli.model.importers import torchvision_recipe_overrides

    source = read_init(source_path, init_format)
    if source.format == "ssdcli":
        raise CheckpointError(f"{source_path} is already an ssdcli checkpoint or state dict")
    values = dict(source.recipe_overrides)
    if source.format == "torchvision" and source.arch is not None:
        values = torchvision_recipe_overrides(source.arch, postprocess=True)
    resolved = override_recipe(recipe or Recipe(), values, source=str(source_path))
    detector = build_detector(resolved, num_classes=len(source.class_names))
    detector.model.load_state_dict(source.state_dict, strict=True)
    payload = make_payload(
        detector.model.state_dict(),
        recipe_to_dict(resolved),
        source.class_names,
        source.category_ids,
        imported_from={"path": str(source_path), "format": source.format},
    )
    save_checkpoint(checkpoint_path, payload)
    return Path(checkpoint_path)
