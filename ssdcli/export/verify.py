"""Checking an exported file against the eager model: same images, same detections.

:func:`sample_images` picks the images (a manifest's, else generated ones of several sizes);
:func:`compare_detections` matches the exported model's detections to the eager model's and
measures the largest difference of boxes (pixels and fraction of the image side) and scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdcli.errors import ExportError

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector

SAMPLE_SIZES_HW = ((480, 640), (300, 300), (640, 427), (256, 512))


@dataclass
class VerifyReport:
    """How closely an export reproduces the eager model.

    Attributes:
        images: images compared.
        detections: eager detections compared (all images).
        unmatched: detections of either side without a counterpart (borderline scores).
        max_box_diff_px: largest box-coordinate difference, pixels of the original image.
        max_box_diff: the same as a fraction of the image's longer side.
        max_score_diff: largest score difference.
        raw_max_diff: largest difference of head outputs (``--raw`` exports), else None.
        passed: within tolerance.
    """

    images: int
    detections: int
    unmatched: int
    max_box_diff_px: float
    max_box_diff: float
    max_score_diff: float
    raw_max_diff: float | None = None
    passed: bool = True

    def summary(self) -> str:
        raw = "" if self.raw_max_diff is None else f", head outputs {self.raw_max_diff:.2e}"
        return (
            f"{self.images} images, {self.detections} detections: max diff boxes "
            f"{self.max_box_diff_px:.2e} px ({self.max_box_diff:.1e} of the side), scores "
            f"{self.max_score_diff:.2e}{raw}; {self.unmatched} unmatched"
        )


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted differences (box as a fraction of the longer image side)."""

    box: float
    score: float
    raw: float
    unmatched_fraction: float


FLOAT32 = Tolerance(box=1e-3, score=1e-3, raw=1e-2, unmatched_fraction=0.01)
FLOAT16 = Tolerance(box=2e-2, score=3e-2, raw=0.25, unmatched_fraction=0.08)


