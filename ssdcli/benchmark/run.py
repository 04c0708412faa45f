"""``ssd benchmark``'s one entry point: :func:`run` (a :class:`BenchRequest` and a reporter ->
a :class:`~ssdcli.benchmark.table.BenchResult`).

For one checkpoint it builds these rows, in order, each one timed on the same decoded images and
scored on the same split:

1. the eager checkpoint in float32, and in the default precision (``--precision auto``: bfloat16
   autocast where the CPU runs it natively);
2. torchvision's model with the same weights, where one exists
   (:mod:`ssdcli.benchmark.torchvision_twin`);
3. each asked format (default: all), exported with ``ssd export``'s own code and so verified
   against the checkpoint; a format whose package is missing is a row that says what to install.
   With ``--data``, ONNX and OpenVINO also get an int8 row, calibrated on the manifest.

Timings (:mod:`ssdcli.benchmark.timing`) cover ``predict`` on decoded images: preprocessing, the
network and post-processing. Thread counts apply to torch (``torch.set_num_threads``) and to each
runtime's own setting. The rows go to ``benchmark.json`` and ``benchmark.csv`` beside the exports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdcli.benchmark.formats import INT8, missing_package
from ssdcli.benchmark.table import BenchResult, BenchRow, cell, write_files
from ssdcli.benchmark.timing import ms_per_image
from ssdcli.errors import ExportError, UsageError
from ssdcli.reporting import Reporter

if TYPE_CHECKING:
    import numpy as np

    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.data.records import Manifest

RUNTIME_NAMES = {
    "onnx": "ONNX Runtime",
    "torchscript": "TorchScript",
    "openvino": "OpenVINO",
    "tflite": "LiteRT",
}


@dataclass(frozen=True, kw_only=True)
class BenchRequest:
    """What ``ssd benchmark`` was asked.

    Attributes:
        model: an ssdcli checkpoint.
        formats: export formats to include (:data:`ssdcli.benchmark.formats.FORMATS`).
        data: a manifest.json to score on (and to calibrate int8 on); None: timing only.
        split: the split scored; None = the recipe's ``data.test_split``.
        batches: batch sizes timed; threads: thread counts timed.
        rounds: least timed calls per cell.
        out: folder of the exports and the JSON/CSV; None = ``benchmark/`` beside the model.
        int8: add the int8 rows of ONNX and OpenVINO (needs ``data``).
        calibration_images: images of ``data`` that calibrate int8.
        torchvision: add torchvision's model where one exists.
        min_seconds: least timed seconds per cell (more calls than ``rounds`` for fast models).
    """

    model: Path
    formats: tuple[str, ...]
    data: Path | None = None
    split: str | None = None
    batches: tuple[int, ...] = (1, 8)
    threads: tuple[int, ...] = ()
    rounds: int = 5
    out: Path | None = None
    int8: bool = True
    calibration_images: int = 64
    torchvision: bool = True
    min_seconds: float = 1.0


def machine() -> dict[str, Any]:
    """CPU name, cores and load average at the time of the run."""
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": name, "cores": os.cpu_count(), "load_avg_1_5_15": [round(v, 2) for v in load]}


def run(request: BenchRequest, reporter: Reporter) -> BenchResult:
    """Export, verify, time and score the model in every asked form (see the module doc).

    ``reporter`` hears each step (exports, timings, scores) as it goes.

    Raises:
        UsageError: the model is not a checkpoint; int8 asked without data.
        CheckpointError, DataError, EvalError: an unreadable model or manifest, other classes.
    """
    import torch

    from ssdcli import paths
    from ssdcli.checkpoint.file import load_detector
    from ssdcli.errors import CheckpointError, DataError
    from ssdcli.infer.open import model_format

    paths.existing_file(request.model, "MODEL", paths.CHECKPOINT_FILE, CheckpointError)
    if request.data is not None:
        paths.existing_file(
            request.data, "--data", "a manifest.json from ssd prepare-data", DataError
        )

    fmt = model_format(request.model)
    if fmt != "checkpoint":
        raise UsageError(
            f"{request.model} is an exported {fmt} file; ssd benchmark exports a checkpoint "
            "itself: pass a runs/<name>/best.pt"
        )
    loaded = load_detector(request.model, device="cpu")
    manifest = _manifest(request, loaded)
    split = request.split or loaded.recipe.data.test_split
    images = _timing_images(manifest, split, max(request.batches))
    threads = list(request.threads) or [torch.get_num_threads()]
    out = request.out or request.model.parent / "benchmark"
    out.mkdir(parents=True, exist_ok=True)
    bench = _Bench(request, loaded, manifest, split, images, threads, reporter.note)
    original_threads = torch.get_num_threads()
    try:
        rows = bench.eager_rows()
        if request.torchvision:
            rows.append(bench.torchvision_row(rows[0]))
        for name in request.formats:
            rows.append(bench.file_row(name, out, int8=False))
            if request.int8 and manifest is not None and name in INT8:
                rows.append(bench.file_row(name, out, int8=True))
    finally:
        torch.set_num_threads(original_threads)
    reference = rows[0].voc_map
    for row in rows:
        if row.voc_map is not None and reference is not None:
            row.map_diff = row.voc_map - reference
    count = len(manifest.split_indices(split)) if manifest is not None else 0
    result = BenchResult(
        str(request.model), split if manifest else "", count, list(request.batches), threads,
        machine(), rows,
    )  # fmt: skip
    result.written = write_files(result, out)
    return result


def _manifest(request: BenchRequest, loaded: LoadedDetector) -> Manifest | None:
    if request.data is None:
        return None
    from ssdcli.data.records import Manifest
    from ssdcli.errors import EvalError

    manifest = Manifest.load(request.data)
    if list(manifest.class_names) != list(loaded.class_names):
        raise EvalError(
            f"{request.model} detects {loaded.class_names} but {request.data} has classes "
            f"{manifest.class_names}; benchmark on the data the model was trained for"
        )
    return manifest


def _timing_images(manifest: Manifest | None, split: str, count: int) -> list[np.ndarray]:
    """The split's first ``count`` images, or generated ones without data."""
    if manifest is None:
        from ssdcli.data import pattern_images

        return pattern_images(count, seed=0)
    from ssdcli.data.images import read_image_rgb

    indices = manifest.split_indices(split)[:count]
    return [read_image_rgb(manifest.records[i].image_path) for i in indices]


