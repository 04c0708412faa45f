"""Predictor for OpenVINO IR files written by ``ssd export --format openvino`` (OpenVINO Runtime).

The IR is the ONNX export converted by OpenVINO's own converter, so it has the same two forms and
the same outputs (``boxes, scores, labels, count`` with NMS inside, or ``cls_logits, box_deltas,
priors``); the model description is the same JSON, stored in the IR's ``rt_info`` under
:data:`~ssdcli.infer.model_info.METADATA_KEY`. Output handling is shared with the ONNX predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssdcli.errors import CheckpointError
from ssdcli.infer.model_info import METADATA_KEY, info_from_metadata
from ssdcli.infer.runtimes import ExportedPredictor, require

if TYPE_CHECKING:
    from ssdcli.postprocess import PostprocessOverrides

OUTPUTS = {"nms": ("boxes", "scores", "labels", "count"), "raw": ("cls_logits", "box_deltas")}


def read_ir(path: str | Path) -> tuple[Any, str]:
    """The IR's ``ov.Model`` and its ssdcli metadata JSON.

    Raises:
        ExportError: openvino is not installed.
        CheckpointError: the file cannot be read or has no ssdcli metadata.
    """
    ov = require("openvino", "openvino")
    try:
        model = ov.Core().read_model(str(path))
    except Exception as error:  # openvino raises RuntimeError with a multi-line message
        raise CheckpointError(
            f"OpenVINO cannot read {path} (and its .bin beside it): {str(error).splitlines()[0]}"
        ) from error
    text = ""
    if model.has_rt_info([METADATA_KEY]):
        text = model.get_rt_info([METADATA_KEY]).astype(str)
    return model, text


def compile_ir(model: Any, threads: int = 0, half: bool = False) -> Any:
    """Compile ``model`` for the CPU.

    float32 exports run in float32 (OpenVINO would otherwise pick bfloat16 on CPUs that have it,
    and the file would no longer be what the verification compared); ``half`` exports run in the
    CPU's default inference precision. ``threads`` 0 = OpenVINO's default.
    """
    import openvino as ov

    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if not half:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(model, "CPU", config)


class OpenVinoPredictor(ExportedPredictor):
    """An OpenVINO IR written by ``ssd export --format openvino``, run on the CPU.

    Args:
        path: the ``.xml`` file (its ``.bin`` beside it).
        overrides: post-processing asked for at run time (None values = the file's settings).
        batch_size, classes: as :class:`~ssdcli.infer.base.BasePredictor`.
        threads: inference threads (0 = OpenVINO's default).

    Raises:
        ExportError: openvino is not installed.
        CheckpointError: the file cannot be loaded or has no ssdcli metadata.
    """

    def __init__(
        self,
        path: str | Path,
        overrides: PostprocessOverrides | None = None,
        batch_size: int = 8,
        classes: Sequence[int] | None = None,
        threads: int = 0,
    ) -> None:
        model, text = read_ir(path)
        info = info_from_metadata(text, "openvino", str(path))
        batch_dim = model.inputs[0].get_partial_shape()[0]
        info.fixed_batch = None if batch_dim.is_dynamic else int(batch_dim.get_length())
        self.compiled = compile_ir(model, threads, bool(info.extra.get("half")))
        names = (*OUTPUTS[info.form], *(("priors",) if info.form == "raw" else ()))
        try:
            self.outputs = [self.compiled.output(name) for name in names]
        except RuntimeError as error:
            raise CheckpointError(
                f"{path} lacks the outputs {', '.join(names)} of an ssdcli export"
            ) from error
        self.request = self.compiled.create_infer_request()
        super().__init__(info, overrides, batch_size, classes)

    def file_outputs(self, batch_BCHW: np.ndarray) -> list[np.ndarray]:
        results = self.request.infer({0: np.ascontiguousarray(batch_BCHW)})
        # Copies: the request reuses its output buffers on the next call.
        return [np.array(results[output]) for output in self.outputs]