def synthetic_images(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Deterministic RGB uint8 test pictures (gradients, rectangles and discs) of several sizes."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        height, width = SAMPLE_SIZES_HW[i % len(SAMPLE_SIZES_HW)]
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        base = rng.uniform(0, 255, size=(1, 1, 3)).astype(np.float32)
        image = (base * (0.5 + 0.5 * y) + 60 * x).clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(2, 6))):
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            x1, y1 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            x2 = min(width - 1, x1 + int(rng.integers(30, width // 2)))
            y2 = min(height - 1, y1 + int(rng.integers(30, height // 2)))
            if rng.random() < 0.5:
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness=-1)
            else:
                radius = max(8, min(x2 - x1, y2 - y1) // 2)
                cv2.circle(image, ((x1 + x2) // 2, (y1 + y2) // 2), radius, colour, -1)
        images.append(image)
    return images


def sample_images(manifest_path: str | Path | None, count: int = 4) -> list[np.ndarray]:
    """Up to ``count`` images of a manifest (validation split first), else synthetic ones."""
    if manifest_path is not None and Path(manifest_path).is_file():
        try:
            from ssdcli.data.images import read_image_rgb
            from ssdcli.data.records import Manifest

            manifest = Manifest.load(manifest_path)
            order = [i for ids in _split_order(manifest) for i in ids]
            images = [read_image_rgb(manifest.records[i].image_path) for i in order[:count]]
            if images:
                return images
        except Exception:  # any problem with the data: fall back to generated pictures
            pass
    return synthetic_images(count)


def _split_order(manifest) -> list[list[int]]:
    splits = getattr(manifest, "splits", {}) or {}
    preferred = [name for name in ("val", "test", "train") if name in splits]
    lists = [list(splits[name]) for name in preferred] or [list(range(len(manifest.records)))]
    return lists


def compare_detections(
    reference: Sequence,
    candidate: Sequence,
    sizes_hw: Sequence[tuple[int, int]],
    tolerance: Tolerance = FLOAT32,
) -> VerifyReport:
    """Match detections image by image and measure their differences.

    Each candidate detection (best first) is paired with the unpaired reference detection of the
    same label whose box and score are closest (largest coordinate difference as a fraction of the
    image side, plus the score difference) when both differences are within ``tolerance``; the
    others count as unmatched (a different NMS or threshold decision on a borderline box, or a
    wrong export). The largest differences are measured over the pairs.

    Args:
        reference, candidate: one ``Detections`` per image (boxes xyxy pixels).
        sizes_hw: ``(H, W)`` of each image.
        tolerance: pairing limits and the accepted share of unmatched detections.

    Returns:
        A :class:`VerifyReport` with ``passed`` set.
    """
    max_px = max_frac = max_score = 0.0
    unmatched = total = 0
    for ref, cand, (height, width) in zip(reference, candidate, sizes_hw, strict=True):
        side = float(max(height, width))
        rb, rs, rl = (
            np.asarray(t.detach().cpu()) for t in (ref.boxes_D4, ref.scores_D, ref.labels_D)
        )
        cb, cs, cl = (
            np.asarray(t.detach().cpu()) for t in (cand.boxes_D4, cand.scores_D, cand.labels_D)
        )
        total += len(rs)
        used = np.zeros(len(rs), dtype=bool)
        for j in range(len(cs)):
            box_diff = np.abs(rb - cb[j]).max(axis=1) / side if len(rs) else np.zeros(0)
            score_diff = np.abs(rs - cs[j])
            cost = box_diff + score_diff
            far = (box_diff > tolerance.box) | (score_diff > tolerance.score)
            cost[(rl != cl[j]) | used | far] = np.inf
            i = int(np.argmin(cost)) if len(cost) else -1
            if i < 0 or not np.isfinite(cost[i]):
                unmatched += 1
                continue
            used[i] = True
            max_frac = max(max_frac, float(box_diff[i]))
            max_px = max(max_px, float(box_diff[i] * side))
            max_score = max(max_score, float(abs(rs[i] - cs[j])))
        unmatched += int((~used).sum())
    report = VerifyReport(len(sizes_hw), total, unmatched, max_px, max_frac, max_score)
    return apply_tolerance(report, tolerance)


def apply_tolerance(report: VerifyReport, tolerance: Tolerance) -> VerifyReport:
    """Set ``report.passed`` from ``tolerance``."""
    allowed = max(1, int(np.ceil(tolerance.unmatched_fraction * max(report.detections, 1))))
    report.passed = (
        report.max_box_diff <= tolerance.box
        and report.max_score_diff <= tolerance.score
        and report.unmatched <= allowed
        and (report.raw_max_diff is None or report.raw_max_diff <= tolerance.raw)
    )
    return report


def verify_export(
    loaded: LoadedDetector,
    path: Path,
    images: list,
    dynamic_batch: bool,
    tolerance: Tolerance = FLOAT32,
) -> VerifyReport:
    """Run the exported file and the eager model on ``images`` and compare (see module doc)."""
    import numpy as np

    from ssdcli.infer.eager import Predictor
    from ssdcli.infer.open import open_predictor

    eager = Predictor(loaded.detector, loaded.recipe, "cpu", class_names=loaded.class_names)
    batch = len(images) if dynamic_batch else 1
    exported = open_predictor(path, "cpu", batch_size=batch)
    eager.batch_size = batch
    sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
    try:
        reference, candidate = eager.predict(images), exported.predict(images)
        report = compare_detections(reference, candidate, sizes, tolerance)
    except Exception as error:  # a runtime failure is a failed verification
        raise ExportError(
            f"the exported file does not run: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from error
    if exported.info.form == "raw":
        batch_BCHW = eager.preprocess(images[:batch])
        ref = [t.numpy() for t in eager.raw_outputs(batch_BCHW)]
        got = exported._run(batch_BCHW)
        diffs = [float(np.abs(r - g).max()) for r, g in zip(ref, got[:2], strict=True)]
        prior_diff = float(np.abs(loaded.detector.priors_P4.cpu().numpy() - got[2]).max())
        report.raw_max_diff = max(*diffs, prior_diff)
    return apply_tolerance(report, tolerance)
