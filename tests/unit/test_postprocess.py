"""Post-processing: NMS per class and image, top-k, pixel rescaling, empty results, and equality
with a plain per-image, per-class reference built on ``torchvision.ops.nms``."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision

from ssdcli.boxes import BoxCoder
from ssdcli.postprocess import Detections, PostProcessor, PostprocessSettings

# Normalised cxcywh priors: 0 and 1 overlap (IoU 0.818), 2 is apart.
PRIORS = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.3, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
BOX0 = [0.0, 0.0, 0.5, 0.5]
BOX1 = [0.05, 0.0, 0.55, 0.5]
BOX2 = [0.5, 0.5, 1.0, 1.0]


def settings(**values: float) -> PostprocessSettings:
    """The recipe's default post-processing with ``values`` in place (any value, even one a
    recipe would refuse, such as a threshold of 2)."""
    return replace(PostprocessSettings.defaults(), **values)


def logits_from(probs: list[list[list[float]]]) -> torch.Tensor:
    """Logits whose softmax is ``probs`` (rows: background, class 0, class 1)."""
    return torch.tensor(probs).log()


def run(probs, sizes=((100, 100),), deltas=None, priors=PRIORS, **kwargs) -> list[Detections]:
    kwargs = {"score_threshold": 0.1, **kwargs}
    logits = logits_from(probs)
    if deltas is None:
        deltas = torch.zeros(logits.shape[0], logits.shape[1], 4)
    return PostProcessor(priors, BoxCoder(), settings(**kwargs))(logits, deltas, list(sizes))


def test_overlapping_boxes_of_different_classes_are_both_kept() -> None:
    probs = [[[0.05, 0.9, 0.05], [0.15, 0.05, 0.8], [0.98, 0.01, 0.01]]]
    (det,) = run(probs, sizes=[(1, 1)])
    assert det.labels_D.tolist() == [0, 1]
    torch.testing.assert_close(det.scores_D, torch.tensor([0.9, 0.8]))
    torch.testing.assert_close(det.boxes_D4, torch.tensor([BOX0, BOX1]))


def test_same_class_overlap_is_suppressed() -> None:
    probs = [[[0.05, 0.9, 0.05], [0.35, 0.6, 0.05], [0.3, 0.7, 0.0 + 1e-9]]]
    (det,) = run(probs, sizes=[(1, 1)])
    # Box 1 (IoU 0.82 with box 0, same class) is gone; box 2 does not overlap and stays.
    assert det.labels_D.tolist() == [0, 0]
    torch.testing.assert_close(det.scores_D, torch.tensor([0.9, 0.7]))
    torch.testing.assert_close(det.boxes_D4, torch.tensor([BOX0, BOX2]))
    # With a looser NMS threshold both survive.
    (det,) = run(probs, sizes=[(1, 1)], nms_iou=0.9)
    assert len(det) == 3


def test_nms_never_crosses_images() -> None:
    probs = [[[0.1, 0.9, 1e-9], [1.0, 1e-9, 1e-9], [1.0, 1e-9, 1e-9]]] * 2
    dets = run(probs, sizes=[(1, 1), (1, 1)])
    assert [len(d) for d in dets] == [1, 1]


def test_max_detections_and_pre_nms_top_k() -> None:
    probs = [[[0.1, 0.5, 0.4], [0.72, 0.2, 0.08], [0.1, 0.3, 0.6]]]
    (det,) = run(probs, sizes=[(1, 1)], nms_iou=1.0)
    assert det.scores_D.tolist() == sorted(det.scores_D.tolist(), reverse=True)
    assert len(det) == 5  # every score above 0.1
    (det,) = run(probs, sizes=[(1, 1)], nms_iou=1.0, max_detections=2)
    torch.testing.assert_close(det.scores_D, torch.tensor([0.6, 0.5]))
    assert det.labels_D.tolist() == [1, 0]
    # One candidate per class per image enters NMS: the best of each class.
    (det,) = run(probs, sizes=[(1, 1)], nms_iou=1.0, pre_nms_top_k=1)
    torch.testing.assert_close(det.scores_D, torch.tensor([0.6, 0.5]))


def test_pixel_rescale_with_non_square_originals_and_clamping() -> None:
    probs = [[[0.1, 0.9, 1e-9], [1.0, 1e-9, 1e-9], [0.2, 1e-9, 0.8]]] * 2
    deltas = torch.zeros(2, 3, 4)
    deltas[:, 2, 0] = 2.0  # prior 2 moved right by 2 * 0.1 * 0.5 = 0.1: x2 = 1.1 -> clamped
    dets = run(probs, sizes=[(100, 200), (50, 400)], deltas=deltas)
    torch.testing.assert_close(
        dets[0].boxes_D4, torch.tensor([[0.0, 0.0, 100.0, 50.0], [120.0, 50.0, 200.0, 100.0]])
    )
    torch.testing.assert_close(
        dets[1].boxes_D4, torch.tensor([[0.0, 0.0, 200.0, 25.0], [240.0, 25.0, 400.0, 50.0]])
    )
    assert dets[1].boxes_D4.dtype == torch.float32 and dets[1].labels_D.dtype == torch.long


def test_empty_results() -> None:
    probs = [[[1.0, 1e-9, 1e-9]] * 3, [[0.95, 0.05, 1e-9]] * 3]
    dets = run(probs, sizes=[(10, 20), (30, 40)])
    for det in dets:
        assert det.boxes_D4.shape == (0, 4) and det.scores_D.shape == (0,)
        assert det.labels_D.shape == (0,) and det.labels_D.dtype == torch.long
    # Mixed: one image with detections, one without.
    dets = run([probs[0], [[0.1, 0.9, 1e-9]] * 3], sizes=[(10, 20), (30, 40)])
    assert [len(d) for d in dets] == [0, 2]  # priors 0 and 1 overlap: one of them survives


# --- Equality with a plain reference: per image, per class: threshold, top-k, NMS, then top-D ---


def reference(logits, deltas, priors, sizes, threshold, iou, max_detections, top_k):
    """Straightforward per-image, per-class loop with ``torchvision.ops.nms``; ties broken by
    class, then prior index (stable sorts)."""
    probs = logits.float().softmax(dim=-1)
    boxes = BoxCoder().decode(deltas.float(), priors).clamp(0.0, 1.0)
    results = []
    for b, (height, width) in enumerate(sizes):
        scores, labels, kept_boxes = [], [], []
        for c in range(1, logits.shape[-1]):
            idx = (probs[b, :, c] > threshold).nonzero().squeeze(1)
            score, order = probs[b, idx, c].sort(descending=True, stable=True)
            idx, score = idx[order][:top_k], score[:top_k]
            keep = torchvision.ops.nms(boxes[b, idx], score, iou)
            scores.append(score[keep])
            labels.append(torch.full((len(keep),), c - 1))
            kept_boxes.append(boxes[b, idx[keep]])
        order = torch.cat(scores).sort(descending=True, stable=True).indices[:max_detections]
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        pixels = torch.minimum((torch.cat(kept_boxes)[order] * scale).clamp(min=0.0), scale)
        results.append((pixels, torch.cat(scores)[order], torch.cat(labels)[order]))
    return results


def realistic(seed: int, batch: int, num_priors: int = 300, num_k: int = 6, ties: bool = False):
    """Background-dominated logits with a few confident priors, priors in clusters (so NMS has
    work to do), class 2 never above any threshold (an empty class)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(num_priors // 6, 2, generator=gen).repeat_interleave(6, dim=0)
    sizes = 0.05 + 0.4 * torch.rand(num_priors, 2, generator=gen)
    priors = torch.cat((centres + 0.02 * torch.randn(num_priors, 2, generator=gen), sizes), 1)
    logits = torch.randn(batch, num_priors, num_k, generator=gen)
    logits[..., 0] += 4.0
    hot = torch.rand(batch, num_priors, generator=gen) < 0.05
    logits[..., 1:] += (
        hot.unsqueeze(-1) * 6.0 * torch.rand(batch, num_priors, num_k - 1, generator=gen)
    )
    logits[..., 2] = -30.0
    deltas = 0.5 * torch.randn(batch, num_priors, 4, generator=gen)
    if ties:  # equal scores across priors and classes, and identical boxes
        logits = (logits * 2).round() / 2
        deltas = (deltas * 2).round() / 2
        priors = (priors * 8).round().clamp(min=1) / 8
    return priors, logits, deltas


def assert_same(ours, expected) -> None:
    assert len(ours) == len(expected)
    for det, (boxes, scores, labels) in zip(ours, expected, strict=True):
        assert torch.equal(det.labels_D, labels)
        assert torch.equal(det.scores_D, scores)
        torch.testing.assert_close(det.boxes_D4, boxes, rtol=0.0, atol=1e-4)


SETTINGS = [  # threshold, iou, max_detections, top_k
    (0.01, 0.45, 200, 400),  # SSD's
    (0.01, 0.45, 20, 400),  # few detections: NMS runs on the best candidates only
    (0.05, 0.3, 10, 3),  # the per-class top-k binds
    (0.2, 0.7, 5, 50),
    (0.0, 0.45, 30, 400),  # every score passes
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("setting", SETTINGS)
def test_equals_plain_reference(seed: int, batch: int, ties: bool, setting: tuple) -> None:
    priors, logits, deltas = realistic(seed, batch, ties=ties)
    sizes = [(300 + 17 * i, 500 - 31 * i) for i in range(batch)]
    threshold, iou, max_detections, top_k = setting
    ours = PostProcessor(
        priors, BoxCoder(), PostprocessSettings(threshold, iou, max_detections, top_k)
    )(logits, deltas, sizes)
    expected = reference(logits, deltas, priors, sizes, threshold, iou, max_detections, top_k)
    assert_same(ours, expected)
    assert sum(len(d) for d in ours) > 0


def test_heavy_suppression_takes_more_candidates() -> None:
    # 60 near-identical boxes of one class: NMS keeps one of each cluster, so the first try
    # (the best few candidates) has too few survivors and more candidates are taken.
    priors = torch.tensor([[0.2, 0.2, 0.3, 0.3]] * 60 + [[0.7, 0.7, 0.3, 0.3]] * 60)
    logits = torch.zeros(1, 120, 3)
    logits[0, :, 1] = torch.linspace(4.0, 2.0, 120)
    ours = PostProcessor(priors, BoxCoder(), settings(max_detections=2))(
        logits, torch.zeros(1, 120, 4), [(100, 100)]
    )
    expected = reference(logits, torch.zeros(1, 120, 4), priors, [(100, 100)], 0.01, 0.45, 2, 400)
    assert_same(ours, expected)
    assert len(ours[0]) == 2


def test_iou_threshold_compared_as_torchvision_does() -> None:
    # Boxes [0, 0, 1, 1] and [0, 0, 1, 0.5] of one class: IoU exactly 0.5.
    priors = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.5, 0.25, 1.0, 0.5]])
    probs = [[[0.05, 0.9, 0.05], [0.15, 0.8, 0.05]]]
    assert len(run(probs, sizes=[(1, 1)], nms_iou=0.5, priors=priors)[0]) == 2  # not above
    # A threshold a hair below 0.5 rounds to 0.5 in float32; torchvision compares in float64.
    below = 0.5 - 1e-12
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5]])
    assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), below).tolist() == [0]
    assert len(run(probs, sizes=[(1, 1)], nms_iou=below, priors=priors)[0]) == 1