class _Bench:
    """The shared state of one run and one method per kind of row."""

    def __init__(
        self,
        request: BenchRequest,
        loaded: LoadedDetector,
        manifest: Manifest | None,
        split: str,
        images: list[np.ndarray],
        threads: list[int],
        log: Callable[[str], None],
    ) -> None:
        self.request, self.loaded, self.manifest, self.split = request, loaded, manifest, split
        self.images, self.threads, self.log = images, threads, log

    # -- measuring ---------------------------------------------------------------------------

    def _time(self, row: BenchRow, make: Callable[[int], Any]) -> None:
        """Fill ``row.ms_per_image``: ``make(threads)`` gives a predictor for that thread
        count; torch's thread count is set too (eager, TorchScript, torchvision)."""
        import torch

        for threads in self.threads:
            torch.set_num_threads(threads)
            predictor = make(threads)
            for batch in self.request.batches:
                predictor.batch_size = batch if not _fixed(predictor) else predictor.batch_size
                ms = ms_per_image(
                    predictor.predict, self.images, batch, self.request.rounds,
                    self.request.min_seconds,
                )  # fmt: skip
                row.ms_per_image[cell(batch, threads)] = ms
                self.log(f"  {row.name} {row.precision}: batch {batch}, {threads} threads: "
                         f"{ms:.2f} ms/image")  # fmt: skip
        if row.ms_per_image:
            row.images_per_s = max(1000.0 / ms for ms in row.ms_per_image.values())

    def _score(self, row: BenchRow, predictor: Any) -> None:
        """VOC area mAP@0.5 and COCO AP of ``predictor`` on the split."""
        if self.manifest is None:
            return
        from ssdcli.evaluate.evaluator import evaluate_detections, evaluate_predictor

        if hasattr(predictor, "preprocess"):
            result = evaluate_predictor(predictor, self.manifest, self.split, "all")
        else:  # torchvision's model: its own preprocessing
            records, detections = self._records(), []
            result = evaluate_detections(
                records, self._run_all(predictor, records, detections), self.manifest.class_names,
                "all", self.manifest.category_ids, self.split,
            )  # fmt: skip
        row.voc_map = float(result.metrics["voc_map50"])
        row.coco_ap = float(result.metrics["coco_ap"])
        self.log(f"  {row.name} {row.precision}: VOC area mAP {row.voc_map:.4f}, "
                 f"COCO AP {row.coco_ap:.4f}")  # fmt: skip

    def _records(self) -> list:
        assert self.manifest is not None
        return [self.manifest.records[i] for i in self.manifest.split_indices(self.split)]

    @staticmethod
    def _run_all(predictor: Any, records: list, detections: list) -> list:
        from ssdcli.data.images import read_image_rgb
        from ssdcli.metrics.voc import ImageDetections

        for start in range(0, len(records), 8):
            images = [read_image_rgb(r.image_path) for r in records[start : start + 8]]
            for det in predictor.predict(images):
                detections.append(
                    ImageDetections(
                        det.boxes_D4.numpy(), det.scores_D.numpy(), det.labels_D.numpy()
                    )
                )
        return detections

    # -- rows --------------------------------------------------------------------------------

    def eager_rows(self) -> list[BenchRow]:
        """The checkpoint in eager PyTorch: float32, then the default precision."""
        from ssdcli.checkpoint.file import load_detector
        from ssdcli.device import PRECISION_NAMES
        from ssdcli.infer.eager import Predictor

        rows = []
        size = self.request.model.stat().st_size / 1e6
        for precision in ("float32", "auto"):

            def make(threads: int, precision: str = precision) -> Predictor:
                loaded = load_detector(self.request.model, device="cpu")
                return Predictor(
                    loaded.detector, loaded.recipe, "cpu", class_names=loaded.class_names,
                    category_ids=loaded.category_ids, precision=precision,
                )  # fmt: skip

            start = time.perf_counter()
            predictor = make(self.threads[0])
            predictor.predict(self.images[:1])
            load_s = time.perf_counter() - start
            runs_in = PRECISION_NAMES[predictor.precision]
            label = "float32" if precision == "float32" else f"{runs_in} (default)"
            row = BenchRow("PyTorch eager", "checkpoint", label, path=str(self.request.model))
            row.size_mb, row.load_s = size, load_s
            row.check = "reference" if precision == "float32" else "not verified (eager)"
            self.log(f"{row.name} {label}")
            self._time(row, make)
            self._score(row, predictor)
            rows.append(row)
        return rows

    def torchvision_row(self, reference: BenchRow) -> BenchRow:
        """torchvision's model with the checkpoint's weights, or why there is none."""
        from ssdcli.benchmark.torchvision_twin import twin_or_reason

        start = time.perf_counter()
        twin, reason = twin_or_reason(self.loaded)
        row = BenchRow("torchvision", "torchvision", "float32")
        if twin is None:
            row.status = f"unavailable: {reason}"
            return row
        twin.predict(self.images[:1])
        row.load_s = time.perf_counter() - start
        row.notes = f"torchvision {twin.arch}, the checkpoint's weights"
        self.log(f"{row.name} ({twin.arch})")
        row.check = self._compare_with_checkpoint(twin)
        self._time(row, lambda threads: twin)
        self._score(row, twin)
        return row

    def _compare_with_checkpoint(self, twin: Any) -> str:
        from ssdcli.benchmark.agreement import compare_detections
        from ssdcli.export.verify import FLOAT16
        from ssdcli.infer.eager import Predictor

        eager = Predictor(
            self.loaded.detector, self.loaded.recipe, "cpu",
            class_names=self.loaded.class_names, precision="float32",
        )  # fmt: skip
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in self.images]
        report = compare_detections(
            eager.predict(self.images), twin.predict(self.images), sizes, FLOAT16
        )
        verdict = "same detections" if report.passed else "differs from checkpoint"
        return f"{verdict}: {report.summary()} (float16 tolerance)"

    def file_row(self, fmt: str, out: Path, int8: bool) -> BenchRow:
        """Export to ``fmt`` (verified), then time and score the file."""
        from ssdcli.export.exporter import SUFFIXES, companions, export_model
        from ssdcli.infer.open import open_predictor

        row = BenchRow(RUNTIME_NAMES[fmt], fmt, "int8" if int8 else "float32")
        missing = missing_package(fmt, int8)
        if missing:
            row.status = missing
            self.log(f"{row.name} {row.precision}: {missing}")
            return row
        dynamic = fmt != "tflite"
        target = out / f"model{'.int8' if int8 else ''}{SUFFIXES[fmt]}"
        self.log(f"{row.name} {row.precision}: exporting to {target}")
        try:
            result = export_model(
                self.request.model, target, fmt=fmt, with_nms=fmt != "tflite",
                dynamic_batch=dynamic, int8=int8,
                calibration=self.request.data if int8 else None,
                calibration_images=self.request.calibration_images, log=self.log,
            )  # fmt: skip
        except ExportError as error:
            row.status = f"failed: {error}"
            self.log(f"  {row.status}")
            return row
        row.path = str(result.path)
        row.size_mb = sum(p.stat().st_size for p in companions(result.path)) / 1e6
        if int8 and result.int8 is not None and result.int8.verify is not None:
            row.check = f"int8, informative: {result.int8.verify.summary()}"
        else:
            row.check = f"verified: {result.verify.summary()}"
        start = time.perf_counter()
        predictor = open_predictor(result.path, threads=self.threads[0])
        predictor.predict(self.images[:1])
        row.load_s = time.perf_counter() - start
        if predictor.info.fixed_batch:
            row.notes = f"fixed batch {predictor.info.fixed_batch}: larger batches run in turn"
        self._time(row, lambda threads: open_predictor(result.path, threads=threads))
        predictor.batch_size = predictor.info.fixed_batch or 8
        self._score(row, predictor)
        return row


def _fixed(predictor: Any) -> bool:
    info = getattr(predictor, "info", None)
    return bool(info is not None and info.fixed_batch)
