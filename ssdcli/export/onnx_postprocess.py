"""SSD post-processing as plain ONNX operators, appended to the exported network's graph.

The graph mirrors :class:`~ssdcli.postprocess.PostProcessor` step for step, one builder per step
so that each reads side by side with its counterpart:

1. :func:`_decode_boxes` - :meth:`ssdcli.boxes.BoxCoder.decode` (same variances and clamp), then
   clamping to the image: ``boxes [B, P, 4]`` normalised xyxy.
2. :func:`_top_k_per_class` - softmax, foreground scores per class, the best ``pre_nms_top_k``
   priors of each (image, class) and their boxes.
3. :func:`_per_class_nms` - ``NonMaxSuppression`` with each (image, class) as its own batch entry,
   strict score threshold, IoU strictly above ``nms_iou`` suppresses.
4. :func:`_best_per_image` - the best ``max_detections`` survivors of each image.
5. :func:`_padded_outputs` - ``boxes [B, D, 4]``, ``scores [B, D]``, ``labels [B, D]`` (int64,
   0..C-1, -1 for padding) and ``count [B]`` (int64, valid rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

    from ssdcli.boxes import BoxCoder
    from ssdcli.postprocess import PostprocessSettings

_I64 = np.int64


@dataclass
class _Builder:
    """Appends named constants and nodes (all prefixed ``pp/``) to a graph."""

    graph: Any
    nodes: list = field(default_factory=list)

    def const(self, key: str, value: Any) -> str:
        from onnx import numpy_helper

        name = f"pp/{key}"
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], out: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [f"pp/{out}"], name=f"pp/{out}", **attrs))
        return f"pp/{out}"

    def op2(self, kind: str, inputs: list[str], outs: tuple[str, str], **attrs: Any) -> None:
        """A node with two outputs (TopK: values, indices)."""
        from onnx import helper

        names = [f"pp/{o}" for o in outs]
        self.nodes.append(helper.make_node(kind, inputs, names, name=names[0], **attrs))

    def output(self, kind: str, inputs: list[str], out: str, **attrs: Any) -> None:
        """A node writing one of the graph's outputs (named without the prefix)."""
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [out], name=f"pp/out_{out}", **attrs))


def add_postprocess(
    model: onnx.ModelProto,
    priors_P4: np.ndarray,
    num_logits: int,
    coder: BoxCoder,
    settings: PostprocessSettings,
) -> onnx.ModelProto:
    """Replace the outputs ``cls_logits``/``box_deltas`` with decoded, NMS-filtered detections.

    Args:
        model: graph with outputs ``cls_logits [B, P, K]`` and ``box_deltas [B, P, 4]``.
        priors_P4: ``[P, 4]`` float32 normalised cxcywh priors.
        num_logits: K, class logits per prior (background included). Given, not read from the
            graph: the exporter's shape inference can leave that dimension unnamed (it does after
            a pixel-unshuffle layer), and a 0 there would silently drop every detection.
        coder: the box coder the model was trained with.
        settings: as in :class:`~ssdcli.postprocess.PostProcessor`.

    Returns:
        The model with outputs ``boxes``, ``scores``, ``labels``, ``count`` (see module doc).
    """
    from onnx import TensorProto, helper

    graph = model.graph
    num_k = int(num_logits)
    known_k = _output_dim(graph, "cls_logits", 2)
    if known_k not in (0, num_k):
        raise ValueError(f"cls_logits has {known_k} logits per prior in the graph, not {num_k}")
    num_priors = int(priors_P4.shape[0])
    top_k = min(int(settings.pre_nms_top_k), num_priors)
    det = int(settings.max_detections)
    g = _Builder(graph)
    batch = g.op("Gather", [g.op("Shape", ["cls_logits"], "shape"), g.const("idx0", 0)], "B")
    b_range = g.op("Range", [g.const("zero_i", _I64(0)), batch, g.const("one_i", _I64(1))], "b_r")

    boxes = _decode_boxes(g, np.asarray(priors_P4, dtype=np.float32), coder)
    top_s, cand = _top_k_per_class(g, boxes, b_range, num_k, num_priors, top_k)
    s_sel, box_sel, b_sel, c_sel = _per_class_nms(g, top_s, cand, num_k - 1, top_k, settings)
    best_s, best_i = _best_per_image(g, s_sel, b_sel, b_range, batch, det)
    _padded_outputs(g, best_s, best_i, box_sel, c_sel, det)

    graph.node.extend(g.nodes)
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