def test_thresholds_at_the_ends_and_half_precision() -> None:
    priors, logits, deltas = realistic(7, 2)
    sizes = [(200, 300), (300, 200)]
    for threshold in (1.0, 2.0):  # softmax scores never exceed 1
        dets = PostProcessor(priors, BoxCoder(), settings(score_threshold=threshold))(
            logits, deltas, sizes
        )
        assert [len(d) for d in dets] == [0, 0]
    half = PostProcessor(priors, BoxCoder())(logits.half(), deltas.half(), sizes)
    expected = reference(logits.half(), deltas.half(), priors, sizes, 0.01, 0.45, 200, 400)
    assert_same(half, expected)


def test_non_finite_logits_give_no_detection_for_that_prior() -> None:
    probs = [[[0.05, 0.9, 0.05], [0.35, 0.6, 0.05], [0.3, 0.7, 1e-9]]]
    logits = logits_from(probs)
    logits[0, 0, 2] = float("nan")
    (det,) = PostProcessor(PRIORS, BoxCoder(), settings(score_threshold=0.1))(
        logits, torch.zeros(1, 3, 4), [(1, 1)]
    )
    # Prior 0 is gone (NaN softmax): prior 1 is no longer suppressed by it.
    assert det.labels_D.tolist() == [0, 0] and det.scores_D.tolist() == pytest.approx([0.7, 0.6])
