"""The evaluator: run a detector over a split, collect detections in original pixels, score them.

:func:`evaluate_detector` batches the split through the eval-mode data set (one shared
``preprocess_image``) and the :class:`~ssdcli.postprocess.PostProcessor`;
:func:`evaluate_detections` is the model-free half (records + detections -> metrics), used by it
and by tests. Metric families:

* ``voc07``: VOC2007 11-point AP at IoU > 0.5 (devkit), flat key ``voc07_map50``;
* ``voc``: VOC2010+ area AP at IoU > 0.5 (devkit), ``voc_map50``;
* ``coco``: pycocotools AP@[.5:.95], AP50, AP75, APs, APm, APl: ``coco_ap`` ... ``coco_apl``;
* ``all``: the three.

Per-class VOC precision/recall curves are always computed (they are cheap) for the PR plot.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssdcli.atomic import write_text_atomic
from ssdcli.errors import EvalError
from ssdcli.metrics import METRICS
from ssdcli.metrics.coco import (
    COCO_STAT_NAMES,
    coco_category_ids,
    coco_eval,
    coco_image_ids,
    to_coco_results,
)
from ssdcli.metrics.undefined import metric_json
from ssdcli.metrics.voc import (
    GroundTruthLike,
    ImageDetections,
    PRCurve,
    class_aps,
    mean_ap,
    voc_pr_curves,
)

if TYPE_CHECKING:
    import torch

    from ssdcli.config import Recipe
    from ssdcli.data.records import Manifest
    from ssdcli.infer.base import BasePredictor
    from ssdcli.model import Detector

FAMILIES = {
    "voc07": ("voc07",),
    "voc": ("voc",),
    "coco": ("coco",),
    "all": ("voc07", "voc", "coco"),
}
METRIC_KEYS = {
    "voc07": ("voc07_map50",),
    "voc": ("voc_map50",),
    "coco": tuple(f"coco_{name.lower()}" for name in COCO_STAT_NAMES),
}
"""Flat metric names per family (``train.best_metric`` must be one of them)."""

ProgressCallback = Callable[[int, int], None]  # (images done, images in the split)


@dataclass
class EvalResult:
    """Everything one evaluation produced.

    Attributes:
        metric: ``voc07``, ``voc``, ``coco`` or ``all``.
        class_names: C foreground names, index = label.
        num_gt: int64 [C], ground truths counted as positives (non-difficult, non-crowd).
        per_class: column -> float64 [C] AP per class, NaN where the class has no ground truth.
            Columns: ``voc07``, ``voc`` (AP at IoU 0.5), ``coco`` (AP@[.5:.95]), ``coco50``.
        metrics: flat name -> value (``voc07_map50``, ``voc_map50``, ``coco_ap``, ...); means
            leave out classes without ground truth; NaN where nothing is defined.
        curves: C VOC precision/recall curves at IoU 0.5.
        detections: one per image of the split, xyxy pixels of the original image.
        image_ids: the records' ids, same order.
        coco_image_ids: integer ids used in COCO files (original ids when numeric).
        category_ids: COCO category id per label (original ids, else label + 1).
        split: the evaluated split name ("" when unknown).
        seconds: wall time of the network pass (0 for :func:`evaluate_detections`).
        precision: what the network ran in, ``"float32"`` or ``"bf16"`` (bfloat16 autocast);
            ``"exported"`` for an exported file (:func:`evaluate_predictor`).
    """

    metric: str
    class_names: list[str]
    num_gt: np.ndarray
    per_class: dict[str, np.ndarray]
    metrics: dict[str, float]
    curves: list[PRCurve]
    detections: list[ImageDetections]
    image_ids: list[str]
    coco_image_ids: list[int]
    category_ids: list[int]
    split: str = ""
    seconds: float = 0.0
    precision: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary (NaN written as null)."""
        rows = [
            {"class": name, "num_gt": int(self.num_gt[c])}
            | {column: _json_float(values[c]) for column, values in self.per_class.items()}
            for c, name in enumerate(self.class_names)
        ]
        return {
            "metric": self.metric,
            "split": self.split,
            "num_images": len(self.detections),
            "num_detections": int(sum(d.scores_D.size for d in self.detections)),
            "metrics": {key: _json_float(value) for key, value in self.metrics.items()},
            "per_class": rows,
            "seconds": round(self.seconds, 3),
            "precision": self.precision,
        }