def _decode_boxes(g: _Builder, priors_P4: np.ndarray, coder: BoxCoder) -> str:
    """``box_deltas [B, P, 4]`` -> ``boxes_BP4`` normalised xyxy clamped to [0, 1].

    ``centre = p_xy + d_xy * v_c * p_wh``, ``size = p_wh * exp(min(d_wh * v_s, max_log))``,
    corners = centre -/+ size / 2 (:meth:`ssdcli.boxes.BoxCoder.decode`).
    """
    p_xy, p_wh = g.const("p_xy", priors_P4[None, :, :2]), g.const("p_wh", priors_P4[None, :, 2:])
    s0, s2, s4 = (g.const(f"s{i}", np.array([i], _I64)) for i in (0, 2, 4))
    ax2 = g.const("ax2", np.array([2], _I64))
    d_xy = g.op("Slice", ["box_deltas", s0, s2, ax2], "d_xy")
    d_wh = g.op("Slice", ["box_deltas", s2, s4, ax2], "d_wh")
    v_c = g.const("v_c", np.float32(coder.variances[0]))
    v_s = g.const("v_s", np.float32(coder.variances[1]))
    centre = g.op(
        "Add", [p_xy, g.op("Mul", [g.op("Mul", [d_xy, v_c], "dxy_v"), p_wh], "dxy_vp")], "ctr"
    )
    max_log = g.const("max_log", np.float32(coder.max_log_scale))
    log_scale = g.op("Min", [g.op("Mul", [d_wh, v_s], "dwh_v"), max_log], "log_scale")
    size = g.op("Mul", [p_wh, g.op("Exp", [log_scale], "scale")], "size")
    half_size = g.op("Div", [size, g.const("two", np.float32(2.0))], "hs")
    corners = [g.op("Sub", [centre, half_size], "xy1"), g.op("Add", [centre, half_size], "xy2")]
    boxes = g.op("Concat", corners, "box_raw", axis=2)
    zero, one = g.const("zero_f", np.float32(0.0)), g.const("one_f", np.float32(1.0))
    return g.op("Clip", [boxes, zero, one], "boxes_BP4")


def _top_k_per_class(
    g: _Builder, boxes: str, b_range: str, num_k: int, num_priors: int, top_k: int
) -> tuple[str, str]:
    """The best ``top_k`` priors per (image, class) by foreground probability.

    Returns:
        ``top_s [B, C, k]`` scores and ``cand_BCk4`` their boxes.
    """
    probs = g.op("Softmax", ["cls_logits"], "probs", axis=-1)
    s1, s_k = g.const("s1", np.array([1], _I64)), g.const("sK", np.array([num_k], _I64))
    foreground = g.op("Slice", [probs, s1, s_k, "pp/ax2"], "fg")
    scores_bcp = g.op("Transpose", [foreground], "scores_BCP", perm=[0, 2, 1])
    g.op2("TopK", [scores_bcp, g.const("k", np.array([top_k], _I64))], ("top_s", "top_i"), axis=-1)
    # Row of each candidate among the B * P flattened boxes: prior index + image * P.
    ax1 = g.const("ax1", np.array([1], _I64))
    b_off = g.op("Mul", [b_range, g.const("P", _I64(num_priors))], "b_P")
    b_off = g.op("Unsqueeze", [g.op("Unsqueeze", [b_off, ax1], "b_off1"), "pp/ax2"], "b_off")
    flat_idx = g.op("Add", ["pp/top_i", b_off], "flat_idx")
    boxes_flat = g.op("Reshape", [boxes, g.const("shape_m14", np.array([-1, 4], _I64))], "bflat")
    return "pp/top_s", g.op("Gather", [boxes_flat, flat_idx], "cand_BCk4", axis=0)


