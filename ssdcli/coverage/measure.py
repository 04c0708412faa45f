"""How well a recipe's priors can match a data set's ground truths.

For every ground truth (difficult and crowd objects excluded, as in training) the best IoU with
any prior is computed in normalised coordinates of the network input (the whole image is resized
to the input, and IoU does not change under that per-axis scaling). A ground truth whose best IoU
is below the matching threshold is only matched through SSD's "best prior" rule, with one poorly
fitting prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssdcli.boxes import cxcywh_to_xyxy, matching_iou
from ssdcli.data.prepare.stats import COCO_MEDIUM, COCO_SMALL
from ssdcli.data.records import Manifest
from ssdcli.priors import LevelSpec


@dataclass
class GroundTruths:
    """Ground truths of a manifest, flattened over images.

    Attributes:
        boxes_G4: float32 ``[G, 4]`` xyxy normalised to the image (so to the network input).
        boxes_px_G4: float32 ``[G, 4]`` xyxy in pixels of the original image.
        labels_G: int64 ``[G]``; records_G: int64 ``[G]`` index into ``manifest.records``.
    """

    boxes_G4: np.ndarray
    boxes_px_G4: np.ndarray
    labels_G: np.ndarray
    records_G: np.ndarray


def ground_truths(manifest: Manifest, split: str | None = None) -> GroundTruths:
    """The trained-on ground truths (no difficult, no crowd) of ``split`` (None: all records)."""
    indices = manifest.split_indices(split) if split else range(len(manifest.records))
    boxes, pixels, labels, owners = [], [], [], []
    for i in indices:
        record = manifest.records[i]
        keep = ~(record.difficult | record.iscrowd)
        height, width = record.size_hw
        pixels.append(record.boxes_xyxy[keep])
        boxes.append(record.boxes_xyxy[keep] / np.float32([width, height, width, height]))
        labels.append(record.labels[keep])
        owners.append(np.full(int(keep.sum()), i, np.int64))
    if not boxes:
        boxes, pixels = [np.zeros((0, 4), np.float32)], [np.zeros((0, 4), np.float32)]
        labels, owners = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    return GroundTruths(
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(pixels),
        np.concatenate(labels),
        np.concatenate(owners),
    )


@dataclass
class Coverage:
    """Best-prior IoU of every ground truth.

    Attributes:
        threshold: the matching IoU (``loss.match_iou``).
        best_iou_G: float32 ``[G]``; best_level_G: int64 ``[G]`` level of that prior;
        positives_G: int64 ``[G]`` priors with IoU >= threshold.
    """

    gts: GroundTruths
    threshold: float
    best_iou_G: np.ndarray
    best_level_G: np.ndarray
    positives_G: np.ndarray

    @property
    def covered(self) -> float:
        """Share of ground truths with best IoU >= threshold (nan if there are none)."""
        return float(np.mean(self.best_iou_G >= self.threshold)) if len(self.best_iou_G) else 0.0

    def groups(self, class_names: list[str]) -> list[tuple[str, np.ndarray]]:
        """(name, bool mask ``[G]``): all, each class, each COCO size (original pixels)."""
        wh = self.gts.boxes_px_G4[:, 2:] - self.gts.boxes_px_G4[:, :2]
        area = wh[:, 0] * wh[:, 1]
        rows = [("all", np.ones(len(area), bool))]
        rows += [(f"class {name}", self.gts.labels_G == k) for k, name in enumerate(class_names)]
        rows += [
            ("size small (< 32^2 px)", area < COCO_SMALL),
            ("size medium", (area >= COCO_SMALL) & (area < COCO_MEDIUM)),
            ("size large (>= 96^2 px)", area >= COCO_MEDIUM),
        ]
        return rows


def prior_level_index(levels: list[LevelSpec]) -> np.ndarray:
    """int64 ``[P]``: the level of each prior (priors are ordered level first)."""
    return np.repeat(np.arange(len(levels)), [level.num_priors for level in levels])


def prior_coverage(
    gts: GroundTruths,
    priors_P4: np.ndarray | torch.Tensor,
    levels: list[LevelSpec],
    threshold: float = 0.5,
    chunk: int = 2048,
) -> Coverage:
    """Best IoU of each ground truth with the priors (normalised cxcywh ``[P, 4]``)."""
    priors_xyxy = cxcywh_to_xyxy(torch.as_tensor(np.asarray(priors_P4), dtype=torch.float32))
    level_of = prior_level_index(levels)
    best, where, positives = [], [], []
    boxes = torch.from_numpy(gts.boxes_G4)
    for start in range(0, len(boxes), chunk):
        iou = matching_iou(boxes[start : start + chunk], priors_xyxy)
        value, index = iou.max(dim=1)
        best.append(value.numpy())
        where.append(level_of[index.numpy()])
        positives.append((iou >= threshold).sum(dim=1).numpy())
    empty = [np.zeros(0, np.float32)]
    return Coverage(
        gts, threshold, np.concatenate(best or empty).astype(np.float32),
        np.concatenate(where or [np.zeros(0, np.int64)]),
        np.concatenate(positives or [np.zeros(0, np.int64)]),
    )  # fmt: skip
