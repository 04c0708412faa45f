"""Box formats, pixel <-> normalised conversion, IoU and the SSD box coder.

Formats (see ``ssdcli/__init__.py``): ``xyxy`` is (x_min, y_min, x_max, y_max); ``cxcywh`` is
(centre x, centre y, width, height). Pixel boxes are continuous, 0-based coordinates of an image
of size ``(H, W)``: the image spans ``[0, W] x [0, H]``. Normalised boxes divide x by ``W`` and y
by ``H``.

Every function here is pure and works on any leading dimensions unless said otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor

__all__ = [
    "BoxCoder",
    "box_iou",
    "cxcywh_to_xyxy",
    "matching_iou",
    "to_normalized",
    "to_pixels",
    "xyxy_to_cxcywh",
]

# Largest allowed log-scale factor in decode, as torchvision's detection BoxCoder: a predicted
# width/height can grow a prior at most 1000/16 = 62.5 times, so exp() never overflows to inf.
DEFAULT_MAX_LOG_SCALE = math.log(1000.0 / 16)


def xyxy_to_cxcywh(boxes_xyxy_N4: Tensor) -> Tensor:
    """Convert ``xyxy`` boxes to ``cxcywh``.

    Args:
        boxes_xyxy_N4 (Tensor[..., 4], float): xyxy boxes, any frame (pixels or normalised).

    Returns:
        Tensor[..., 4]: the same boxes as cxcywh, same frame and dtype.
    """
    x1, y1, x2, y2 = boxes_xyxy_N4.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes_cxcywh_N4: Tensor) -> Tensor:
    """Convert ``cxcywh`` boxes to ``xyxy``.

    Args:
        boxes_cxcywh_N4 (Tensor[..., 4], float): cxcywh boxes, any frame.

    Returns:
        Tensor[..., 4]: the same boxes as xyxy, same frame and dtype.
    """
    cx, cy, w, h = boxes_cxcywh_N4.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def _scale_xyxy(boxes_xyxy: Tensor, size_hw: Sequence[float] | Tensor) -> Tensor:
    """(W, H, W, H) as a tensor on the boxes' device, broadcastable against ``boxes[..., 4]``."""
    size = torch.as_tensor(size_hw, dtype=boxes_xyxy.dtype, device=boxes_xyxy.device)
    h, w = size.unbind(-1)
    return torch.stack((w, h, w, h), dim=-1)


def to_normalized(boxes_xyxy: Tensor, size_hw: Sequence[float] | Tensor) -> Tensor:
    """Pixel ``xyxy`` -> normalised ``xyxy`` (x / W, y / H).

    Args:
        boxes_xyxy (Tensor[..., 4], float): xyxy in pixels of an image of size ``size_hw``.
        size_hw: ``(H, W)`` of that image, or a Tensor[..., 2] broadcastable per box.

    Returns:
        Tensor[..., 4]: normalised xyxy (not clamped).
    """
    return boxes_xyxy / _scale_xyxy(boxes_xyxy, size_hw)


def to_pixels(boxes_xyxy: Tensor, size_hw: Sequence[float] | Tensor) -> Tensor:
    """Normalised ``xyxy`` -> pixel ``xyxy`` of an image of size ``size_hw`` (x * W, y * H).

    Args:
        boxes_xyxy (Tensor[..., 4], float): normalised xyxy.
        size_hw: ``(H, W)`` of the target image, or a Tensor[..., 2] broadcastable per box.

    Returns:
        Tensor[..., 4]: xyxy in pixels (not clamped).
    """
    return boxes_xyxy * _scale_xyxy(boxes_xyxy, size_hw)


def box_iou(a_N4: Tensor, b_M4: Tensor) -> Tensor:
    """Pairwise IoU (``torchvision.ops.box_iou``).

    Args:
        a_N4 (Tensor[N, 4], float): xyxy boxes.
        b_M4 (Tensor[M, 4], float): xyxy boxes in the same frame.

    Returns:
        Tensor[N, M]: IoU of every pair, in [0, 1].
    """
    return torchvision.ops.box_iou(a_N4, b_M4)


def matching_iou(a_N4: Tensor, b_M4: Tensor) -> Tensor:
    """Pairwise IoU for matching: the same values as :func:`box_iou`, faster, not differentiable.

    The arithmetic is torchvision's (same operations in the same order, so results are equal), but
    written as contiguous ``(N, M)`` operations updated in place rather than ``(N, M, 2)``
    broadcasts: several times faster on CPU at matching sizes (hundreds of ground truths x
    thousands of priors), where the IoU matrix dominates the cost of matching.

    Args:
        a_N4 (Tensor[N, 4], float): xyxy boxes (ground truths).
        b_M4 (Tensor[M, 4], float): xyxy boxes in the same frame (priors).

    Returns:
        Tensor[N, M]: IoU of every pair, in [0, 1]. Computed without autograd.
    """
    with torch.no_grad():
        ax1, ay1, ax2, ay2 = a_N4.unsqueeze(-1).unbind(-2)  # each (N, 1)
        bx1, by1, bx2, by2 = b_M4.t().contiguous()  # each (M,), contiguous
        inter = torch.minimum(ax2, bx2).sub_(torch.maximum(ax1, bx1)).clamp_(min=0)
        inter.mul_(torch.minimum(ay2, by2).sub_(torch.maximum(ay1, by1)).clamp_(min=0))
        area_a = (ax2 - ax1) * (ay2 - ay1)
        area_b = (bx2 - bx1) * (by2 - by1)
        union = (area_a + area_b).sub_(inter)
        return inter.div_(union)


