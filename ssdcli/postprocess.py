"""Raw network outputs -> detections in pixels of each original image.

Steps (SSD section 3, "Inference"): softmax over classes, decode the boxes against the priors,
drop scores <= ``score_threshold``, keep the ``pre_nms_top_k`` best priors per class per image,
non-maximum suppression per class per image (one ``torchvision.ops.batched_nms`` call over the whole
batch, grouped by image and class), keep the ``max_detections`` best per image, scale to pixels of
each original image and clamp to it. Everything is batched; a Python loop only splits the final
result into one :class:`Detections` per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor

from ssdcli.boxes import BoxCoder

__all__ = ["Detections", "PostProcessor"]


@dataclass
class Detections:
    """Detections of one image, sorted by decreasing score.

    Attributes:
        boxes_D4 (Tensor[D, 4], float32): xyxy, pixels of the original image, clamped to it.
        scores_D (Tensor[D], float32): class probabilities.
        labels_D (Tensor[D], int64): foreground class index 0..C-1.
    """

    boxes_D4: Tensor
    scores_D: Tensor
    labels_D: Tensor

    # Short read-only aliases.
    @property
    def boxes(self) -> Tensor:
        return self.boxes_D4

    @property
    def scores(self) -> Tensor:
        return self.scores_D

    @property
    def labels(self) -> Tensor:
        return self.labels_D

    def __len__(self) -> int:
        return int(self.scores_D.shape[0])


def _empty(device: torch.device) -> Detections:
    return Detections(
        boxes_D4=torch.zeros(0, 4, device=device),
        scores_D=torch.zeros(0, device=device),
        labels_D=torch.zeros(0, dtype=torch.long, device=device),
    )


class PostProcessor:
    """Decode + score filter + per-class NMS + top-k.

    Args:
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors of the model.
        coder: the box coder the model was trained with.
        score_threshold: keep class scores strictly above this.
        nms_iou: suppress boxes of the same class and image whose IoU is above this.
        max_detections: at most this many detections per image (best scores).
        pre_nms_top_k: at most this many candidates per class per image enter NMS.
    """

    def __init__(
        self,
        priors_P4: Tensor,
        coder: BoxCoder,
        score_threshold: float = 0.01,
        nms_iou: float = 0.45,
        max_detections: int = 200,
        pre_nms_top_k: int = 400,
    ) -> None:
        self.priors_P4 = priors_P4
        self.coder = coder
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)
        self.pre_nms_top_k = int(pre_nms_top_k)

    def __call__(
        self,
        cls_logits_BPK: Tensor,
        box_deltas_BP4: Tensor,
        image_sizes_hw: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """Detections per image.

        Args:
            cls_logits_BPK (Tensor[B, P, K], float): class logits, index 0 = background.
            box_deltas_BP4 (Tensor[B, P, 4], float): predicted deltas.
            image_sizes_hw: ``(H, W)`` of each original image (B entries), the frame of the output.

        Returns:
            B :class:`Detections`, each sorted by decreasing score (possibly empty).
        """
        batch, num_priors, num_k = cls_logits_BPK.shape
        if len(image_sizes_hw) != batch:
            raise ValueError(f"{len(image_sizes_hw)} image sizes for a batch of {batch} images")
        device = cls_logits_BPK.device
        num_classes = num_k - 1
        priors_P4 = self.priors_P4.to(device=device, dtype=torch.float32)
        boxes_BP4 = self.coder.decode(box_deltas_BP4.float(), priors_P4).clamp(0.0, 1.0)
        # Foreground scores as (B, C, P): one top-k per class per image.
        scores_BCP = cls_logits_BPK.float().softmax(dim=-1)[..., 1:].transpose(1, 2)
        k = min(self.pre_nms_top_k, num_priors)
        if k <= 0 or num_classes <= 0:
            return [_empty(device) for _ in range(batch)]
        top_scores_BCk, top_idx_BCk = scores_BCP.topk(k, dim=-1)
        keep_BCk = top_scores_BCk > self.score_threshold
        b_idx, c_idx, j_idx = keep_BCk.nonzero(as_tuple=True)
        p_idx = top_idx_BCk[b_idx, c_idx, j_idx]
        scores = top_scores_BCk[b_idx, c_idx, j_idx]
        boxes = boxes_BP4[b_idx, p_idx]

        # NMS within each (image, class) group, all groups in one call.
        kept = torchvision.ops.batched_nms(boxes, scores, b_idx * num_classes + c_idx, self.nms_iou)
        kept, image_of = _top_per_image(kept, b_idx[kept], batch, self.max_detections)

        sizes_B2 = torch.as_tensor(image_sizes_hw, dtype=torch.float32, device=device).view(-1, 2)
        heights, widths = sizes_B2[image_of, 0], sizes_B2[image_of, 1]
        scale_D4 = torch.stack((widths, heights, widths, heights), dim=-1)
        pixels_D4 = boxes[kept] * scale_D4
        # Clamp x to [0, W] and y to [0, H] of each original image.
        pixels_D4 = torch.minimum(pixels_D4.clamp(min=0.0), scale_D4)

        counts = torch.bincount(image_of, minlength=batch).tolist()
        # The only per-image loop: splitting the flat result into one object per image.
        return [
            Detections(boxes_D4=b, scores_D=s, labels_D=c)
            for b, s, c in zip(
                pixels_D4.split(counts),
                scores[kept].split(counts),
                c_idx[kept].split(counts),
                strict=True,
            )
        ]


def _top_per_image(
    kept: Tensor, image_of: Tensor, batch: int, max_detections: int
) -> tuple[Tensor, Tensor]:
    """Group NMS survivors by image and keep the ``max_detections`` best of each.

    Args:
        kept (Tensor[D], int64): candidate indices, sorted by decreasing score (batched_nms).
        image_of (Tensor[D], int64): image of each of them.

    Returns:
        The kept indices and their images, grouped by image, each group by decreasing score.
    """
    # A stable sort by image keeps the score order within each image.
    order = torch.sort(image_of, stable=True).indices
    kept, image_of = kept[order], image_of[order]
    counts_B = torch.bincount(image_of, minlength=batch)
    starts_B = torch.cumsum(counts_B, 0) - counts_B
    rank = torch.arange(kept.numel(), device=kept.device) - starts_B[image_of]
    top = rank < max_detections
    return kept[top], image_of[top]
