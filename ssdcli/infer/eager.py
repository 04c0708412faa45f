"""Inference with an ssdcli detector in eager PyTorch (from a checkpoint, or built in memory).

The batch is preprocessed with the shared ``preprocess_image``, run through the network and
post-processed at once (decode + batched NMS); one :class:`~ssdcli.postprocess.Detections` per
image, in pixels of the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.infer.base import BasePredictor
from ssdcli.infer.model_info import ModelInfo

if TYPE_CHECKING:
    import torch

    from ssdcli.config import Recipe
    from ssdcli.model import Detector
    from ssdcli.postprocess import Detections, PostprocessOverrides


class Predictor(BasePredictor):
    """An ssdcli detector run in eager PyTorch.

    Args:
        detector: network (eval mode) and priors.
        recipe: the detector's recipe (input normalisation, size, post-processing defaults).
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        class_names: label names; default ``class0..``.
        category_ids: data-set ids per label, kept for COCO output.
        overrides: post-processing values asked for at run time; the rest come from the
            recipe's ``postprocess`` section.
        batch_size: images per forward pass.
        classes: keep only these labels (0..C-1).
        optimize: run a copy made by ``ssdcli.model.fused_copy.optimize_for_inference``:
            channels-last, and on the CPU from ``FUSED_MIN_BATCH`` images per batch also folded
            batch norms and fused conv + activation (:func:`ssdcli.infer.network_copy.choose_path`,
            chosen per batch size by ``benchmarks/bench_infer.py``); each copy is made on first
            use. Same outputs within float32 rounding.
        precision: ``"auto"`` (default: bfloat16 autocast where the device runs it natively,
            float32 elsewhere), ``"float32"`` or ``"bf16"``; resolved once, kept in
            ``self.precision``. bfloat16 scores differ from float32 ones by well under 1%
            (``benchmarks/bench_detect.py`` prints both paths' speed; docs/results.md gives both
            accuracies).
    """

    def __init__(
        self,
        detector: Detector,
        recipe: Recipe,
        device: str | torch.device = "cpu",
        *,
        class_names: Sequence[str] | None = None,
        category_ids: Sequence[int] | None = None,
        overrides: PostprocessOverrides | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
        optimize: bool = True,
        precision: str = "auto",
    ) -> None:
        import torch

        from ssdcli.boxes import BoxCoder
        from ssdcli.device import resolve_precision
        from ssdcli.postprocess import PostProcessor, PostprocessOverrides, PostprocessSettings

        recipe_settings = PostprocessSettings.from_mapping(recipe.postprocess)
        num_classes = int(detector.model.num_classes)
        names = list(class_names) if class_names is not None else None
        info = ModelInfo(
            class_names=names or [f"class{i}" for i in range(num_classes)],
            size_hw=tuple(recipe.model.size_hw),
            mean=tuple(recipe.model.input.mean),
            std=tuple(recipe.model.input.std),
            channel_order=recipe.model.input.channel_order,
            resize=recipe.model.resize,
            category_ids=None if category_ids is None else [int(i) for i in category_ids],
            postprocess=recipe_settings,
            variances=(float(recipe.priors.variances[0]), float(recipe.priors.variances[1])),
        )
        settings = (overrides or PostprocessOverrides()).apply(recipe_settings)
        super().__init__(info, settings, batch_size, classes)
        self.device = torch.device(device)
        self.detector = detector
        self.model = detector.model.to(self.device).eval()
        self.optimize = optimize
        self.precision = resolve_precision(precision, self.device.type)
        self._copies: dict[str, torch.nn.Module] = {}
        self.postprocessor = PostProcessor(
            detector.priors_P4.to(self.device),
            BoxCoder(info.variances),
            settings,
            info.resize,
            info.size_hw,
        )

    def path_for(self, batch: int) -> str:
        """The network copy a batch of ``batch`` images runs on: ``"eager"`` (``optimize`` off),
        ``"channels_last"`` or ``"fused"`` (see :mod:`ssdcli.infer.network_copy`)."""
        from ssdcli.infer.network_copy import choose_path

        if not self.optimize:
            return "eager"
        return choose_path(batch, self.device.type, self.precision)

    def network_for(self, batch: int) -> torch.nn.Module:
        """The network that runs a batch of ``batch`` images (made on first use, then kept)."""
        path = self.path_for(batch)
        if path == "eager":
            return self.model
        if path not in self._copies:
            from ssdcli.model.fused_copy import optimize_for_inference

            self._copies[path] = optimize_for_inference(
                self.model, self.device, fuse=path == "fused"
            )
        return self._copies[path]

    def raw_outputs(self, batch_BCHW: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cls_logits_BPK, box_deltas_BP4)`` float32 for a preprocessed batch."""
        import torch

        from ssdcli.device import inference_autocast

        network = self.network_for(batch_BCHW.shape[0])
        with torch.inference_mode(), inference_autocast(self.precision, self.device.type):
            images = torch.from_numpy(batch_BCHW).to(self.device)
            cls_logits_BPK, box_deltas_BP4 = network(images)
        return cls_logits_BPK.float(), box_deltas_BP4.float()

    def _forward(self, batch_BCHW: np.ndarray, sizes_hw: list[tuple[int, int]]) -> list[Detections]:
        import torch

        cls_logits_BPK, box_deltas_BP4 = self.raw_outputs(batch_BCHW)
        with torch.inference_mode():
            found = self.postprocessor(
                cls_logits_BPK, box_deltas_BP4, sizes_hw, max_detections=self._post_limit()
            )
        return [_to_cpu(d) for d in found]


def _to_cpu(detections: Detections) -> Detections:
    from ssdcli.postprocess import Detections

    if detections.boxes_D4.device.type == "cpu":
        return detections
    return Detections(
        detections.boxes_D4.cpu(), detections.scores_D.cpu(), detections.labels_D.cpu()
    )
