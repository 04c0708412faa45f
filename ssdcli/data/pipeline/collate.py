"""Batching samples into the padded form the batched matcher takes."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """A batch of B images with their ground truths padded to G per image.

    Attributes:
        images_BCHW: float32 ``[B, 3, H, W]``, normalised network input.
        gt_boxes_BG4: float32 ``[B, G, 4]``, xyxy normalised to ``[0, 1]``; padding rows are 0.
        gt_labels_BG: int64 ``[B, G]``, ``0..C-1`` (no background shift); padding 0.
        gt_mask_BG: bool ``[B, G]``, True for real ground truths.
        gt_difficult_BG: bool ``[B, G]``, VOC difficult flags (False in padding).
        gt_iscrowd_BG: bool ``[B, G]``, COCO crowd flags (False in padding).
        indices_B: int64 ``[B]``, position of each sample in its dataset (``dataset.records``).
        sizes_hw_B2: int64 ``[B, 2]``, original image sizes ``(H, W)``.
        skipped: corrupt images replaced while making this batch.

    ``G = max(1, most objects in one image)``, so tensors are never empty along G.
    """

    images_BCHW: torch.Tensor
    gt_boxes_BG4: torch.Tensor
    gt_labels_BG: torch.Tensor
    gt_mask_BG: torch.Tensor
    gt_difficult_BG: torch.Tensor
    gt_iscrowd_BG: torch.Tensor
    indices_B: torch.Tensor
    sizes_hw_B2: torch.Tensor
    skipped: int = 0

    def _map(self, fn) -> Batch:
        return Batch(
            **{
                f.name: fn(getattr(self, f.name)) if f.name != "skipped" else self.skipped
                for f in fields(self)
            }
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._map(lambda t: t.pin_memory())

    def __len__(self) -> int:
        return self.images_BCHW.shape[0]


def collate(samples: list[tuple[torch.Tensor, dict]]) -> Batch:
    """Stacks :class:`~ssdcli.data.pipeline.dataset.DetectionDataset` samples into a
    :class:`Batch`."""
    images, targets = zip(*samples, strict=True)
    count = len(samples)
    width = max(1, max(len(t["labels"]) for t in targets))
    boxes = torch.zeros(count, width, 4, dtype=torch.float32)
    labels = torch.zeros(count, width, dtype=torch.int64)
    mask = torch.zeros(count, width, dtype=torch.bool)
    difficult = torch.zeros(count, width, dtype=torch.bool)
    iscrowd = torch.zeros(count, width, dtype=torch.bool)
    for b, target in enumerate(targets):
        g = len(target["labels"])
        boxes[b, :g] = target["boxes_xyxy"]
        labels[b, :g] = target["labels"]
        mask[b, :g] = True
        difficult[b, :g] = target["difficult"]
        iscrowd[b, :g] = target["iscrowd"]
    return Batch(
        images_BCHW=torch.stack(images),
        gt_boxes_BG4=boxes,
        gt_labels_BG=labels,
        gt_mask_BG=mask,
        gt_difficult_BG=difficult,
        gt_iscrowd_BG=iscrowd,
        indices_B=torch.tensor([t["index"] for t in targets], dtype=torch.int64),
        sizes_hw_B2=torch.tensor([t["size_hw"] for t in targets], dtype=torch.int64),
        skipped=sum(t["skipped"] for t in targets),
    )
