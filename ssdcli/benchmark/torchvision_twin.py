"""torchvision's SSD300-VGG16 / SSDLite320-MobileNetV3 with the weights of an ssdcli checkpoint.

The checkpoint's tensors are put under torchvision's names by the renaming rules of
:func:`ssdcli.model.importers.torchvision_key_map` (the importer's, read backwards), its input
normalisation and size and its post-processing settings copied into torchvision's transform and
post-processing. With the priors torchvision uses (the ``ssd300_vgg16`` / ``ssdlite320`` recipe
values of :func:`~ssdcli.model.importers.torchvision_recipe_overrides`) the two compute the same
detections, up to the resize (torchvision resizes float tensors, ssdcli uint8 images) and NMS
tie-breaking; ``ssd benchmark`` compares them on sample images and says how closely they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.postprocess import Detections

ARCHS = {  # (backbone, size_hw) -> torchvision builder name
    ("vgg16", (300, 300)): "ssd300_vgg16",
    ("mobilenet_v3_large", (320, 320)): "ssdlite320_mobilenet_v3_large",
}


class TwinUnavailable(Exception):
    """The checkpoint has no torchvision counterpart (the message says why)."""


class TorchvisionTwin:
    """torchvision's model with ``loaded``'s weights, with a predictor's ``predict``.

    Raises:
        TwinUnavailable: another backbone or input size, letterbox resizing, or weights that do
            not fit torchvision's network.
    """

    def __init__(self, loaded: LoadedDetector) -> None:
        import torch
        from torchvision.models import detection

        from ssdcli.model.importers import torchvision_key_map
        from ssdcli.postprocess import PostprocessSettings

        recipe = loaded.recipe
        size_hw = (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1]))
        arch = ARCHS.get((recipe.model.backbone, size_hw))
        if arch is None:
            raise TwinUnavailable(
                f"torchvision has no SSD with the {recipe.model.backbone} backbone at "
                f"{size_hw[0]}x{size_hw[1]} (only SSD300-VGG16, SSDLite320-MobileNetV3)"
            )
        if recipe.model.resize != "stretch":
            raise TwinUnavailable(f"torchvision cannot resize by {recipe.model.resize}")
        num_k = len(loaded.class_names) + 1
        with torch.device("meta"):
            model = getattr(detection, arch)(weights=None, weights_backbone=None, num_classes=num_k)
        model = model.to_empty(device="cpu").eval()
        ours = loaded.detector.model.state_dict()
        try:
            mapping = torchvision_key_map(model.state_dict())
            model.load_state_dict({tv: ours[mine] for tv, mine in mapping.items()}, strict=True)
        except (KeyError, RuntimeError, ValueError) as error:
            raise TwinUnavailable(
                f"the checkpoint's network does not fit torchvision's {arch} "
                f"({type(error).__name__}: {str(error).splitlines()[0][:120]})"
            ) from error
        model.transform.image_mean = [m / 255.0 for m in recipe.model.input.mean]
        model.transform.image_std = [s / 255.0 for s in recipe.model.input.std]
        model.transform.fixed_size = (size_hw[1], size_hw[0])  # torchvision's (W, H)
        settings = PostprocessSettings.from_mapping(recipe.postprocess)
        model.score_thresh = settings.score_threshold
        model.nms_thresh = settings.nms_iou
        model.detections_per_img = settings.max_detections
        model.topk_candidates = settings.pre_nms_top_k
        self.model = model
        self.arch = arch
        self.bgr = recipe.model.input.channel_order == "bgr"
        self.batch_size = 8

    def predict(self, images_rgb: Sequence[np.ndarray]) -> list[Detections]:
        """Detections of ``[h, w, 3]`` uint8 RGB images (boxes xyxy pixels, labels 0..C-1)."""
        import torch

        from ssdcli.postprocess import Detections

        results: list[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(images_rgb), self.batch_size):
                tensors = [
                    torch.from_numpy(np.ascontiguousarray(im[..., ::-1] if self.bgr else im))
                    .permute(2, 0, 1)
                    .float()
                    .div_(255.0)
                    for im in images_rgb[start : start + self.batch_size]
                ]
                for out in self.model(tensors):
                    results.append(Detections(out["boxes"], out["scores"], out["labels"] - 1))
        return results


def twin_or_reason(loaded: LoadedDetector) -> tuple[Any, str]:
    """``(TorchvisionTwin, "")`` or ``(None, why there is none)``."""
    try:
        return TorchvisionTwin(loaded), ""
    except TwinUnavailable as error:
        return None, str(error)
