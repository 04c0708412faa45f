"""Building the exported ONNX graph: the network from PyTorch, then post-processing as ONNX nodes.

The network (``images -> cls_logits, box_deltas``) is exported with ``torch.onnx.export``. The rest
is appended here as plain ONNX operators so that it is the same graph whether the network is
float32, float16 or int8-quantized, and so that the deployed model needs no Python:

* ``--raw``: the head outputs plus ``priors`` (normalised cxcywh, a constant) as outputs;
* with NMS: softmax, decoding (the :class:`~ssdcli.boxes.BoxCoder` formula, same variances and
  clamp), clamping to the image, the best ``pre_nms_top_k`` candidates per class, per-class
  ``NonMaxSuppression`` with the score threshold, then the best ``max_detections`` per image. The
  outputs are padded per image: ``boxes [B, D, 4]`` (normalised xyxy), ``scores [B, D]``,
  ``labels [B, D]`` (int64, 0..C-1, -1 for padding) and ``count [B]`` (int64, valid rows).

This mirrors :class:`~ssdcli.postprocess.PostProcessor` step for step (strict score threshold,
IoU strictly above the threshold suppresses); the export verifies the two agree.
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


def add_postprocess(
    model: onnx.ModelProto,
    priors_P4: np.ndarray,
    num_logits: int,
    variances: tuple[float, float],
    max_log_scale: float,
    score_threshold: float,
    nms_iou: float,
    pre_nms_top_k: int,
    max_detections: int,
) -> onnx.ModelProto:
    """Replace the outputs ``cls_logits``/``box_deltas`` with decoded, NMS-filtered detections.

    Args:
        model: graph with outputs ``cls_logits [B, P, K]`` and ``box_deltas [B, P, 4]``.
        priors_P4: ``[P, 4]`` float32 normalised cxcywh priors.
        num_logits: K, class logits per prior (background included). Given, not read from the
            graph: the exporter's shape inference can leave that dimension unnamed (it does after
            a pixel-unshuffle layer), and a 0 there would silently drop every detection.
        variances, max_log_scale: the box coder's settings.
        score_threshold, nms_iou, pre_nms_top_k, max_detections: as in ``PostProcessor``.

    Returns:
        The model with outputs ``boxes``, ``scores``, ``labels``, ``count`` (see module doc).
    """
    from onnx import TensorProto, helper

    graph = model.graph
    num_priors = int(priors_P4.shape[0])
    num_k = int(num_logits)
    known_k = _output_dim(graph, "cls_logits", 2)
    if known_k not in (0, num_k):
        raise ValueError(f"cls_logits has {known_k} logits per prior in the graph, not {num_k}")
    num_c = num_k - 1
    top_k = min(int(pre_nms_top_k), num_priors)
    det = int(max_detections)
    p = np.asarray(priors_P4, dtype=np.float32)
    i64 = np.int64
    c = {  # constants
        "p_xy": p[None, :, :2],
        "p_wh": p[None, :, 2:],
        "v_c": np.float32(variances[0]),
        "v_s": np.float32(variances[1]),
        "max_log": np.float32(max_log_scale),
        "two": np.float32(2.0),
        "zero_f": np.float32(0.0),
        "one_f": np.float32(1.0),
        "neg_one_f": np.float32(-1.0),
        "half_f": np.float32(-0.5),
        "s0": np.array([0], i64),
        "s2": np.array([2], i64),
        "s4": np.array([4], i64),
        "s1": np.array([1], i64),
        "sK": np.array([num_k], i64),
        "ax1": np.array([1], i64),
        "ax2": np.array([2], i64),
        "k": np.array([top_k], i64),
        "D": np.array([det], i64),
        "P": np.array(num_priors, i64),
        "C": np.array(num_c, i64),
        "topk_scalar": np.array(top_k, i64),
        "zero_i": np.array(0, i64),
        "one_i": np.array(1, i64),
        "neg_one_i": np.array(-1, i64),
        "idx0": np.array(0, i64),
        "idx2": np.array(2, i64),
        "shape_m14": np.array([-1, 4], i64),
        "shape_m1": np.array([-1], i64),
        "shape_gk4": np.array([-1, top_k, 4], i64),
        "shape_g1k": np.array([-1, 1, top_k], i64),
        "nms_max": np.array([top_k], i64),
        "nms_iou": np.array([nms_iou], np.float32),
        "nms_score": np.array([score_threshold], np.float32),
        "zeros_D4": np.zeros((det, 4), np.float32),
        "zeros_Di": np.zeros((det,), i64),
    }
    names = {key: _const(graph, f"pp/{key}", value) for key, value in c.items()}
    nodes: list = []

    def op(kind: str, inputs: list[str], out: str, **attrs) -> str:
        full = [names.get(i, i) for i in inputs]
        nodes.append(helper.make_node(kind, full, [f"pp/{out}"], name=f"pp/{out}", **attrs))
        return f"pp/{out}"

    # BoxCoder.decode: centre = p_xy + d_xy * v_c * p_wh,
    # size = p_wh * exp(min(d_wh * v_s, max_log)), boxes = centre -/+ size / 2, clamped to [0, 1].
    d_xy = op("Slice", ["box_deltas", "s0", "s2", "ax2"], "d_xy")
    d_wh = op("Slice", ["box_deltas", "s2", "s4", "ax2"], "d_wh")
    centre = op(
        "Add", ["p_xy", op("Mul", [op("Mul", [d_xy, "v_c"], "dxy_v"), "p_wh"], "dxy_vp")], "ctr"
    )
    log_scale = op("Min", [op("Mul", [d_wh, "v_s"], "dwh_v"), "max_log"], "log_scale")
    half_size = op(
        "Div", [op("Mul", ["p_wh", op("Exp", [log_scale], "scale")], "size"), "two"], "hs"
    )
    boxes = op(
        "Concat",
        [op("Sub", [centre, half_size], "xy1"), op("Add", [centre, half_size], "xy2")],
        "box_raw",
        axis=2,
    )
    boxes = op("Clip", [boxes, "zero_f", "one_f"], "boxes_BP4")
    # Foreground class scores as (B, C, P), then the best top_k priors per class.
    probs = op("Softmax", ["cls_logits"], "probs", axis=-1)
    scores_bcp = op(
        "Transpose", [op("Slice", [probs, "s1", "sK", "ax2"], "fg")], "scores_BCP", perm=[0, 2, 1]
    )
    nodes.append(
        helper.make_node(
            "TopK", [scores_bcp, names["k"]], ["pp/top_s", "pp/top_i"], axis=-1, name="pp/topk"
        )
    )
    batch = op("Gather", [op("Shape", ["cls_logits"], "shape"), "idx0"], "B", axis=0)
    b_range = op("Range", ["zero_i", batch, "one_i"], "b_range")
    b_off = op("Unsqueeze", [op("Mul", [b_range, "P"], "b_P"), "ax1"], "b_off1")
    b_off = op("Unsqueeze", [b_off, "ax2"], "b_off")
    flat_idx = op("Add", ["pp/top_i", b_off], "flat_idx")
    cand = op(
        "Gather", [op("Reshape", [boxes, "shape_m14"], "boxes_flat"), flat_idx], "cand_BCk4", axis=0
    )
    # Per-class NMS: each (image, class) pair is one NMS batch entry with a single class.
    nms_boxes = op("Reshape", [cand, "shape_gk4"], "nms_boxes")
    nms_scores = op("Reshape", ["pp/top_s", "shape_g1k"], "nms_scores")
    sel = op("NonMaxSuppression", [nms_boxes, nms_scores, "nms_max", "nms_iou", "nms_score"], "sel")
    group = op("Gather", [sel, "idx0"], "group", axis=1)
    pos = op(
        "Add",
        [op("Mul", [group, "topk_scalar"], "g_k"), op("Gather", [sel, "idx2"], "j", axis=1)],
        "pos",
    )
    s_sel = op(
        "Gather", [op("Reshape", ["pp/top_s", "shape_m1"], "top_s_flat"), pos], "s_sel", axis=0
    )
    box_sel = op(
        "Gather", [op("Reshape", [cand, "shape_m14"], "cand_flat"), pos], "box_sel", axis=0
    )
    b_sel = op("Div", [group, "C"], "b_sel")
    c_sel = op("Mod", [group, "C"], "c_sel")
    # Best max_detections per image: a dense (B, N + D) score matrix, -1 where not this image's.
    mine = op(
        "Equal",
        [op("Unsqueeze", [b_range, "ax1"], "b_col"), op("Unsqueeze", [b_sel, "s0"], "b_row")],
        "mine",
    )
    dense = op("Where", [mine, op("Unsqueeze", [s_sel, "s0"], "s_row"), "neg_one_f"], "dense")
    pad_shape = op("Concat", [op("Unsqueeze", [batch, "s0"], "B1"), "D"], "pad_shape", axis=0)
    pad = op("Expand", ["neg_one_f", pad_shape], "pad")
    dense = op("Concat", [dense, pad], "dense_pad", axis=1)
    nodes.append(
        helper.make_node(
            "TopK", [dense, names["D"]], ["pp/best_s", "pp/best_i"], axis=1, name="pp/best"
        )
    )
    valid = op("Greater", ["pp/best_s", "half_f"], "valid")
    valid4 = op("Unsqueeze", [valid, "ax2"], "valid4")
    box_all = op("Concat", [box_sel, "zeros_D4"], "box_all", axis=0)
    lab_all = op("Concat", [c_sel, "zeros_Di"], "lab_all", axis=0)
    nodes.append(
        helper.make_node(
            "Where",
            [valid4, op("Gather", [box_all, "pp/best_i"], "g_boxes", axis=0), names["zero_f"]],
            ["boxes"],
            name="pp/out_boxes",
        )
    )
    nodes.append(
        helper.make_node(
            "Where", [valid, "pp/best_s", names["zero_f"]], ["scores"], name="pp/out_scores"
        )
    )
    nodes.append(
        helper.make_node(
            "Where",
            [valid, op("Gather", [lab_all, "pp/best_i"], "g_labels", axis=0), names["neg_one_i"]],
            ["labels"],
            name="pp/out_labels",
        )
    )
    nodes.append(
        helper.make_node(
            "ReduceSum",
            [op("Cast", [valid], "valid_i", to=TensorProto.INT64), names["ax1"]],
            ["count"],
            keepdims=0,
            name="pp/out_count",
        )
    )

    graph.node.extend(nodes)
    batch_dim = _output_batch_dim(graph)
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch_dim, det, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch_dim, det]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [batch_dim, det]),
            helper.make_tensor_value_info("count", TensorProto.INT64, [batch_dim]),
        ]
    )
    return model


def _output_dim(graph: onnx.GraphProto, name: str, axis: int) -> int:
    for output in graph.output:
        if output.name == name:
            return int(output.type.tensor_type.shape.dim[axis].dim_value)
    raise KeyError(name)


def _output_batch_dim(graph: onnx.GraphProto) -> int | str:
    dim = graph.output[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or int(dim.dim_value)


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Store string key/value pairs in the model's ``metadata_props`` (replacing equal keys)."""
    keep = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
