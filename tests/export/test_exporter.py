"""ONNX and TorchScript exports of a tiny detector, both forms: the checkpoint's detections."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_random_checkpoint

from ssdcli.benchmark.agreement import compare_detections
from ssdcli.data import pattern_images
from ssdcli.errors import ExportError, UsageError
from ssdcli.export.exporter import export_model
from ssdcli.export.torchscript import postprocess_padded
from ssdcli.export.verify import FLOAT32
from ssdcli.infer.open import model_format, open_predictor
from ssdcli.postprocess import PostprocessOverrides

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CLASSES = ["circle", "cross", "square", "star", "triangle"]

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("export") / "best.pt", CLASSES)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return pattern_images(3, seed=1)


def _same_as_checkpoint(path: Path, checkpoint: Path, images: list[np.ndarray]) -> None:
    sizes = [im.shape[:2] for im in images]
    asked = PostprocessOverrides(score_threshold=0.05)
    reference = open_predictor(
        checkpoint, overrides=asked, batch_size=3, precision="float32"
    ).predict(images)
    exported = open_predictor(path, overrides=asked, batch_size=3).predict(images)
    report = compare_detections(reference, exported, sizes, FLOAT32)
    assert report.detections > 20  # random weights and a low threshold: plenty to compare
    assert report.passed, report.summary()
    assert report.unmatched <= 1


@pytest.mark.parametrize(
    ("fmt", "with_nms", "dynamic"),
    [
        ("onnx", True, True),
        ("onnx", False, False),
        ("torchscript", True, True),
        ("torchscript", False, False),
    ],
)
def test_export_both_forms_both_formats(
    checkpoint, images, tmp_path, fmt, with_nms, dynamic
) -> None:
    out = tmp_path / f"model.{fmt}"
    result = export_model(checkpoint, out, fmt=fmt, with_nms=with_nms, dynamic_batch=dynamic)
    assert result.path == out and out.is_file() and result.size_bytes == out.stat().st_size
    assert result.verify.passed and result.verify.max_score_diff < 1e-4
    assert result.form == ("nms" if with_nms else "raw")
    assert model_format(out) == fmt
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
    predictor = open_predictor(out)
    assert predictor.info.form == result.form and predictor.class_names == CLASSES
    assert predictor.info.size_hw == (128, 128)
    assert predictor.info.fixed_batch == (None if dynamic else 1)
    _same_as_checkpoint(out, checkpoint, images)


@pytest.mark.parametrize("neck", ["fpn", "pan"])
def test_a_network_with_a_feature_pyramid_exports_and_verifies(images, tmp_path, neck) -> None:
    checkpoint = write_random_checkpoint(
        tmp_path / "best.pt", CLASSES, model={"neck": neck, "neck_channels": 16}
    )
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"model.{fmt}"
        result = export_model(checkpoint, out, fmt=fmt)
        assert result.verify.passed and result.verify.max_score_diff < 1e-4
        _same_as_checkpoint(out, checkpoint, images)


def test_onnx_outputs_and_metadata(checkpoint, tmp_path) -> None:
    out = tmp_path / "m.onnx"
    export_model(checkpoint, out, fmt="onnx", with_nms=True, dynamic_batch=True, opset=18)
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 18
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == CLASSES
    assert json.loads(meta["input_size_hw"]) == [128, 128]
    assert json.loads(meta["mean"]) == [123.675, 116.28, 103.53]
    assert meta["channel_order"] == "rgb"
    assert json.loads(meta["priors"])["variances"] == [0.1, 0.2]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names == ["boxes", "scores", "labels", "count"]
    outputs = session.run(None, {"images": np.zeros((2, 3, 128, 128), np.float32)})
    assert [o.shape for o in outputs] == [(2, 50, 4), (2, 50), (2, 50), (2,)]
    boxes, scores, labels, count = outputs
    for b in range(2):
        n = int(count[b])
        assert (labels[b, n:] == -1).all() and (scores[b, n:] == 0).all()
        assert (labels[b, :n] >= 0).all() and (scores[b, :n] > 0.05).all()


def test_half_export_verifies(checkpoint, tmp_path) -> None:
    result = export_model(checkpoint, tmp_path / "half.onnx", fmt="onnx", half=True)
    assert result.verify.passed
    assert any(
        init.data_type == onnx.TensorProto.FLOAT16
        for init in onnx.load(str(result.path)).graph.initializer
    )


def test_export_beyond_tolerance_fails_and_removes_the_file(checkpoint, tmp_path, monkeypatch):
    import ssdcli.export.exporter as export_module

    original = export_module.finish_onnx

    def shifted_priors(proto, loaded, info):  # a wrong export: priors moved by 5% of the image
        loaded.detector.priors_P4 = loaded.detector.priors_P4 + torch.tensor([0.05, 0.0, 0.0, 0.0])
        try:
            return original(proto, loaded, info)
        finally:
            loaded.detector.priors_P4 = loaded.detector.priors_P4 - torch.tensor([0.05, 0.0, 0, 0])

    monkeypatch.setattr(export_module, "finish_onnx", shifted_priors)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="post-processing differs.*box decoding"):
        export_model(checkpoint, out, fmt="onnx")
    assert list(tmp_path.iterdir()) == []


def test_option_errors(checkpoint, tmp_path) -> None:
    with pytest.raises(UsageError, match="opset"):
        export_model(checkpoint, tmp_path / "a.onnx", fmt="onnx", opset=13)
    with pytest.raises(UsageError, match="ONNX and OpenVINO exports only"):
        export_model(
            checkpoint, tmp_path / "a.pt", fmt="torchscript", int8=True, calibration=checkpoint
        )
    with pytest.raises(UsageError, match="--calibration"):
        export_model(checkpoint, tmp_path / "a.onnx", fmt="onnx", int8=True)
    with pytest.raises(UsageError, match="--format"):
        export_model(checkpoint, tmp_path / "a.x", fmt="coreml")


def test_missing_onnxruntime_says_how_to_install(checkpoint, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"pip install 'ssdcli\[export\]'"):
        export_model(checkpoint, tmp_path / "a.onnx", fmt="onnx")


def _hand_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three priors, zero deltas: two overlapping class-1 boxes (IoU 0.818) and one class-2 box.

    With a score threshold of 0.1 only those three scores count (the others are below 0.05).
    """
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.52, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]])
    logits = torch.tensor([[[0.0, 5.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 3.0]]])
    return logits, torch.zeros(1, 3, 4), priors


