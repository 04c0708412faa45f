"""OpenVINO IR exports of a tiny detector: both forms verify, carry their metadata, and give the
checkpoint's detections through ``OpenVinoPredictor``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_helpers import write_random_checkpoint

from ssdcli.benchmark.agreement import compare_detections
from ssdcli.data import pattern_images
from ssdcli.errors import UsageError
from ssdcli.export.exporter import export_model
from ssdcli.export.verify import FLOAT32
from ssdcli.infer.open import model_format, open_predictor
from ssdcli.postprocess import PostprocessOverrides

pytest.importorskip("onnx", reason="onnx is not installed: pip install 'ssdcli[export]'")
ov = pytest.importorskip(
    "openvino", reason="openvino is not installed: pip install 'ssdcli[openvino]'"
)

CLASSES = ["circle", "cross", "square", "star", "triangle"]

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("export") / "best.pt", CLASSES)


@pytest.mark.parametrize(("with_nms", "dynamic"), [(True, True), (False, False)])
def test_openvino_export_verifies_and_detects_like_the_checkpoint(
    checkpoint, tmp_path, with_nms, dynamic
) -> None:
    out = tmp_path / "model.xml"
    result = export_model(checkpoint, out, fmt="openvino", with_nms=with_nms, dynamic_batch=dynamic)
    assert result.verify.passed and result.verify.max_score_diff < 1e-4
    assert result.verify.detections > 20  # random weights, threshold 0.05: plenty compared
    assert sorted(tmp_path.iterdir()) == [out.with_suffix(".bin"), out]  # no temporary left
    assert result.size_bytes == out.stat().st_size + out.with_suffix(".bin").stat().st_size
    assert model_format(out) == "openvino"
    predictor = open_predictor(out, batch_size=3)
    assert predictor.info.form == ("nms" if with_nms else "raw")
    assert predictor.info.fixed_batch == (None if dynamic else 1)
    assert predictor.class_names == CLASSES and predictor.info.size_hw == (128, 128)
    images = pattern_images(3, seed=1)
    asked = PostprocessOverrides(score_threshold=0.05)
    reference = open_predictor(
        checkpoint, overrides=asked, batch_size=3, precision="float32"
    ).predict(images)
    got = open_predictor(out, overrides=asked, batch_size=3).predict(images)
    report = compare_detections(reference, got, [im.shape[:2] for im in images], FLOAT32)
    assert report.detections > 20 and report.passed, report.summary()


def test_openvino_metadata_travels_in_rt_info(checkpoint, tmp_path) -> None:
    import json

    out = tmp_path / "m.xml"
    export_model(checkpoint, out, fmt="openvino")
    model = ov.Core().read_model(str(out))
    meta = json.loads(model.get_rt_info(["ssdcli"]).astype(str))
    assert meta["class_names"] == CLASSES and meta["size_hw"] == [128, 128]
    assert meta["mean"] == [123.675, 116.28, 103.53] and meta["channel_order"] == "rgb"
    assert meta["resize"] == "stretch" and meta["postprocess"]["score_threshold"] == 0.05
    assert meta["format"] == "openvino" and meta["form"] == "nms"
    # float32 export: weights stored as f32 (OpenVINO's save_model would compress to f16).
    assert {c.get_element_type().get_type_name() for c in _constants(model)} >= {"f32"}
    assert "f16" not in {c.get_element_type().get_type_name() for c in _constants(model)}


def _constants(model):
    return [op for op in model.get_ops() if op.get_type_name() == "Constant"]


def test_openvino_half_stores_float16_weights_and_verifies(checkpoint, tmp_path) -> None:
    out = tmp_path / "half.xml"
    result = export_model(checkpoint, out, fmt="openvino", half=True)
    assert result.verify.passed
    types = {c.get_element_type().get_type_name() for c in _constants(ov.Core().read_model(out))}
    assert "f16" in types


def test_openvino_out_must_be_xml(checkpoint, tmp_path) -> None:
    with pytest.raises(UsageError, match=r"\.xml"):
        export_model(checkpoint, tmp_path / "m.onnx", fmt="openvino")


def test_an_xml_file_that_is_not_an_ir_is_a_clear_error(tmp_path) -> None:
    from ssdcli.errors import CheckpointError

    path = tmp_path / "m.xml"
    path.write_text("<?xml version='1.0'?><net name='x'></net>")
    with pytest.raises(CheckpointError, match="m.xml"):
        open_predictor(path)


def test_tiny_channels_keep_float32_outputs(checkpoint, tmp_path) -> None:
    """The IR's raw outputs are float32 arrays of the checkpoint's shapes."""
    out = tmp_path / "raw.xml"
    export_model(checkpoint, out, fmt="openvino", with_nms=False)
    predictor = open_predictor(out)
    batch = predictor.preprocess(pattern_images(1, seed=2))
    cls_logits, box_deltas, priors = predictor.file_outputs(batch)
    assert cls_logits.dtype == np.float32 and cls_logits.shape[-1] == len(CLASSES) + 1
    assert box_deltas.shape == (*cls_logits.shape[:2], 4) and priors.shape == (
        cls_logits.shape[1],
        4,
    )


def test_openvino_int8_quantizes_the_network_only_and_reports_map(checkpoint, tmp_path) -> None:
    pytest.importorskip("nncf", reason="nncf is not installed: pip install 'ssdcli[openvino]'")
    from ssdcli.data.prepare.manifest import prepare_synthetic

    prepare_synthetic(tmp_path / "shapes", 16, 128, 0)
    out = tmp_path / "model.int8.xml"
    result = export_model(
        checkpoint,
        out,
        fmt="openvino",
        int8=True,
        calibration=tmp_path / "shapes" / "manifest.json",
        calibration_images=4,
    )
    report = result.int8
    assert out.is_file() and out.with_suffix(".bin").is_file() and report is not None
    assert report.calibration_images == 4 and report.images > 0
    for value in (report.float_map07, report.int8_map07, report.float_map, report.int8_map):
        assert 0.0 <= value <= 1.0
    assert report.verify is not None and report.verify.detections > 0
    model = ov.Core().read_model(str(out))
    kinds = [op.get_type_name() for op in model.get_ordered_ops()]
    assert kinds.count("FakeQuantize") > 5  # the convolutions' inputs and weights
    # Nothing after the head outputs is quantized: NMS and decoding read float32 tensors.
    from ssdcli.export.openvino_int8 import post_network_ops

    post = set(post_network_ops(model))
    assert post and not any(
        op.get_type_name() == "FakeQuantize" and op.get_friendly_name() in post
        for op in model.get_ordered_ops()
    )
    predictor = open_predictor(out)
    assert predictor.info.extra["int8"] is True and predictor.info.form == "nms"
