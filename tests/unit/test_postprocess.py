"""Post-processing: NMS per class and image, top-k, pixel rescaling, empty results."""

from __future__ import annotations

import torch

from ssdcli.boxes import BoxCoder
from ssdcli.postprocess import Detections, PostProcessor

# Normalised cxcywh priors: 0 and 1 overlap (IoU 0.818), 2 is apart.
PRIORS = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.3, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
BOX0 = [0.0, 0.0, 0.5, 0.5]
BOX1 = [0.05, 0.0, 0.55, 0.5]
BOX2 = [0.5, 0.5, 1.0, 1.0]


def logits_from(probs: list[list[list[float]]]) -> torch.Tensor:
    """Logits whose softmax is ``probs`` (rows: background, class 0, class 1)."""
    return torch.tensor(probs).log()


def run(probs, sizes=((100, 100),), deltas=None, **kwargs) -> list[Detections]:
    kwargs = {"score_threshold": 0.1, **kwargs}
    logits = logits_from(probs)
    if deltas is None:
        deltas = torch.zeros(logits.shape[0], logits.shape[1], 4)
    return PostProcessor(PRIORS, BoxCoder(), **kwargs)(logits, deltas, list(sizes))


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
