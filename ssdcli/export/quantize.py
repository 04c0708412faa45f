"""int8 post-training static quantization of the ONNX export (ONNX Runtime's quantization tools).

Only the network is quantized (QDQ format, per-channel int8 weights, uint8 activations, min-max
calibration on images of a manifest); decoding and NMS are appended afterwards in float32, as in
the float export. The float and int8 files are then both run over the manifest's validation split
and their mAP@0.5 (VOC07 11-point and VOC area) are reported side by side.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssdcli.errors import ExportError
from ssdcli.infer.base import BasePredictor
from ssdcli.infer.model_info import ModelInfo

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.data.records import Manifest
    from ssdcli.export.verify import VerifyReport


@dataclass
class Int8Report:
    """Float vs int8 accuracy on a manifest's validation split.

    Attributes:
        split: the split evaluated; images: its image count; calibration_images: images used.
        float_map07, int8_map07: VOC07 11-point mAP@0.5 (fraction, 0..1).
        float_map, int8_map: VOC area mAP@0.5.
        verify: int8 vs eager differences (informative: int8 is not expected to match exactly).
    """

    split: str
    images: int
    calibration_images: int
    float_map07: float
    int8_map07: float
    float_map: float
    int8_map: float
    verify: VerifyReport | None = None

    @property
    def drop_points(self) -> float:
        """mAP@0.5 (VOC07) lost by quantization, in points (percent)."""
        return 100.0 * (self.float_map07 - self.int8_map07)


def calibration_split(manifest: Manifest, preferred: str) -> str:
    """The split used for mAP: ``preferred`` when present, else val/test/train, else all."""
    for name in (preferred, "val", "test", "train", "trainval"):
        if name in manifest.splits and manifest.splits[name]:
            return name
    return ""


def _split_records(manifest: Manifest, split: str) -> list:
    if split:
        return [manifest.records[i] for i in manifest.split_indices(split)]
    return list(manifest.records)


class _Reader:
    """ONNX Runtime calibration reader: one preprocessed image per call."""

    def __init__(self, paths: list[str], preprocessor: BasePredictor, input_name: str) -> None:
        self._paths = iter(paths)
        self._pre = preprocessor
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        from ssdcli.data.images import read_image_rgb

        path = next(self._paths, None)
        if path is None:
            return None
        return {self._name: self._pre.preprocess([read_image_rgb(path)])}


def quantize_network(network: Any, info: ModelInfo, image_paths: list[str], workdir: Path) -> Any:
    """Quantize a float network graph (``images -> cls_logits, box_deltas``) to int8 (QDQ).

    Returns:
        The quantized ``onnx.ModelProto``.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    float_path, int8_path = workdir / "network.onnx", workdir / "network.int8.onnx"
    onnx.save(network, str(float_path))
    source = float_path
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre_path = workdir / "network.pre.onnx"
        quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
        source = pre_path
    except Exception:  # pre-processing is an optimisation; quantize the plain graph without it
        source = float_path
    quantize_static(
        str(source),
        str(int8_path),
        _Reader(image_paths, BasePredictor(info), network.graph.input[0].name),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return onnx.load(str(int8_path))


def load_calibration(manifest_path: Path, class_names: list[str]) -> Manifest:
    """The calibration manifest, checked against the model's classes.

    Raises:
        DataError: the manifest cannot be read.
        ExportError: its classes are not the model's.
    """
    from ssdcli.data.records import Manifest

    manifest = Manifest.load(manifest_path)
    if list(manifest.class_names) != list(class_names):
        raise ExportError(
            f"--calibration {manifest_path} has classes {manifest.class_names} but the model has "
            f"{class_names}; calibrate on the data set the model was trained on"
        )
    return manifest


def export_int8(
    loaded: LoadedDetector,
    info: ModelInfo,
    float_path: Path,
    int8_path: Path,
    manifest_path: Path,
    calibration_images: int,
    log: Callable[[str], None],
) -> Int8Report:
    """Write the int8 export of ``loaded`` to ``int8_path`` and compare it with ``float_path``.

    Raises:
        ExportError: the manifest does not fit the model, or quantization fails.
    """
    from ssdcli.export.onnx_file import finish_onnx, save_onnx
    from ssdcli.export.onnx_graph import network_to_onnx
    from ssdcli.export.verify import verify_export

    manifest = load_calibration(manifest_path, info.class_names)
    chosen = calibration_images_of(manifest, manifest_path, calibration_images)
    log(f"calibrating int8 quantization on {len(chosen)} images of {manifest_path}")
    network = network_to_onnx(
        loaded.detector.model,
        info.size_hw,
        int(info.extra.get("opset", 17)),
        info.fixed_batch is None,
    )
    with tempfile.TemporaryDirectory(prefix="ssd-int8-") as tmp:
        try:
            quantized = quantize_network(network, info, chosen, Path(tmp))
        except Exception as error:  # onnxruntime.quantization raises assorted types
            raise ExportError(
                f"int8 quantization failed: {type(error).__name__}: {str(error).splitlines()[0]}"
            ) from error
    save_onnx(finish_onnx(quantized, loaded, info), int8_path)
    from ssdcli.export.verify import FLOAT16, sample_images

    images = sample_images(manifest_path, log=log)
    verify = verify_export(loaded, int8_path, images, info.fixed_batch is None, FLOAT16)
    log(f"int8 vs eager (informative): {verify.summary()}")
    split = calibration_split(manifest, loaded.recipe.data.val_split)
    report = compare_map(float_path, int8_path, manifest, split, log)
    report.calibration_images, report.verify = len(chosen), verify
    return report


def calibration_images_of(manifest: Manifest, manifest_path: Path, count: int) -> list[str]:
    """``count`` image paths of the manifest's training split, drawn with a fixed seed.

    Raises:
        ExportError: the manifest has no images.
    """
    train = [r.image_path for r in _split_records(manifest, _train_split(manifest))]
    rng = np.random.default_rng(0)
    chosen = [train[i] for i in sorted(rng.permutation(len(train))[:count])]
    if not chosen:
        raise ExportError(f"--calibration {manifest_path} has no images to calibrate on")
    return chosen


def _train_split(manifest: Manifest) -> str:
    for name in ("train", "trainval"):
        if manifest.splits.get(name):
            return name
    return ""


def compare_map(
    float_path: Path, int8_path: Path, manifest: Manifest, split: str, log: Callable[[str], None]
) -> Int8Report:
    """mAP@0.5 of two exported files (any format) on one split (VOC07 11-point and VOC area)."""
    from ssdcli.data.images import read_image_rgb
    from ssdcli.evaluate.evaluator import evaluate_detections
    from ssdcli.infer.open import open_predictor
    from ssdcli.metrics.voc import ImageDetections

    records = _split_records(manifest, split)
    log(f"evaluating float and int8 on {len(records)} images of split {split or '(all)'}")
    scores: dict[str, tuple[float, float]] = {}
    for name, path in (("float", float_path), ("int8", int8_path)):
        predictor = open_predictor(path)
        detections = []
        for images, sizes in _batches(records, read_image_rgb, predictor.batch_size):
            for det in predictor.predict(images, sizes):
                detections.append(
                    ImageDetections(
                        det.boxes_D4.numpy(), det.scores_D.numpy(), det.labels_D.numpy()
                    )
                )
        maps = []
        for metric in ("voc07", "voc"):
            result = evaluate_detections(
                records, detections, manifest.class_names, metric, manifest.category_ids, split
            )
            maps.append(float(next(iter(result.metrics.values()))))
        scores[name] = (maps[0], maps[1])
    return Int8Report(
        split,
        len(records),
        0,
        scores["float"][0],
        scores["int8"][0],
        scores["float"][1],
        scores["int8"][1],
    )


def _batches(records: list, read: Callable, size: int) -> Iterator[tuple[list, list]]:
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        yield [read(r.image_path) for r in chunk], [tuple(r.size_hw) for r in chunk]