class BoxCoder:
    """SSD box encoding relative to priors, with variances.

    SSD section 2.2 (eq. 2) regresses offsets of the centre relative to the prior, scaled by its
    size, and the log of the width/height ratio. As in the reference implementations, the offsets
    are further divided by the variances (0.1 for centres, 0.2 for sizes); torchvision writes the
    same as weights (10, 10, 5, 5).

    Args:
        variances: ``(centre, size)`` variances.
        max_log_scale: decode clamps ``variance * delta_wh`` to at most this value before ``exp``.
    """

    def __init__(
        self,
        variances: tuple[float, float] = (0.1, 0.2),
        max_log_scale: float = DEFAULT_MAX_LOG_SCALE,
    ) -> None:
        self.variances = (float(variances[0]), float(variances[1]))
        self.max_log_scale = float(max_log_scale)

    def __repr__(self) -> str:
        return f"BoxCoder(variances={self.variances})"

    def encode(self, gt_xyxy: Tensor, priors_cxcywh: Tensor) -> Tensor:
        """Encode ground-truth boxes relative to priors.

        Args:
            gt_xyxy (Tensor[..., 4], float): normalised xyxy ground truths, one per prior.
            priors_cxcywh (Tensor[..., 4], float): normalised cxcywh priors, broadcastable against
                ``gt_xyxy`` (e.g. ``gt_BP4`` with ``priors_P4``).

        Returns:
            Tensor[..., 4]: deltas (dx, dy, dw, dh). Zero-size ground truths are floored at a tiny
            size so the result stays finite (they should be dropped before matching anyway).
        """
        gt = xyxy_to_cxcywh(gt_xyxy)
        v_c, v_s = self.variances
        d_c = (gt[..., :2] - priors_cxcywh[..., :2]) / (v_c * priors_cxcywh[..., 2:])
        eps = torch.finfo(gt.dtype).eps
        d_s = torch.log(gt[..., 2:].clamp(min=eps) / priors_cxcywh[..., 2:]) / v_s
        return torch.cat((d_c, d_s), dim=-1)

    def decode(self, deltas: Tensor, priors_cxcywh: Tensor) -> Tensor:
        """Decode deltas relative to priors into boxes.

        Args:
            deltas (Tensor[..., 4], float): (dx, dy, dw, dh), e.g. ``box_deltas_BP4``.
            priors_cxcywh (Tensor[..., 4], float): normalised cxcywh priors, broadcastable against
                ``deltas`` (e.g. ``priors_P4``).

        Returns:
            Tensor[..., 4]: normalised xyxy boxes (not clamped to the image). Always finite for
            finite input: the log-scale is clamped at ``max_log_scale`` before ``exp``.
        """
        v_c, v_s = self.variances
        centre = priors_cxcywh[..., :2] + deltas[..., :2] * v_c * priors_cxcywh[..., 2:]
        log_scale = (deltas[..., 2:] * v_s).clamp(max=self.max_log_scale)
        size = priors_cxcywh[..., 2:] * torch.exp(log_scale)
        return torch.cat((centre - size / 2, centre + size / 2), dim=-1)


def resized_hw(image_hw: tuple[int, int], size_hw: tuple[int, int], resize: str) -> tuple[int, int]:
    """``(h, w)`` the image takes inside the network input: all of it (stretch), or its aspect
    ratio kept with the longer side fitted (letterbox; placed at the top-left corner)."""
    if resize != "letterbox":
        return int(size_hw[0]), int(size_hw[1])
    scale = min(size_hw[0] / image_hw[0], size_hw[1] / image_hw[1])
    return max(1, round(image_hw[0] * scale)), max(1, round(image_hw[1] * scale))


def frame_hw(
    image_hw: tuple[int, int], size_hw: tuple[int, int], resize: str
) -> tuple[float, float]:
    """``(H, W)`` in pixels of the original image that the whole network input spans.

    Normalised xyxy boxes of the input times ``(W, H, W, H)`` of this frame are pixels of the
    original image: the image's own size for stretch; larger on the padded side for letterbox.
    """
    inner_h, inner_w = resized_hw(image_hw, size_hw, resize)
    return size_hw[0] * image_hw[0] / inner_h, size_hw[1] * image_hw[1] / inner_w