def _json_float(value: float) -> float | None:
    return metric_json(value)  # undefined (NaN) -> null


def _check_metric(metric: str) -> None:
    if metric not in FAMILIES:
        raise EvalError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


def evaluate_detections(
    records: Sequence[GroundTruthLike],
    detections: Sequence[ImageDetections],
    class_names: Sequence[str],
    metric: str = "voc07",
    category_ids: Sequence[int] | None = None,
    split: str = "",
) -> EvalResult:
    """Scores detections against ground truths (no model involved).

    Args:
        records: one per image (``ssdcli.data.Record`` or anything with ``boxes_xyxy``,
            ``labels``, ``difficult``, ``iscrowd``; ``image_id`` and ``size_hw`` when present).
        detections: one per image, same order; xyxy pixels of the original image.
        class_names: C foreground names.
        metric: ``voc07``, ``voc``, ``coco`` or ``all``.
        category_ids: the data set's original category id per label (COCO), else None.
        split: name kept in the result.
    """
    _check_metric(metric)
    if not records:
        raise EvalError(f"split {split!r} has no images; choose a split with images (--split)")
    num_classes = len(class_names)
    curves = voc_pr_curves(records, detections, num_classes)
    image_ids = [str(getattr(r, "image_id", i)) for i, r in enumerate(records)]
    result = EvalResult(
        metric=metric,
        class_names=list(class_names),
        num_gt=np.array([curve.num_gt for curve in curves], np.int64),
        per_class={},
        metrics={},
        curves=curves,
        detections=list(detections),
        image_ids=image_ids,
        coco_image_ids=coco_image_ids(image_ids),
        category_ids=coco_category_ids(num_classes, category_ids),
        split=split,
    )
    for family in FAMILIES[metric]:
        if family in ("voc07", "voc"):
            aps = class_aps(curves, use_07_metric=family == "voc07")
            result.per_class[family] = aps
            result.metrics[f"{family}_map50"] = mean_ap(aps)
        else:
            coco = coco_eval(
                records, detections, class_names, result.category_ids, result.coco_image_ids
            )
            result.per_class["coco"] = coco.ap_per_class
            result.per_class["coco50"] = coco.ap50_per_class
            for name in COCO_STAT_NAMES:
                result.metrics[f"coco_{name.lower()}"] = coco.stats[name]
    return result


def _resolve_device(device: str | torch.device) -> torch.device:
    import torch

    from ssdcli.device import parse_device

    return device if isinstance(device, torch.device) else torch.device(parse_device(device))