# softmax([0, 5, 0])[1] = e^5 / (e^5 + 2) and softmax([0, 0, 3])[2] = e^3 / (e^3 + 2), by hand.
EXPECTED_SCORES = [148.41316 / 150.41316, 20.085537 / 22.085537]
EXPECTED_BOXES = [[0.4, 0.4, 0.6, 0.6], [0.15, 0.15, 0.25, 0.25]]


def test_scripted_postprocess_hand_case() -> None:
    logits, deltas, priors = _hand_case()
    boxes, scores, labels, count = postprocess_padded(
        logits, deltas, priors, (0.1, 0.2), 4.0, 0.1, 0.45, 400, 4
    )
    assert count.tolist() == [2]
    assert labels.tolist() == [[0, 1, -1, -1]]
    np.testing.assert_allclose(scores[0, :2].numpy(), EXPECTED_SCORES, rtol=1e-6)
    np.testing.assert_allclose(boxes[0, :2].numpy(), EXPECTED_BOXES, atol=1e-6)


def test_onnx_postprocess_graph_hand_case() -> None:
    from onnx import TensorProto, helper

    from ssdcli.boxes import BoxCoder
    from ssdcli.config import PostprocessConfig
    from ssdcli.export.onnx_postprocess import add_postprocess
    from ssdcli.postprocess import PostprocessSettings

    logits, deltas, priors = _hand_case()
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["logits_in"], ["cls_logits"]),
            helper.make_node("Identity", ["deltas_in"], ["box_deltas"]),
        ],
        "hand",
        [
            helper.make_tensor_value_info("logits_in", TensorProto.FLOAT, ["batch", 3, 3]),
            helper.make_tensor_value_info("deltas_in", TensorProto.FLOAT, ["batch", 3, 4]),
        ],
        [
            helper.make_tensor_value_info("cls_logits", TensorProto.FLOAT, ["batch", 3, 3]),
            helper.make_tensor_value_info("box_deltas", TensorProto.FLOAT, ["batch", 3, 4]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    settings = PostprocessSettings.from_config(
        PostprocessConfig(score_threshold=0.1, nms_iou=0.45, max_detections=4)
    )
    add_postprocess(model, priors.numpy(), 3, BoxCoder((0.1, 0.2), 4.0), settings)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # Image 2: the first prior becomes background, so the second class-1 box is no longer
    # suppressed and survives with the class-2 box.
    logits2 = logits.clone()
    logits2[0, 0] = torch.tensor([9.0, 0.0, 0.0])
    feeds = {
        "logits_in": torch.cat([logits, logits2]).numpy(),
        "deltas_in": torch.cat([deltas, deltas]).numpy(),
    }
    boxes, scores, labels, count = session.run(None, feeds)
    assert count.tolist() == [2, 2]
    assert labels.tolist() == [[0, 1, -1, -1], [0, 1, -1, -1]]
    np.testing.assert_allclose(scores[0, :2], EXPECTED_SCORES, rtol=1e-6)
    np.testing.assert_allclose(boxes[0, :2], EXPECTED_BOXES, atol=1e-6)
    # In image 2 the surviving class-1 box is the second prior (x 0.42..0.62), score e^4/(e^4+2).
    np.testing.assert_allclose(boxes[1, 0], [0.42, 0.4, 0.62, 0.6], atol=1e-6)
    np.testing.assert_allclose(scores[1, 0], 54.59815 / 56.59815, rtol=1e-6)


def test_opencv_dnn_reads_the_raw_export(checkpoint, images, tmp_path) -> None:
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn"):
        pytest.skip("this OpenCV build has no dnn module")
    out = tmp_path / "raw.onnx"
    export_model(checkpoint, out, fmt="onnx", with_nms=False)
    try:
        net = cv2.dnn.readNetFromONNX(str(out))
    except cv2.error as error:
        pytest.skip(f"this OpenCV cannot load the raw export: {str(error).splitlines()[0]}")
    predictor = open_predictor(out)
    batch = predictor.preprocess(images[:1])
    names = list(net.getUnconnectedOutLayersNames())
    net.setInput(batch)
    got = dict(zip(names, net.forward(names), strict=True))
    outputs = predictor.file_outputs(batch)
    expected = dict(zip(["cls_logits", "box_deltas", "priors"], outputs, strict=True))
    for name in ("cls_logits", "box_deltas"):
        np.testing.assert_allclose(
            got[name].reshape(expected[name].shape), expected[name], atol=1e-4
        )
    if "priors" in got:
        np.testing.assert_allclose(got["priors"].reshape(-1, 4), expected["priors"], atol=1e-6)


def test_int8_export_reports_float_and_int8_map(checkpoint, tmp_path) -> None:
    from ssdcli.data.prepare.manifest import prepare_synthetic

    prepare_synthetic(tmp_path / "shapes", 16, 128, 0)
    out = tmp_path / "model.int8.onnx"
    result = export_model(
        checkpoint,
        out,
        fmt="onnx",
        int8=True,
        calibration=tmp_path / "shapes" / "manifest.json",
        calibration_images=4,
    )
    report = result.int8
    assert out.is_file() and report is not None
    assert report.calibration_images == 4 and report.images > 0
    for value in (report.float_map07, report.int8_map07, report.float_map, report.int8_map):
        assert 0.0 <= value <= 1.0
    model = onnx.load(str(out))
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    assert open_predictor(out).info.extra["int8"] is True
