"""Confusion matrix, false-positive kinds, F1 threshold and the gallery on hand-made detections.

Classes: 0 = cat, 1 = dog; index 2 of the matrix is background. Every expected cell is worked out
by hand in the comments of :func:`_case` (threshold 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from ssdcli.metrics import analysis as an
from ssdcli.metrics.gallery import confident_false_positives, worst_images
from ssdcli.metrics.voc import ImageDetections

CAT, DOG, BG = 0, 1, 2


@dataclass
class Gt:
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray


def gt(boxes, labels, difficult=None) -> Gt:
    n = len(labels)
    flags = np.zeros(n, bool) if difficult is None else np.asarray(difficult, bool)
    return Gt(
        np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels), flags, np.zeros(n, bool)
    )


def dets(boxes, scores, labels) -> ImageDetections:
    return ImageDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(labels, np.int64),
    )


def _case() -> tuple[list[Gt], list[ImageDetections]]:
    images = [
        # A: cat g0, dog g1.
        (
            gt([[0, 0, 10, 10], [20, 0, 30, 10]], [CAT, DOG]),
            dets(
                [[0, 0, 10, 10], [0, 0, 10, 9], [20, 0, 30, 10], [0, 0, 4, 10]],
                [0.9, 0.8, 0.7, 0.3],
                # TP [cat, cat]; duplicate of g0 (IoU 0.9) [bg, cat]; cat on the dog (IoU 1,
                # step 3) [dog, cat]; below the threshold.
                [CAT, CAT, CAT, DOG],
            ),
        ),
        # B: no objects; a dog at 0.95 is background [bg, dog]; a cat at 0.2 is below.
        (gt(np.zeros((0, 4)), []), dets([[5, 5, 15, 15], [0, 0, 9, 9]], [0.95, 0.2], [DOG, CAT])),
        # C: dog g0 (missed: [dog, bg]), cat g1 (missed: [cat, bg]), difficult cat g2.
        (
            gt(
                [[0, 0, 20, 20], [50, 50, 60, 60], [100, 100, 110, 110]],
                [DOG, CAT, CAT],
                [False, False, True],
            ),  # fmt: skip
            dets(
                [[0, 0, 20, 8], [100, 100, 110, 110], [10, 0, 30, 20], [200, 200, 210, 210]],
                [0.6, 0.85, 0.55, 0.5],
                # dog on dog g0 at IoU 160/400 = 0.4: localisation [bg, dog]; cat on the
                # difficult cat: ignored; cat on dog g0 at IoU 200/600: weak confusion
                # [bg, cat]; cat far from everything at exactly the threshold: background [bg, cat].
                [DOG, CAT, CAT, CAT],
            ),
        ),
    ]
    return [g for g, _ in images], [d for _, d in images]


def test_every_cell_of_the_confusion_matrix() -> None:
    gts, found = _case()
    result = an.analyse(gts, found, num_classes=2, threshold=0.5)
    expected = np.array(
        [
            [1, 0, 1],  # cat: one TP, one missed (C g1)
            [1, 0, 1],  # dog: detected as a cat (A g1), one missed (C g0)
            [3, 2, 0],  # false detections: cat A d1, C d2, C d3; dog B d0, C d0
        ]
    )
    np.testing.assert_array_equal(result.confusion, expected)
    np.testing.assert_allclose(
        an.normalise_rows(result.confusion),
        [[0.5, 0, 0.5], [0.5, 0, 0.5], [0.6, 0.4, 0]],
    )


def test_false_positive_kinds_per_class() -> None:
    gts, found = _case()
    result = an.analyse(gts, found, num_classes=2, threshold=0.5)
    assert an.FP_KINDS == ("confusion", "duplicate", "localisation", "background")
    np.testing.assert_array_equal(result.fp_kinds, [[2, 1, 0, 1], [0, 0, 1, 1]])
    image_a, image_b, image_c = result.matches
    assert image_a.det_kind.tolist() == [an.TP, an.DUPLICATE, an.CONFUSION, an.BELOW]
    assert image_a.det_gt.tolist() == [0, -1, 1, -1]
    assert image_a.gt_state.tolist() == [an.GT_DETECTED, an.GT_CONFUSED]
    assert image_b.det_kind.tolist() == [an.BACKGROUND, an.BELOW]
    assert image_c.det_kind.tolist() == [an.LOCALISATION, an.IGNORED, an.CONFUSION, an.BACKGROUND]
    assert image_c.gt_state.tolist() == [an.GT_MISSED, an.GT_MISSED, an.GT_IGNORED]
    assert result.errors.tolist() == [2, 1, 5]


def test_right_class_takes_the_object_before_a_higher_scored_wrong_class() -> None:
    # A dog box at 0.9 and a cat box at 0.6 on one cat: the cat box is the TP (step 1 runs over
    # all detections first); the dog box finds no free object and is a (weak) confusion, counted
    # as a false detection: [bg, dog], not [cat, dog].
    result = an.analyse(
        [gt([[0, 0, 10, 10]], [CAT])],
        [dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.6], [DOG, CAT])],
        num_classes=2,
        threshold=0.5,
    )
    np.testing.assert_array_equal(result.confusion, [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(result.fp_kinds, [[0, 0, 0, 0], [1, 0, 0, 0]])


def test_f1_threshold_maximises_f1_over_all_classes() -> None:
    # Counted detections by score: 0.95 FP, 0.9 TP, then only FPs (0.85 is ignored); 4 objects.
    # F1 = 2TP / (2TP + FP + FN): 0 at 0.95, 2/6 at 0.9, 2/7 at 0.8, ... -> 0.9 is best.
    gts, found = _case()
    result = an.analyse(gts, found, num_classes=2)
    assert result.threshold == pytest.approx(0.9)
    assert result.f1.f1[result.f1.best] == pytest.approx(1 / 3)
    assert result.f1.recall[result.f1.best] == pytest.approx(0.25)
    assert result.f1.precision[result.f1.best] == pytest.approx(0.5)
    # At 0.9 only A's TP and B's dog remain: 3 objects missed, one false detection.
    np.testing.assert_array_equal(result.confusion, [[1, 0, 1], [0, 0, 2], [0, 1, 0]])


def test_no_detections_anywhere() -> None:
    result = an.analyse([gt([[0, 0, 5, 5]], [DOG])], [ImageDetections.empty()], num_classes=2)
    assert result.threshold == 0.5  # nothing to choose from: the documented default
    np.testing.assert_array_equal(result.confusion, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    assert worst_images(result, 3) == [0]


def test_gallery_picks_the_worst_images_and_most_confident_false_positives() -> None:
    gts, found = _case()
    # D: a perfect image; never in the gallery however many are asked for.
    gts.append(gt([[0, 0, 10, 10]], [DOG]))
    found.append(dets([[0, 0, 10, 10]], [0.99], [DOG]))
    result = an.analyse(gts, found, num_classes=2, threshold=0.5)
    assert worst_images(result, 2) == [2, 0]  # C: 5 errors, A: 2
    assert worst_images(result, 10) == [2, 0, 1]
    fps = confident_false_positives(result, found, 3)
    assert [(fp.image, fp.detection) for fp in fps] == [(1, 0), (0, 1), (0, 2)]
    assert [an.KIND_NAMES[fp.kind] for fp in fps] == ["background", "duplicate", "confusion"]
    assert [fp.label for fp in fps] == [DOG, CAT, CAT]
