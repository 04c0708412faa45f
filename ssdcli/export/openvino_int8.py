"""int8 post-training quantization of the OpenVINO export with NNCF (OpenVINO's own way).

The verified float32 IR is read back and given to ``nncf.quantize`` with images of the
calibration manifest, preprocessed as the file's metadata says. Only the network is quantized:
every operation downstream of its outputs ``cls_logits`` and ``box_deltas`` (decoding, top-k,
NMS, or the raw outputs) is put in NNCF's ignored scope and stays float32, as in the ONNX int8
export. The float and int8 IRs are then both run over the manifest's validation split and their
mAP@0.5 (VOC07 11-point and VOC area) reported side by side
(:func:`ssdcli.export.quantize.compare_map`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdcli.errors import ExportError
from ssdcli.export.quantize import (
    Int8Report,
    calibration_images_of,
    calibration_split,
    compare_map,
    load_calibration,
)
from ssdcli.export.verify.heads import HEAD_OUTPUTS
from ssdcli.infer.base import BasePredictor
from ssdcli.infer.model_info import METADATA_KEY, ModelInfo, metadata_json
from ssdcli.infer.runtimes import require

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector


def post_network_ops(model: Any) -> list[str]:
    """Friendly names of the operations fed (directly or not) by the network's head outputs.

    Args:
        model: an ``ov.Model`` converted from the ONNX export.

    Raises:
        ExportError: the model has no tensors ``cls_logits`` / ``box_deltas``.
    """
    heads = []
    for op in model.get_ordered_ops():
        for output in op.outputs():
            if output.get_names() & set(HEAD_OUTPUTS):
                heads.append(output)
    if len(heads) < len(HEAD_OUTPUTS):
        raise ExportError(
            "the OpenVINO IR has no cls_logits / box_deltas tensors to quantize up to"
        )
    seen: dict[str, None] = {}
    frontier = [inp.get_node() for out in heads for inp in out.get_target_inputs()]
    while frontier:
        node = frontier.pop()
        name = node.get_friendly_name()
        if name in seen or node.get_type_name() == "Result":
            continue
        seen[name] = None
        frontier.extend(inp.get_node() for out in node.outputs() for inp in out.get_target_inputs())
    return list(seen)


def quantize_ir(model: Any, info: ModelInfo, image_paths: list[str]) -> Any:
    """The int8 ``ov.Model``: NNCF post-training quantization calibrated on ``image_paths``."""
    import logging

    nncf = require("nncf", "openvino")
    from ssdcli.data.images import read_image_rgb

    nncf.set_log_level(logging.WARNING)  # its INFO lines list every operation it skips

    preprocess = BasePredictor(info).preprocess
    dataset = nncf.Dataset(image_paths, lambda path: preprocess([read_image_rgb(path)]))
    ignored = nncf.IgnoredScope(names=post_network_ops(model), validate=False)
    # NNCF draws its progress bars on stdout, where the command's own results go.
    with contextlib.redirect_stdout(sys.stderr):
        return nncf.quantize(model, dataset, subset_size=len(image_paths), ignored_scope=ignored)


def export_openvino_int8(
    loaded: LoadedDetector,
    info: ModelInfo,
    float_path: Path,
    int8_path: Path,
    manifest_path: Path,
    calibration_images: int,
    log: Callable[[str], None],
) -> Int8Report:
    """Write the int8 IR of the verified float IR ``float_path`` to ``int8_path`` and compare
    their mAP on the manifest's validation split.

    Raises:
        ExportError: the manifest does not fit the model, or quantization fails.
    """
    from ssdcli.export.openvino_file import save_ir
    from ssdcli.export.verify import FLOAT16, sample_images, verify_export
    from ssdcli.infer.openvino_runtime import read_ir

    manifest = load_calibration(manifest_path, info.class_names)
    chosen = calibration_images_of(manifest, manifest_path, calibration_images)
    log(f"calibrating NNCF int8 quantization on {len(chosen)} images of {manifest_path}")
    model, _ = read_ir(float_path)
    try:
        quantized = quantize_ir(model, info, chosen)
    except ExportError:
        raise
    except Exception as error:  # nncf raises assorted types
        raise ExportError(
            f"NNCF int8 quantization failed: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    quantized.set_rt_info(metadata_json(info), [METADATA_KEY])
    save_ir(quantized, int8_path, half=False)
    verify = verify_export(
        loaded, int8_path, sample_images(manifest_path, log=log), info.fixed_batch is None, FLOAT16
    )
    log(f"int8 vs eager (informative): {verify.summary()}")
    split = calibration_split(manifest, loaded.recipe.data.val_split)
    report = compare_map(float_path, int8_path, manifest, split, log)
    report.calibration_images, report.verify = len(chosen), verify
    return report