def _per_class_nms(
    g: _Builder, top_s: str, cand: str, num_c: int, top_k: int, settings: PostprocessSettings
) -> tuple[str, str, str, str]:
    """Greedy NMS with each (image, class) pair as one single-class NMS batch entry.

    Returns:
        Per survivor N: ``s_sel [N]`` score, ``box_sel [N, 4]``, ``b_sel [N]`` image and
        ``c_sel [N]`` class (0..C-1).
    """
    nms_boxes = g.op("Reshape", [cand, g.const("shape_gk4", np.array([-1, top_k, 4], _I64))], "nb")
    nms_scores = g.op(
        "Reshape", [top_s, g.const("shape_g1k", np.array([-1, 1, top_k], _I64))], "ns"
    )
    limits = [
        g.const("nms_max", np.array([top_k], _I64)),
        g.const("nms_iou", np.array([settings.nms_iou], np.float32)),
        g.const("nms_score", np.array([settings.score_threshold], np.float32)),
    ]
    sel = g.op("NonMaxSuppression", [nms_boxes, nms_scores, *limits], "sel")
    group = g.op("Gather", [sel, "pp/idx0"], "group", axis=1)
    j = g.op("Gather", [sel, g.const("idx2", _I64(2))], "j", axis=1)
    pos = g.op("Add", [g.op("Mul", [group, g.const("topk", _I64(top_k))], "g_k"), j], "pos")
    flat_m1 = g.const("shape_m1", np.array([-1], _I64))
    s_sel = g.op("Gather", [g.op("Reshape", [top_s, flat_m1], "top_s_flat"), pos], "s_sel", axis=0)
    cand_flat = g.op("Reshape", [cand, "pp/shape_m14"], "cand_flat")
    box_sel = g.op("Gather", [cand_flat, pos], "box_sel", axis=0)
    classes = g.const("C", _I64(num_c))
    return (
        s_sel,
        box_sel,
        g.op("Div", [group, classes], "b_sel"),
        g.op("Mod", [group, classes], "c_sel"),
    )


def _best_per_image(
    g: _Builder, s_sel: str, b_sel: str, b_range: str, batch: str, det: int
) -> tuple[str, str]:
    """TopK over a dense ``[B, N + D]`` score matrix (-1 where a survivor is another image's,
    plus D padding columns so that every image has D entries).

    Returns:
        ``best_s [B, D]`` scores (-1 = padding) and ``best_i [B, D]`` survivor indices.
    """
    s0 = "pp/s0"
    mine = g.op(
        "Equal",
        [g.op("Unsqueeze", [b_range, "pp/ax1"], "b_col"), g.op("Unsqueeze", [b_sel, s0], "b_row")],
        "mine",
    )
    neg_one = g.const("neg_one_f", np.float32(-1.0))
    dense = g.op("Where", [mine, g.op("Unsqueeze", [s_sel, s0], "s_row"), neg_one], "dense")
    d_const = g.const("D", np.array([det], _I64))
    pad_shape = g.op("Concat", [g.op("Unsqueeze", [batch, s0], "B1"), d_const], "pad_shape", axis=0)
    pad = g.op("Expand", [neg_one, pad_shape], "pad")
    dense = g.op("Concat", [dense, pad], "dense_pad", axis=1)
    g.op2("TopK", [dense, d_const], ("best_s", "best_i"), axis=1)
    return "pp/best_s", "pp/best_i"


def _padded_outputs(
    g: _Builder, best_s: str, best_i: str, box_sel: str, c_sel: str, det: int
) -> None:
    """The graph outputs ``boxes``, ``scores``, ``labels`` (-1 padding) and ``count``."""
    from onnx import TensorProto

    valid = g.op("Greater", [best_s, g.const("half_f", np.float32(-0.5))], "valid")
    valid4 = g.op("Unsqueeze", [valid, "pp/ax2"], "valid4")
    box_all = g.op(
        "Concat", [box_sel, g.const("zeros_D4", np.zeros((det, 4), np.float32))], "ba", axis=0
    )
    lab_all = g.op("Concat", [c_sel, g.const("zeros_Di", np.zeros((det,), _I64))], "la", axis=0)
    boxes = g.op("Gather", [box_all, best_i], "g_boxes", axis=0)
    g.output("Where", [valid4, boxes, "pp/zero_f"], "boxes")
    g.output("Where", [valid, best_s, "pp/zero_f"], "scores")
    labels = g.op("Gather", [lab_all, best_i], "g_labels", axis=0)
    g.output("Where", [valid, labels, g.const("neg_one_i", _I64(-1))], "labels")
    valid_i = g.op("Cast", [valid], "valid_i", to=TensorProto.INT64)
    g.output("ReduceSum", [valid_i, "pp/ax1"], "count", keepdims=0)


def _output_dim(graph: onnx.GraphProto, name: str, axis: int) -> int:
    for output in graph.output:
        if output.name == name:
            return int(output.type.tensor_type.shape.dim[axis].dim_value)
    raise KeyError(name)


def _output_batch_dim(graph: onnx.GraphProto) -> int | str:
    dim = graph.output[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or int(dim.dim_value)
