"""Drawing a matched image so that TP, FP and missed objects are told apart at a glance.

Styles (RGB): detections are solid boxes, ground truths dashed ones.

* true positive: green solid box, caption ``class score``;
* false positive: red solid box, caption ``class score kind`` (confusion, duplicate, ...);
* missed object (FN): orange thick dashed box, caption ``class missed``;
* object detected as another class: magenta dashed box, caption ``class (as other)``;
* detected object: thin light-green dashed box, no caption; difficult/crowd: grey dashed.

Detections below the threshold and ignored ones are not drawn. Small images are enlarged first so
that captions stay legible.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ssdcli.metrics import analysis as an

TP_RGB, FP_RGB = (40, 200, 60), (235, 40, 40)
MISSED_RGB, CONFUSED_RGB = (255, 150, 0), (220, 40, 220)
DETECTED_GT_RGB, IGNORED_GT_RGB = (170, 255, 170), (160, 160, 160)
STYLE_LEGEND = {
    "true positive (solid)": TP_RGB,
    "false positive (solid)": FP_RGB,
    "missed object (dashed)": MISSED_RGB,
    "object detected as another class (dashed)": CONFUSED_RGB,
    "detected object (thin dashed)": DETECTED_GT_RGB,
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _dashed_rectangle(image: np.ndarray, box: Sequence[int], colour, thickness: int) -> None:
    """A dashed rectangle (OpenCV has none): dashes of about 4 line widths."""
    x0, y0, x1, y1 = box
    dash = max(4, 4 * thickness)
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True),
                                    (y0, y1, x0, False), (y0, y1, x1, False)):  # fmt: skip
        for start in range(a, b, 2 * dash):
            end = min(start + dash, b)
            p, q = ((start, fixed), (end, fixed)) if horizontal else ((fixed, start), (fixed, end))
            cv2.line(image, p, q, colour, thickness, cv2.LINE_AA)


def _ink(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever contrasts more with ``rgb``."""
    return (0, 0, 0) if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 else (255, 255, 255)


def _caption(image: np.ndarray, text: str, x: int, y: int, colour, scale: float) -> None:
    """Text on a filled box of ``colour`` above (x, y), or below it at the top edge."""
    thick = max(1, round(scale * 1.6))
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thick)
    top = y - h - base - 2 if y - h - base - 2 >= 0 else y
    left = min(max(x, 0), max(0, image.shape[1] - w - 2))
    cv2.rectangle(image, (left, top), (left + w + 2, top + h + base + 2), colour, -1)
    cv2.putText(image, text, (left + 1, top + h + 1), _FONT, scale, _ink(colour), thick,
                cv2.LINE_AA)  # fmt: skip


def enlarge(image_rgb: np.ndarray, min_side: int = 320, max_side: int = 800) -> float:
    """The scale that brings the shorter side to ``min_side`` without the longer passing
    ``max_side`` (1 when the image already fits)."""
    height, width = image_rgb.shape[:2]
    scale = max(1.0, min_side / min(height, width))
    return min(scale, max(1.0, max_side / max(height, width)))


def draw_matched(
    image_rgb: np.ndarray,
    gt_boxes_xyxy: np.ndarray,
    gt_labels: np.ndarray,
    detections: an.ImageDetections,
    match: an.ImageMatch,
    class_names: Sequence[str],
    max_shown: int = 30,
) -> np.ndarray:
    """One image with its matched ground truths and detections drawn (see the module docstring).

    Args:
        image_rgb: uint8 [H, W, 3]; boxes are xyxy pixels of this image.
        gt_boxes_xyxy: float [G, 4]; gt_labels: int [G].
        detections: the image's detections (xyxy pixels of the image).
        match: their :func:`~ssdcli.metrics.analysis.match_image` result.
        class_names: C names.
        max_shown: at most this many detections are drawn, the highest-scored (an untrained
            model's hundreds of boxes would hide the image).

    Returns:
        uint8 [H', W', 3] RGB, enlarged by :func:`enlarge`.
    """
    scale = enlarge(image_rgb)
    image = np.ascontiguousarray(image_rgb, np.uint8)
    if scale != 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    else:
        image = image.copy()
    line = max(1, round(min(image.shape[:2]) / 250))
    text_scale = max(0.4, min(image.shape[:2]) / 800)

    def pixels(box) -> list[int]:
        return [int(round(v * scale)) for v in box]

    names = list(class_names)
    d_labels = np.asarray(detections.labels_D, np.int64)
    g_labels = np.asarray(gt_labels, np.int64)
    for g, box in enumerate(np.asarray(gt_boxes_xyxy).reshape(-1, 4)):
        state, xyxy = int(match.gt_state[g]), pixels(box)
        name = names[g_labels[g]]
        if state == an.GT_MISSED:
            _dashed_rectangle(image, xyxy, MISSED_RGB, line + 1)
            _caption(image, f"{name} missed", xyxy[0], xyxy[3] + 14 * line, MISSED_RGB, text_scale)
        elif state == an.GT_CONFUSED:
            other = names[d_labels[match.gt_det[g]]]
            _dashed_rectangle(image, xyxy, CONFUSED_RGB, line + 1)
            _caption(image, f"{name} (as {other})", xyxy[0], xyxy[3] + 14 * line, CONFUSED_RGB,
                     text_scale)  # fmt: skip
        else:
            colour = DETECTED_GT_RGB if state == an.GT_DETECTED else IGNORED_GT_RGB
            _dashed_rectangle(image, xyxy, colour, line)
    order = np.argsort(-np.asarray(detections.scores_D), kind="stable")
    order = order[~np.isin(match.det_kind[order], (an.BELOW, an.IGNORED))][:max_shown]
    for d in order[::-1]:  # highest score drawn last, on top
        kind = int(match.det_kind[d])
        xyxy = pixels(detections.boxes_D4[d])
        colour = TP_RGB if kind == an.TP else FP_RGB
        text = f"{names[d_labels[d]]} {float(detections.scores_D[d]):.2f}"
        if kind != an.TP:
            text += f" {an.KIND_NAMES[kind]}"
        cv2.rectangle(image, tuple(xyxy[:2]), tuple(xyxy[2:]), (0, 0, 0), line + 3)
        cv2.rectangle(image, tuple(xyxy[:2]), tuple(xyxy[2:]), colour, line + 1)
        _caption(image, text, xyxy[0], xyxy[1], colour, text_scale)
    return image


def crop_around(image_rgb: np.ndarray, box_xyxy: Sequence[float], height: int = 160) -> np.ndarray:
    """A crop of ``image_rgb`` around a box (half its size as margin on each side), resized to
    ``height`` pixels, with the box drawn in the false-positive colour. uint8 [height, W, 3]."""
    h, w = image_rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    mx, my = max((x1 - x0) / 2, 8), max((y1 - y0) / 2, 8)
    cx0, cy0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
    cx1, cy1 = int(min(w, np.ceil(x1 + mx))), int(min(h, np.ceil(y1 + my)))
    crop = np.ascontiguousarray(image_rgb[cy0 : max(cy1, cy0 + 1), cx0 : max(cx1, cx0 + 1)])
    scale = height / crop.shape[0]
    width = max(1, min(4 * height, round(crop.shape[1] * scale)))
    crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    sx = width / max(cx1 - cx0, 1)
    p = (int((x0 - cx0) * sx), int((y0 - cy0) * scale))
    q = (int((x1 - cx0) * sx), int((y1 - cy0) * scale))
    cv2.rectangle(crop, p, q, FP_RGB, 2)
    return crop
