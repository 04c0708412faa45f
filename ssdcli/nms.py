"""Greedy non-maximum suppression for many groups of boxes at once, on the host with NumPy.

:func:`greedy_nms_in_order` gives exactly what ``torchvision.ops.nms`` gives for each group
(the same float32 IoU arithmetic and comparison), for all (image, class) groups of a batch in a
few array operations instead of one kernel call per group; ``ssdcli.postprocess`` uses it.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

__all__ = ["greedy_nms_in_order"]

# Box pairs compared at once by the grouped NMS (about 40 bytes each).
_MAX_PAIRS = 1 << 22


def _float32_at_most(value: float) -> np.float32:
    """The largest float32 <= ``value``: ``x > it`` in float32 equals ``x > value`` in float64,
    the comparison of ``torchvision.ops.nms``."""
    low = np.float32(value)
    return np.nextafter(low, np.float32(-np.inf)) if float(low) > value else low


def greedy_nms_in_order(
    boxes_N4: np.ndarray, groups_N: np.ndarray, iou_threshold: float, max_per_group: int = 0
) -> np.ndarray:
    """Greedy NMS within each group, visiting the boxes of a group in input order.

    Equals ``torchvision.ops.nms`` per group with scores decreasing in input order (the same
    float32 IoU arithmetic: a later box is dropped when its IoU with a kept earlier box of its
    group is above ``iou_threshold``). All groups at once: the IoU of every (earlier, later) pair
    of boxes of a group gives the "would suppress" edges, then the fixed point of "kept = not
    suppressed by a kept earlier box" is reached by iterating from "all kept" (exact: the edges
    form no cycle, so after t rounds every box at depth <= t along them is decided).

    Args:
        boxes_N4 (ndarray[N, 4], float32): xyxy boxes, any one frame.
        groups_N (ndarray[N], int64): group id (>= 0) of each box; boxes of different groups
            never suppress each other.
        iou_threshold: IoU above which a box is suppressed.
        max_per_group: if > 0, only the first this many boxes of each group take part.

    Returns:
        ndarray[N], bool: True for kept boxes.
    """
    kept_N = np.zeros(groups_N.size, dtype=bool)
    if groups_N.size == 0:
        return kept_N
    order = np.argsort(groups_N, kind="stable")  # group by group, each in input order
    counts = np.bincount(groups_N)
    rank_o = np.arange(order.size) - np.repeat(np.cumsum(counts) - counts, counts)
    if 0 < max_per_group < counts.max():
        inside = rank_o < max_per_group
        order, rank_o = order[inside], rank_o[inside]
        counts = np.minimum(counts, max_per_group)
    counts = counts[counts > 0]
    coords_4o = boxes_N4.T.take(order, axis=1)  # long rows: NumPy is slow on short ones
    later_o = np.repeat(counts, counts) - rank_o - 1  # boxes after this one in its group
    # Whole groups, in runs of at most about _MAX_PAIRS pairs (memory): one run, usually. Only
    # the first group of a run can be larger; one that large goes to torchvision's kernel.
    run_g = np.cumsum(counts * (counts - 1) // 2) // _MAX_PAIRS
    ends = np.cumsum(counts)[np.append(run_g[1:] != run_g[:-1], True)]
    for start, end in zip(np.append(0, ends[:-1]), ends, strict=True):
        if later_o[start] * (later_o[start] + 1) // 2 > _MAX_PAIRS:
            first = slice(start, start + later_o[start] + 1)
            boxes_n4 = torch.from_numpy(coords_4o[:, first].T.copy())
            scores_n = torch.arange(boxes_n4.shape[0], 0, -1, dtype=torch.float32)
            kept_N[order[first][torchvision.ops.nms(boxes_n4, scores_n, iou_threshold)]] = True
            start = first.stop
        if start < end:
            part = slice(start, end)
            kept_N[order[part]] = _greedy_pairs(coords_4o[:, part], later_o[part], iou_threshold)
    return kept_N


def _greedy_pairs(coords_4n: np.ndarray, later_n: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Kept flags of whole groups of boxes (``coords_4n``: rows x1, y1, x2, y2; group by group,
    each in visiting order; ``later_n``: boxes after each one in its group)."""
    # Every (earlier, later) pair of a group: box i pairs with the later boxes of its group.
    first_e = np.repeat(np.arange(later_n.size), later_n)
    second_e = np.arange(first_e.size) - np.repeat(np.cumsum(later_n) - later_n - 1, later_n)
    second_e += first_e
    edge = _iou_above(coords_4n, first_e, second_e, _float32_at_most(iou_threshold))
    first_e, second_e = first_e[edge], second_e[edge]
    keep_n = np.ones(later_n.size, dtype=bool)
    while True:  # at most the largest group size rounds; usually two
        new_n = np.ones(later_n.size, dtype=bool)
        new_n[second_e[keep_n[first_e]]] = False
        if np.array_equal(new_n, keep_n):
            return keep_n
        keep_n = new_n


def _iou_above(
    coords_4o: np.ndarray, first_e: np.ndarray, second_e: np.ndarray, iou_threshold: np.float32
) -> np.ndarray:
    """Whether IoU(first, second) > threshold for each pair of boxes (``coords_4o``: rows x1,
    y1, x2, y2), computed as torchvision's NMS kernel does (float32; an empty union gives NaN,
    which is not above the threshold)."""
    area_o = (coords_4o[2] - coords_4o[0]) * (coords_4o[3] - coords_4o[1])
    a_4e, b_4e = coords_4o.take(first_e, axis=1), coords_4o.take(second_e, axis=1)
    overlap_2e = np.minimum(a_4e[2:], b_4e[2:]) - np.maximum(a_4e[:2], b_4e[:2])
    np.maximum(overlap_2e, np.float32(0.0), out=overlap_2e)
    inter_e = overlap_2e[0] * overlap_2e[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter_e / (area_o[first_e] + area_o[second_e] - inter_e) > iou_threshold
