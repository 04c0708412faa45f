"""Building the exported ONNX graph: the network from PyTorch, then post-processing as ONNX nodes.

The network (``images -> cls_logits, box_deltas``) is exported with ``torch.onnx.export``. The rest
is appended here as plain ONNX operators so that it is the same graph whether the network is
float32, float16 or int8-quantized, and so that the deployed model needs no Python:

* ``--raw``: the head outputs plus ``priors`` (normalised cxcywh, a constant) as outputs;
* with NMS: decoding, per-class top-k, NMS and the per-image best, padded per image
  (:mod:`ssdcli.export.onnx_postprocess`); the export verifies it agrees with
  :class:`~ssdcli.postprocess.PostProcessor`.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import onnx

OUTPUTS_RAW = ("cls_logits", "box_deltas", "priors")
OUTPUTS_NMS = ("boxes", "scores", "labels", "count")


def network_to_onnx(
    model: torch.nn.Module,
    size_hw: tuple[int, int],
    opset: int,
    dynamic_batch: bool,
    half: bool = False,
    batch: int = 1,
) -> onnx.ModelProto:
    """Export ``model`` (``images_BCHW -> (cls_logits_BPK, box_deltas_BP4)``) to ONNX.

    Args:
        model: the SSD network (moved to the CPU, eval mode).
        size_hw: input ``(H, W)``.
        opset: ONNX opset (>= 17).
        dynamic_batch: mark the batch dimension dynamic (else fixed at ``batch``).
        half: run the network in float16; the graph still takes and returns float32.
        batch: the example batch size (the fixed batch when not dynamic).

    Returns:
        The ModelProto with input ``images`` and outputs ``cls_logits``, ``box_deltas``.
    """
    import onnx

    net = Float32Boundary(model, half).eval()
    example = torch.zeros(batch, 3, *size_hw)
    axes = {name: {0: "batch"} for name in ("images", "cls_logits", "box_deltas")}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(
            net,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["images"],
            output_names=["cls_logits", "box_deltas"],
            dynamic_axes=axes if dynamic_batch else None,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


class Float32Boundary(nn.Module):
    """float32 in and out; the wrapped network runs in float16 when ``half``."""

    def __init__(self, model: nn.Module, half: bool) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half() if half else model
        self.half = half

    def forward(self, images_BCHW: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images_BCHW.half() if self.half else images_BCHW
        cls_logits_BPK, box_deltas_BP4 = self.model(x)
        return cls_logits_BPK.float(), box_deltas_BP4.float()


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def add_raw_outputs(model: onnx.ModelProto, priors_P4: np.ndarray) -> onnx.ModelProto:
    """Add the output ``priors`` (``[P, 4]`` float32 normalised cxcywh, a constant)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    tensor = numpy_helper.from_array(np.asarray(priors_P4, dtype=np.float32), "priors_value")
    graph.node.append(helper.make_node("Constant", [], ["priors"], value=tensor, name="priors"))
    graph.output.append(
        helper.make_tensor_value_info("priors", TensorProto.FLOAT, list(priors_P4.shape))
    )
    return model


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Store string key/value pairs in the model's ``metadata_props`` (replacing equal keys)."""
    keep = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