def evaluate_detector(
    detector: Detector,
    manifest: Manifest,
    split: str,
    recipe: Recipe,
    metric: str | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    progress: bool | ProgressCallback = False,
    precision: str = "float32",
) -> EvalResult:
    """Runs ``detector`` over ``split`` of ``manifest`` and scores its detections.

    Args:
        detector: network and priors (its training/eval mode is restored afterwards).
        manifest: data set; its class list must have ``detector.model.num_classes`` names.
        split: split name in ``manifest.splits``.
        recipe: input size and normalisation, post-processing, loader workers, defaults.
        metric: ``voc07``, ``voc``, ``coco`` or ``all``; None = ``recipe.eval.metric``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` or a ``torch.device``.
        batch_size: images per forward pass; None = ``recipe.eval.batch_size``.
        progress: True for a Rich progress bar on stderr, or a callback ``(done, total)``.
        precision: ``float32`` (default, the reference figures), ``bf16`` or ``auto``
            (:func:`ssdcli.device.resolve_precision`).

    Raises:
        EvalError: the class lists differ, or the split is empty.
        UsageError: ``precision`` is not a precision.
        DataError: the split does not exist or an image cannot be read.
    """

    from ssdcli.boxes import BoxCoder
    from ssdcli.data.pipeline.loader import build_dataset, build_loader
    from ssdcli.device import resolve_precision
    from ssdcli.postprocess import PostProcessor, PostprocessSettings

    metric = metric or recipe.eval.metric
    _check_metric(metric)
    model = detector.model
    if int(model.num_classes) != len(manifest.class_names):
        raise EvalError(
            f"the detector has {model.num_classes} classes but the data set "
            f"{manifest.source or ''} has {len(manifest.class_names)}; evaluate on the data set "
            "it was trained for (--data)"
        )
    indices = manifest.split_indices(split)
    records = [manifest.records[i] for i in indices]
    if not records:
        raise EvalError(f"split {split!r} has no images; choose a split with images (--split)")
    torch_device = _resolve_device(device)
    runs_in = resolve_precision(precision, torch_device.type)
    postprocess = PostProcessor(
        detector.priors_P4.to(torch_device),
        BoxCoder(tuple(recipe.priors.variances)),
        PostprocessSettings.from_mapping(recipe.postprocess),
        recipe.model.resize,
        (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1])),
    )
    size_hw = (int(recipe.model.size_hw[0]), int(recipe.model.size_hw[1]))
    dataset = build_dataset(
        manifest,
        split,
        recipe.data,
        recipe.model.input,
        size_hw,
        train=False,
        resize=recipe.model.resize,
    )
    batch = int(batch_size or recipe.eval.batch_size)
    workers = min(int(recipe.data.workers), os.cpu_count() or 1) if len(records) > batch else 0
    pin = torch_device.type == "cuda"
    loader = build_loader(dataset, batch, train=False, workers=workers, pin_memory=pin)
    start = time.perf_counter()
    detections = _detect_split(
        model, loader, postprocess, torch_device, len(records), progress, runs_in
    )
    seconds = time.perf_counter() - start
    result = evaluate_detections(
        records, detections, manifest.class_names, metric, manifest.category_ids, split
    )
    result.seconds, result.precision = seconds, runs_in
    return result


def evaluate_predictor(
    predictor: BasePredictor,
    manifest: Manifest,
    split: str,
    metric: str = "voc07",
    progress: bool | ProgressCallback = False,
) -> EvalResult:
    """Runs any predictor (an exported ONNX, TorchScript, OpenVINO or TFLite file) over ``split``
    and scores its detections, as :func:`evaluate_detector` does for a checkpoint.

    Images are decoded by :func:`ssdcli.data.images.read_image_rgb` and preprocessed by the
    predictor (the file's own size, normalisation and resize mode), ``predictor.batch_size`` at a
    time; ``seconds`` covers decoding, the network and post-processing.

    Raises:
        EvalError: the class lists differ, or the split is empty.
        DataError: the split does not exist or an image cannot be read.
    """
    from ssdcli.data.images import read_image_rgb

    _check_metric(metric)
    if list(predictor.class_names) != list(manifest.class_names):
        raise EvalError(
            f"the model detects {predictor.class_names} but the data set {manifest.source or ''} "
            f"has classes {manifest.class_names}; evaluate on the data it was trained for (--data)"
        )
    records = [manifest.records[i] for i in manifest.split_indices(split)]
    if not records:
        raise EvalError(f"split {split!r} has no images; choose a split with images (--split)")
    detections: list[ImageDetections] = []
    start = time.perf_counter()
    with _progress_reporter(progress, len(records)) as report:
        for first in range(0, len(records), predictor.batch_size):
            chunk = records[first : first + predictor.batch_size]
            images = [read_image_rgb(r.image_path) for r in chunk]
            sizes = [tuple(r.size_hw) for r in chunk]
            detections.extend(_to_numpy(d) for d in predictor.predict(images, sizes))
            report(len(detections))
    seconds = time.perf_counter() - start
    result = evaluate_detections(
        records, detections, manifest.class_names, metric, manifest.category_ids, split
    )
    result.seconds, result.precision = seconds, "exported"
    return result


