"""VOC AP on hand-worked cases, against a plain-loop reference, and against pycocotools."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdcli.errors import EvalError
from ssdcli.metrics.coco import coco_eval, coco_image_ids, to_coco_results
from ssdcli.metrics.voc import ImageDetections, class_aps, mean_ap, voc_ap, voc_pr_curves


@dataclass
class GT:
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray


def gt(boxes, labels, difficult=None, iscrowd=None) -> GT:
    n = len(labels)
    return GT(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(labels, np.int64),
        np.zeros(n, bool) if difficult is None else np.asarray(difficult, bool),
        np.zeros(n, bool) if iscrowd is None else np.asarray(iscrowd, bool),
    )


def det(boxes, scores, labels) -> ImageDetections:
    return ImageDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


A = [0, 0, 9, 9]  # devkit size 10 x 10
B = [20, 20, 39, 39]
FAR = [100, 100, 120, 120]


def aps(gts, dets, num_classes):
    curves = voc_pr_curves(gts, dets, num_classes)
    return class_aps(curves, True), class_aps(curves, False), curves


def test_duplicate_detection_is_false_positive():
    # Sorted: TP(A) 0.9, FP(dup A) 0.8, TP(B) 0.7; npos 2.
    # recall .5 .5 1, precision 1 .5 2/3.
    # area: 0.5 * 1 + 0.5 * 2/3 = 5/6.  11-point: t=0..0.5 (6 points) -> 1, t=.6..1 (5) -> 2/3:
    # (6 + 5 * 2/3) / 11 = 28/33.
    ap07, ap, curves = aps([gt([A, B], [0, 0])], [det([A, A, B], [0.9, 0.8, 0.7], [0, 0, 0])], 1)
    np.testing.assert_allclose(curves[0].recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(curves[0].precision, [1.0, 0.5, 2 / 3])
    assert ap[0] == pytest.approx(5 / 6)
    assert ap07[0] == pytest.approx(28 / 33)


def test_difficult_is_neither_tp_nor_fp_and_not_counted():
    # gts: A normal, B difficult -> npos 1. Sorted: B 0.9 ignored, B again 0.85 ignored,
    # A 0.8 TP, FAR 0.6 FP. tp 0 0 1 1, fp 0 0 0 1 -> recall 0 0 1 1, precision 0 0 1 .5.
    # Envelope is 1 up to recall 1: AP = 1 for both definitions. Counting B as a normal object
    # would give npos 2 and a duplicate FP.
    g = gt([A, B], [0, 0], difficult=[False, True])
    d = det([B, B, A, FAR], [0.9, 0.85, 0.8, 0.6], [0, 0, 0, 0])
    ap07, ap, curves = aps([g], [d], 1)
    assert curves[0].num_gt == 1
    np.testing.assert_allclose(curves[0].recall, [0, 0, 1, 1])
    np.testing.assert_allclose(curves[0].precision, [0, 0, 1, 0.5])
    assert ap[0] == 1.0 and ap07[0] == 1.0


def test_class_without_ground_truth_is_nan_and_left_out_of_mean():
    # class 0: one perfect detection -> AP 1. class 1: detections only -> undefined.
    # class 2: one object, only a far-away detection -> every detection FP, AP 0.
    g = gt([A, B], [0, 2])
    d = det([A, B, FAR], [0.9, 0.8, 0.7], [0, 1, 2])
    ap07, ap, _ = aps([g], [d], 3)
    assert ap[0] == 1.0 and np.isnan(ap[1]) and ap[2] == 0.0
    assert np.isnan(ap07[1])
    assert mean_ap(ap) == pytest.approx(0.5)  # (1 + 0) / 2
    assert np.isnan(mean_ap(np.array([np.nan])))


def test_all_misses_and_no_detections_give_zero():
    ap07, ap, _ = aps([gt([A], [0]), gt([B], [1])], [det([FAR], [0.5], [0]), det([], [], [])], 2)
    assert list(ap) == [0.0, 0.0] and list(ap07) == [0.0, 0.0]


def test_overlap_must_be_strictly_above_half_with_devkit_widths():
    # gt A is 10 x 10 (devkit +1 widths). [0,0,4,9] is 5 x 10: IoU = 50 / 100 = 0.5 -> miss.
    # [0,0,5,9] is 6 x 10: IoU = 60 / 100 = 0.6 -> hit. (Without +1 widths: 45/81 and 54/81.)
    _, ap_half, _ = aps([gt([A], [0])], [det([[0, 0, 4, 9]], [0.9], [0])], 1)
    _, ap_hit, _ = aps([gt([A], [0])], [det([[0, 0, 5, 9]], [0.9], [0])], 1)
    assert ap_half[0] == 0.0 and ap_hit[0] == 1.0


def test_second_detection_on_taken_best_gt_is_fp_even_if_another_gt_overlaps():
    # A2 overlaps A with IoU 80/120 = 0.67. The second copy of A picks A (IoU 1, taken) and is a
    # false positive, as in the devkit, although it overlaps A2 by more than 0.5.
    # recall .5 .5, precision 1 .5: area 0.5; 11-point t=0..0.5 -> 1: 6/11.
    a2 = [2, 0, 11, 9]
    ap07, ap, _ = aps([gt([A, a2], [0, 0])], [det([A, A], [0.9, 0.8], [0, 0])], 1)
    assert ap[0] == pytest.approx(0.5)
    assert ap07[0] == pytest.approx(6 / 11)


def test_detections_sorted_over_the_whole_split_and_labels_checked():
    # Image 1 holds the lower-scored TP, image 0 an FP with a higher score: sorted FP(.9), TP(.8):
    # recall 0 1, precision 0 .5 -> AP .5 for both.
    ap07, ap, _ = aps([gt([], []), gt([A], [0])], [det([FAR], [0.9], [0]), det([A], [0.8], [0])], 1)
    assert ap[0] == 0.5 and ap07[0] == 0.5
    with pytest.raises(EvalError, match="outside"):
        voc_pr_curves([gt([A], [0])], [det([A], [0.9], [3])], 1)
    with pytest.raises(EvalError, match="one detection set per image"):
        voc_pr_curves([gt([A], [0])], [], 1)


def test_voc07_uses_reference_thresholds():
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 0.3: a curve ending at recall 3/10 does
    # not reach the 0.3 threshold in voc_eval.py, so only t = 0, .1, .2 count: 3/11.
    assert voc_ap(np.array([0.1, 0.2, 0.3]), np.ones(3), True) == pytest.approx(3 / 11)
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]), True) == pytest.approx(8.5 / 11)


# ---- an independent, straightforward devkit implementation (loops), for random comparisons ----


def reference_voc(gts, dets, num_classes, use_07):
    result = []
    for c in range(num_classes):
        recs = {}
        npos = 0
        for i, g in enumerate(gts):
            keep = g.labels == c
            ignore = (g.difficult | g.iscrowd)[keep]
            recs[i] = (g.boxes_xyxy[keep].astype(float), ignore, [False] * int(keep.sum()))
            npos += int((~ignore).sum())
        found = [
            (float(s), i, b.astype(float))
            for i, d in enumerate(dets)
            for b, s, lab in zip(d.boxes_D4, d.scores_D, d.labels_D, strict=True)
            if lab == c
        ]
        order = np.argsort([-s for s, _, _ in found], kind="stable")
        tp, fp = [], []
        for k in order:
            _, i, bb = found[k]
            boxes, ignore, taken = recs[i]
            ovmax, jmax = -np.inf, -1
            for j, g in enumerate(boxes):
                iw = max(min(g[2], bb[2]) - max(g[0], bb[0]) + 1.0, 0.0)
                ih = max(min(g[3], bb[3]) - max(g[1], bb[1]) + 1.0, 0.0)
                inter = iw * ih
                union = (
                    (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                    + (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0)
                    - inter
                )
                if inter / union > ovmax:
                    ovmax, jmax = inter / union, j
            hit = miss = 0
            if ovmax > 0.5:
                if not ignore[jmax]:
                    if not taken[jmax]:
                        hit, taken[jmax] = 1, True
                    else:
                        miss = 1
            else:
                miss = 1
            tp.append(hit)
            fp.append(miss)
        if npos == 0:
            result.append(np.nan)
            continue
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        if use_07:
            ap = 0.0
            for t in np.arange(0.0, 1.1, 0.1):
                ap += (np.max(prec[rec >= t]) if np.sum(rec >= t) else 0.0) / 11.0
        else:
            mrec = np.concatenate(([0.0], rec, [1.0]))
            mpre = np.concatenate(([0.0], prec, [0.0]))
            for i in range(mpre.size - 1, 0, -1):
                mpre[i - 1] = max(mpre[i - 1], mpre[i])
            idx = np.where(mrec[1:] != mrec[:-1])[0]
            ap = np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])
        result.append(ap)
    return np.array(result)


coord = st.integers(0, 30)


@st.composite
def box(draw):
    x1, y1 = draw(coord), draw(coord)
    return [x1, y1, x1 + draw(st.integers(0, 12)), y1 + draw(st.integers(0, 12))]


@st.composite
def scene(draw, num_classes=3):
    gts, dets = [], []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 5))
        gts.append(
            gt(
                [draw(box()) for _ in range(n)],
                [draw(st.integers(0, num_classes - 1)) for _ in range(n)],
                difficult=[draw(st.booleans()) for _ in range(n)],
                iscrowd=[draw(st.integers(0, 9)) == 0 for _ in range(n)],
            )
        )
        m = draw(st.integers(0, 8))
        dets.append(
            det(
                [draw(box()) for _ in range(m)],
                [draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9])) for _ in range(m)],  # ties
                [draw(st.integers(0, num_classes - 1)) for _ in range(m)],
            )
        )
    return gts, dets


@settings(max_examples=150, deadline=None)
@given(scene())
def test_matches_plain_loop_reference(case):
    gts, dets = case
    curves = voc_pr_curves(gts, dets, 3)
    for use_07 in (True, False):
        np.testing.assert_allclose(
            class_aps(curves, use_07), reference_voc(gts, dets, 3, use_07), rtol=0, atol=1e-12
        )


# ---- agreement with pycocotools where the definitions coincide ----


def coco_101(curve) -> float:
    """COCO's 101-point interpolation of a curve, written out for the comparison."""
    if curve.recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(curve.precision[::-1])[::-1]
    points = [
        envelope[np.searchsorted(curve.recall, r, side="left")] if r <= curve.recall[-1] else 0.0
        for r in np.linspace(0.0, 1.0, 101)
    ]
    return float(np.mean(points))


