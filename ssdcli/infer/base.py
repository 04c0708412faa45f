"""The interface every predictor shares: preprocessing, batching, class filtering.

Subclasses (:class:`~ssdcli.infer.eager.Predictor`, :class:`~ssdcli.infer.runtimes.OnnxPredictor`,
:class:`~ssdcli.infer.runtimes.TorchScriptPredictor`) implement ``_forward`` on a preprocessed
batch; images in are RGB uint8 of any size, detections out are in pixels of the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.infer.model_info import ModelInfo

if TYPE_CHECKING:
    from ssdcli.postprocess import Detections, PostprocessSettings


class BasePredictor:
    """Common interface: ``predict(images_rgb) -> list[Detections]``.

    Subclasses implement :meth:`_forward` on a preprocessed batch. This class owns preprocessing,
    batching (``batch_size`` images per forward, or the model's fixed batch) and filtering by class.

    Args:
        info: the model's description.
        settings: the post-processing this predictor applies (default: the model's own).
        batch_size: images per forward pass.
        classes: keep only these labels (0..C-1); None keeps all.
    """

    def __init__(
        self,
        info: ModelInfo,
        settings: PostprocessSettings | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
    ) -> None:
        self.info = info
        self.settings = settings or info.postprocess
        self.batch_size = max(1, int(info.fixed_batch or batch_size))
        self.classes = None if classes is None else sorted({int(c) for c in classes})

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def preprocess(self, images_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Batch of network inputs.

        Args:
            images_rgb: ``np.ndarray[h, w, 3]`` uint8 RGB images of any sizes.

        Returns:
            ``np.ndarray[B, 3, H, W]`` float32, normalised, at the model's ``size_hw``.
        """
        from ssdcli.data.pipeline.transforms import preprocess_image

        info = self.info
        batch = np.empty((len(images_rgb), 3, *info.size_hw), dtype=np.float32)
        for i, image in enumerate(images_rgb):
            batch[i] = preprocess_image(
                image, info.size_hw, info.mean, info.std, info.channel_order, info.resize
            )
        return batch

    def predict(
        self,
        images_rgb: Sequence[np.ndarray],
        sizes_hw: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        """Detect objects in decoded images.

        Args:
            images_rgb: ``np.ndarray[h, w, 3]`` uint8 RGB images of any sizes.
            sizes_hw: ``(H, W)`` of each original image when an image was decoded at a reduced
                size; None means each image's own size.

        Returns:
            One :class:`Detections` per image: ``boxes_D4`` xyxy float32 in pixels of the
            original image, ``scores_D`` float32, ``labels_D`` int64 0..C-1, best first.
        """
        if sizes_hw is None:
            sizes_hw = [(int(im.shape[0]), int(im.shape[1])) for im in images_rgb]
        if len(sizes_hw) != len(images_rgb):
            raise ValueError(f"{len(sizes_hw)} sizes for {len(images_rgb)} images")
        results: list[Detections] = []
        for start in range(0, len(images_rgb), self.batch_size):
            chunk = list(images_rgb[start : start + self.batch_size])
            sizes = list(sizes_hw[start : start + self.batch_size])
            results.extend(self._forward(self.preprocess(chunk), sizes))
        return [self._keep_classes(d) for d in results]

    def _forward(self, batch_BCHW: np.ndarray, sizes_hw: list[tuple[int, int]]) -> list[Detections]:
        raise NotImplementedError

    def _post_limit(self) -> int:
        """Detections per image to ask post-processing for: all of them when filtering classes,
        so that the best ``max_detections`` of the wanted classes survive."""
        return self.settings.max_detections if self.classes is None else 1 << 30

    def _keep_classes(self, detections: Detections) -> Detections:
        if self.classes is None:
            return detections
        import torch

        from ssdcli.postprocess import Detections

        wanted = torch.as_tensor(self.classes, dtype=detections.labels_D.dtype)
        keep = torch.isin(detections.labels_D, wanted.to(detections.labels_D.device))
        keep = keep.nonzero().flatten()[: self.settings.max_detections]  # detections are best first
        return Detections(
            detections.boxes_D4[keep], detections.scores_D[keep], detections.labels_D[keep]
        )