def _detect_split(
    model: Any,
    loader: Any,
    postprocess: Any,
    device: torch.device,
    count: int,
    progress: bool | ProgressCallback,
    precision: str = "float32",
) -> list[ImageDetections]:
    """Detections of every image the (ordered, eval-mode) loader yields, in split order; the
    network runs in the resolved ``precision`` (``"float32"`` or ``"bf16"``)."""
    import torch

    from ssdcli.device import inference_autocast

    detections: list[ImageDetections | None] = [None] * count
    was_training, done = model.training, 0
    model.eval()
    try:
        with _progress_reporter(progress, count) as report, torch.inference_mode():
            for batch in loader:
                images = batch.images_BCHW.to(device, non_blocking=device.type == "cuda")
                positions = batch.indices_B.tolist()  # positions in the split
                sizes = [tuple(hw) for hw in batch.sizes_hw_B2.tolist()]  # original (H, W)
                with inference_autocast(precision, device.type):
                    cls_logits_BPK, box_deltas_BP4 = model(images)
                found = postprocess(cls_logits_BPK.float(), box_deltas_BP4.float(), sizes)
                for position, det in zip(positions, found, strict=True):
                    detections[position] = _to_numpy(det)
                done += len(positions)
                report(done)
    finally:
        model.train(was_training)
    assert all(d is not None for d in detections), "the loader skipped images of the split"
    return detections


def _to_numpy(det: Any) -> ImageDetections:
    """Post-processor detections (tensors, any device) -> numpy on the CPU."""
    return ImageDetections(
        det.boxes_D4.detach().cpu().numpy().astype(np.float32, copy=False),
        det.scores_D.detach().cpu().numpy().astype(np.float32, copy=False),
        det.labels_D.detach().cpu().numpy().astype(np.int64, copy=False),
    )


@contextlib.contextmanager
def _progress_reporter(
    progress: bool | ProgressCallback, total: int
) -> Iterator[Callable[[int], None]]:
    """Yields ``report(images_done)``: drives a Rich bar on stderr, a callback, or nothing."""
    if callable(progress):
        yield lambda done: progress(done, total)
        return
    if not progress:
        yield lambda done: None
        return
    from rich import progress as rp

    from ssdcli.console import make_console

    columns = (rp.TextColumn("evaluating"), rp.BarColumn(), rp.MofNCompleteColumn())
    times = (rp.TextColumn("images"), rp.TimeElapsedColumn(), rp.TimeRemainingColumn())
    with rp.Progress(*columns, *times, console=make_console(stderr=True), transient=True) as bar:
        task = bar.add_task("eval", total=total)
        yield lambda done: bar.update(task, completed=done)


def write_metrics_json(result: EvalResult, path: str | Path, **extra: Any) -> Path:
    """Writes ``result.to_dict()`` (plus ``extra`` keys, e.g. the checkpoint) as JSON."""
    return _write_json(path, result.to_dict() | extra)


def write_coco_results(result: EvalResult, path: str | Path) -> Path:
    """Writes the detections as a COCO results file (xywh_topleft, original category ids)."""
    entries = to_coco_results(result.detections, result.coco_image_ids, result.category_ids)
    for entry in entries:
        entry["bbox"] = [round(v, 3) for v in entry["bbox"]]
        entry["score"] = round(entry["score"], 5)
    return _write_json(path, entries, indent=None)  # compact: may hold millions of entries


def _write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """JSON written atomically (temp file in the same folder, then rename)."""
    text = json.dumps(
        data, indent=indent, separators=None if indent else (",", ":"), allow_nan=False
    )
    return write_text_atomic(path, text + "\n")


PER_CLASS_HEADERS = {
    "voc07": "VOC07 AP50",
    "voc": "VOC AP50",
    "coco": "COCO AP",
    "coco50": "COCO AP50",
}
"""Column header per family key of :attr:`EvalResult.per_class`."""


def panel_aps(result: EvalResult) -> tuple[list[float], str]:
    """AP shown in the PR panels' titles: the VOC family evaluated, else VOC area AP."""
    from ssdcli.metrics.voc import class_aps

    for key in ("voc07", "voc"):
        if key in result.per_class:
            return list(result.per_class[key]), PER_CLASS_HEADERS[key]
    return list(class_aps(result.curves, use_07_metric=False)), PER_CLASS_HEADERS["voc"]
