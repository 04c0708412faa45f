"""The OpenVINO IR export: the finished ONNX graph converted by OpenVINO's own converter.

The network and its post-processing are first built exactly as for ``--format onnx``
(:func:`~ssdcli.export.onnx_graph.network_to_onnx`, :func:`~ssdcli.export.onnx_file.finish_onnx`),
then ``openvino.convert_model`` turns that graph into an ``ov.Model`` (ONNX's NonMaxSuppression
becomes OpenVINO's own NMS operator), the model description goes into its ``rt_info`` and
``openvino.save_model`` writes ``.xml`` + ``.bin``. The tensor names ``cls_logits`` and
``box_deltas`` survive the conversion, so the verification can run the IR's network part on its
own (:mod:`ssdcli.export.verify.heads`).

Weights are stored in float32, or in float16 with ``half`` (OpenVINO's weight compression: half
the file; the CPU plugin runs in its default precision then).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdcli.export.onnx_file import finish_onnx, save_onnx
from ssdcli.infer.model_info import METADATA_KEY, ModelInfo, metadata_json
from ssdcli.infer.runtimes import require

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector


def onnx_to_openvino(proto: Any, info: ModelInfo) -> Any:
    """Convert a finished ONNX graph (``ModelProto``) to an ``ov.Model`` carrying the metadata."""
    ov = require("openvino", "openvino")
    with tempfile.TemporaryDirectory(prefix="ssd-openvino-") as tmp:
        source = Path(tmp) / "model.onnx"
        save_onnx(proto, source)
        model = ov.convert_model(str(source))
    model.set_rt_info(metadata_json(info), [METADATA_KEY])
    return model


def save_ir(model: Any, path: Path, half: bool) -> None:
    """Write ``path`` (``.xml``) and its ``.bin``; weights float16 when ``half``."""
    import openvino as ov

    ov.save_model(model, str(path), compress_to_fp16=half)


def write_openvino(
    loaded: LoadedDetector, info: ModelInfo, path: Path, opset: int, dynamic_batch: bool, half: bool
) -> None:
    """Export ``loaded`` to an OpenVINO IR at ``path`` (see the module doc)."""
    from ssdcli.export.onnx_graph import network_to_onnx

    require("onnx")
    proto = network_to_onnx(loaded.detector.model, info.size_hw, opset, dynamic_batch)
    save_ir(onnx_to_openvino(finish_onnx(proto, loaded, info), info), path, half)
