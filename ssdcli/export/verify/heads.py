"""The head outputs of an exported file, whatever its form, for the raw-output check.

An ``nms`` export only outputs detections, yet the verification first asks whether the exported
*network* computes what the checkpoint computes. The network part is run from the written file
itself, not from a second export, so that nothing but the file is trusted:

* ONNX: both forms keep the network's outputs as the named tensors ``cls_logits`` and
  ``box_deltas`` (the post-processing nodes read them). A copy of the file's graph in memory lists
  them as graph outputs too, and ONNX Runtime runs that copy: same weights, same nodes.
* TorchScript: both modules hold the traced network as the submodule ``net``
  (:mod:`ssdcli.export.torchscript`); it is called on its own.
* OpenVINO: the IR keeps the ONNX tensor names; the model read from the file gets
  ``cls_logits`` and ``box_deltas`` as extra outputs (``ov.Model.add_outputs``), as for ONNX.
* TFLite: the file holds the raw form only, whose first two outputs are the head outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssdcli.errors import ExportError

HEAD_OUTPUTS = ("cls_logits", "box_deltas")


def exported_head_outputs(
    path: Path, fmt: str, batch_BCHW: np.ndarray, fixed_batch: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Run the network part of an exported file.

    Args:
        path: the exported file.
        fmt: ``"onnx"``, ``"torchscript"``, ``"openvino"`` or ``"tflite"``.
        batch_BCHW (ndarray[B, 3, H, W], float32): inputs preprocessed as the file describes.
        fixed_batch: the file's fixed batch size (the batch is run in chunks of it, the last one
            padded), None when the batch dimension is dynamic.

    Returns:
        ``cls_logits_BPK`` (float32 ``[B, P, K]``, K = classes + background) and
        ``box_deltas_BP4`` (float32 ``[B, P, 4]``).

    Raises:
        ExportError: the file has no such outputs or does not run.
    """
    runners = {
        "onnx": _onnx_runner,
        "torchscript": _torchscript_runner,
        "openvino": _openvino_runner,
        "tflite": _tflite_runner,
    }
    run = runners[fmt](path)
    step = fixed_batch or len(batch_BCHW)
    cls_parts, box_parts = [], []
    for start in range(0, len(batch_BCHW), step):
        chunk = batch_BCHW[start : start + step]
        n = len(chunk)
        if fixed_batch is not None and n < fixed_batch:  # pad the last chunk, as the predictors do
            chunk = np.concatenate(
                [chunk, np.zeros((fixed_batch - n, *chunk.shape[1:]), chunk.dtype)]
            )
        cls_logits, box_deltas = run(np.ascontiguousarray(chunk))
        cls_parts.append(cls_logits[:n])
        box_parts.append(box_deltas[:n])
    return np.concatenate(cls_parts), np.concatenate(box_parts)


def _onnx_runner(path: Path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    produced = {name for node in model.graph.node for name in node.output}
    listed = {output.name for output in model.graph.output}
    missing = [name for name in HEAD_OUTPUTS if name not in produced | listed]
    if missing:
        raise ExportError(f"{path}: the graph has no tensor {missing[0]!r} (the network's output)")
    for name in HEAD_OUTPUTS:
        if name not in listed:  # shape left open: ONNX Runtime infers it
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(batch_BCHW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cls_logits, box_deltas = session.run(list(HEAD_OUTPUTS), {input_name: batch_BCHW})
        return np.asarray(cls_logits, np.float32), np.asarray(box_deltas, np.float32)

    return run


def _torchscript_runner(path: Path):
    import warnings

    import torch
    import torchvision  # noqa: F401 - registers torchvision::nms for the loaded module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    if not hasattr(module, "net"):
        raise ExportError(f"{path}: the TorchScript module has no network submodule 'net'")

    def run(batch_BCHW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            cls_logits, box_deltas = module.net(torch.from_numpy(batch_BCHW))
        return cls_logits.float().numpy(), box_deltas.float().numpy()

    return run


def _openvino_runner(path: Path):
    from ssdcli.infer.model_info import info_from_metadata
    from ssdcli.infer.openvino_runtime import compile_ir, read_ir

    model, text = read_ir(path)
    half = bool(info_from_metadata(text, "openvino", str(path)).extra.get("half"))
    names = {name for output in model.outputs for name in output.get_names()}
    try:
        model.add_outputs([name for name in HEAD_OUTPUTS if name not in names])
    except RuntimeError as error:
        raise ExportError(
            f"{path}: the IR has no tensors {' and '.join(HEAD_OUTPUTS)} (the network's outputs)"
        ) from error
    compiled = compile_ir(model, half=half)
    outputs = [compiled.output(name) for name in HEAD_OUTPUTS]

    def run(batch_BCHW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        results = compiled(batch_BCHW)
        cls_logits, box_deltas = (np.array(results[o], np.float32) for o in outputs)
        return cls_logits, box_deltas

    return run


def _tflite_runner(path: Path):
    from ssdcli.infer.litert_runtime import LiteRtPredictor

    predictor = LiteRtPredictor(path)

    def run(batch_BCHW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cls_logits, box_deltas = predictor.file_outputs(batch_BCHW)[:2]
        return np.asarray(cls_logits, np.float32), np.asarray(box_deltas, np.float32)

    return run