def test_perfect_and_ordered_cases_equal_pycocotools_ap50():
    # Perfect detections: 1 for every definition. Second case: FP first then two TPs (npos 2):
    # precision 0, 1/2, 2/3 reaching recall 1, so the envelope is 2/3 everywhere and area AP =
    # 11-point AP = 101-point AP = 2/3.
    cases = [
        ([gt([A, B], [0, 1])], [det([A, B], [0.9, 0.8], [0, 1])]),
        ([gt([A, B], [0, 0])], [det([FAR, A, B], [0.9, 0.8, 0.7], [0, 0, 0])]),
    ]
    for gts, dets in cases:
        classes = int(max(g.labels.max() for g in gts)) + 1
        curves = voc_pr_curves(gts, dets, classes)
        coco = coco_eval(gts, dets, [f"c{i}" for i in range(classes)])
        np.testing.assert_allclose(class_aps(curves, False), coco.ap50_per_class, atol=1e-12)
        np.testing.assert_allclose(class_aps(curves, True), coco.ap50_per_class, atol=1e-12)
    assert coco.ap50_per_class[0] == pytest.approx(2 / 3)


@st.composite
def separated_scene(draw):
    """Objects on a 40-pixel grid; detections are exact copies (IoU 1), duplicates or far misses,
    so the devkit's and COCO's matching rules cannot disagree."""
    gts, dets = [], []
    for _ in range(draw(st.integers(1, 3))):
        cells = draw(st.lists(st.integers(0, 8), min_size=0, max_size=5, unique=True))
        boxes = [
            [40 * (k % 3), 40 * (k // 3), 40 * (k % 3) + 19, 40 * (k // 3) + 19] for k in cells
        ]
        labels = [draw(st.integers(0, 1)) for _ in cells]
        found_boxes, scores, found_labels = [], [], []
        for b, lab in zip(boxes, labels, strict=True):
            for _ in range(draw(st.integers(0, 2))):  # 0 = missed, 2 = duplicate
                found_boxes.append(b)
                found_labels.append(lab)
                scores.append(draw(st.floats(0.05, 1.0)))
        for _ in range(draw(st.integers(0, 2))):
            found_boxes.append([200, 200, 219, 219])
            found_labels.append(draw(st.integers(0, 1)))
            scores.append(draw(st.floats(0.05, 1.0)))
        gts.append(gt(boxes, labels))
        dets.append(det(found_boxes, scores, found_labels))
    return gts, dets


@settings(max_examples=40, deadline=None)
@given(separated_scene())
def test_curves_agree_with_pycocotools_ap50(case):
    gts, dets = case
    curves = voc_pr_curves(gts, dets, 2)
    coco = coco_eval(gts, dets, ["a", "b"])
    for curve, coco_ap50 in zip(curves, coco.ap50_per_class, strict=True):
        if curve.num_gt == 0:
            assert np.isnan(coco_ap50)
        else:
            assert coco_101(curve) == pytest.approx(coco_ap50, abs=1e-12)


def test_coco_results_and_ids():
    results = to_coco_results([det([[10, 20, 30, 60]], [0.5], [1])], [42], [7, 9])
    assert results == [{"image_id": 42, "category_id": 9, "bbox": [10, 20, 20, 40], "score": 0.5}]
    assert coco_image_ids(["000005", "12"]) == [5, 12]
    assert coco_image_ids(["2008_000001", "x"]) == [1, 2]
    assert coco_image_ids(["1", "01"]) == [1, 2]  # not unique as integers


def test_coco_stats_and_empty_detections():
    # Perfect detections of a 20 x 20 (small, area 400 < 32^2) object: AP = AP50 = APs = 1,
    # no medium/large objects -> NaN.
    g = [gt([[0, 0, 20, 20]], [0])]
    stats = coco_eval(g, [det([[0, 0, 20, 20]], [0.9], [0])], ["a"]).stats
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["APs"] == pytest.approx(1.0)
    assert np.isnan(stats["APm"]) and np.isnan(stats["APl"])
    assert coco_eval(g, [det([], [], [])], ["a"]).stats["AP"] == 0.0
