"""``model.resize: letterbox``: the image keeps its aspect ratio inside the input, and boxes map
back exactly (hand-worked cases), in preprocessing, augmentation, post-processing and export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdcli.boxes import BoxCoder, frame_hw, resized_hw
from ssdcli.config import AugmentConfig
from ssdcli.data.pipeline.transforms import AugmentSettings, augment_ssd, preprocess_image
from ssdcli.postprocess import PostProcessor, PostprocessSettings

OFF = AugmentSettings.from_config(
    AugmentConfig(photometric=False, zoom_out=False, iou_crop=False, hflip=False)
)


def test_a_landscape_image_fills_the_width_and_pads_below() -> None:
    # 50x100 (H, W) into 64x64: scale 0.64, content 32x64 at the top, the rest is the mean (0).
    assert resized_hw((50, 100), (64, 64), "letterbox") == (32, 64)
    assert resized_hw((50, 100), (64, 64), "stretch") == (64, 64)
    assert frame_hw((50, 100), (64, 64), "letterbox") == (100.0, 100.0)
    assert frame_hw((50, 100), (64, 64), "stretch") == (50.0, 100.0)
    image = np.full((50, 100, 3), 200, np.uint8)
    chw = preprocess_image(image, (64, 64), (100.0,) * 3, (2.0,) * 3, "rgb", "letterbox")
    assert chw.shape == (3, 64, 64)
    np.testing.assert_allclose(chw[:, :32], 50.0)  # (200 - 100) / 2
    np.testing.assert_array_equal(chw[:, 32:], 0.0)  # padding = the mean pixel


def test_a_portrait_image_pads_on_the_right() -> None:
    assert resized_hw((120, 30), (60, 80), "letterbox") == (60, 15)
    assert frame_hw((120, 30), (60, 80), "letterbox") == (120.0, 160.0)


def test_augmentation_without_random_steps_scales_boxes_alike_on_both_axes() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    boxes = np.array([[10.0, 5.0, 60.0, 45.0]], np.float32)
    rng = np.random.default_rng(0)
    out = augment_ssd(image, boxes, (64, 64), rng, OFF, resize="letterbox")
    np.testing.assert_allclose(out.boxes_xyxy, boxes * 0.64, atol=1e-4)
    stretched = augment_ssd(image, boxes, (64, 64), rng, OFF)
    np.testing.assert_allclose(stretched.boxes_xyxy, boxes * [0.64, 1.28, 0.64, 1.28], atol=1e-4)


def test_post_processing_maps_boxes_back_through_the_padding() -> None:
    # One prior covering the content of a 50x100 image letterboxed into 64x64 (the top half of
    # the input): normalised xyxy [0, 0, 1, 0.5] -> the whole image, [0, 0, 100, 50] pixels.
    priors = torch.tensor([[0.5, 0.25, 1.0, 0.5], [0.5, 0.75, 0.2, 0.2]])
    logits = torch.tensor([[[0.0, 5.0], [0.0, 5.0]]])
    deltas = torch.zeros(1, 2, 4)
    post = PostProcessor(
        priors,
        BoxCoder(),
        replace(PostprocessSettings.defaults(), score_threshold=0.1),
        "letterbox",
        (64, 64),
    )
    (found,) = post(logits, deltas, [(50, 100)])
    boxes = sorted(found.boxes_D4.tolist())
    # The second prior lies in the padding: clamped to the image's bottom edge (zero height).
    np.testing.assert_allclose(boxes[0], [0.0, 0.0, 100.0, 50.0], atol=1e-4)
    np.testing.assert_allclose(boxes[1], [40.0, 50.0, 60.0, 50.0], atol=1e-4)
    with pytest.raises(ValueError, match="input size"):
        PostProcessor(priors, BoxCoder(), resize="letterbox")


def test_an_onnx_export_carries_letterbox_and_verifies(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from ssdcli.checkpoint.file import make_payload, save_checkpoint
    from ssdcli.config import recipe_from_dict, recipe_to_dict
    from ssdcli.export.exporter import export_model
    from ssdcli.infer.open import open_predictor
    from ssdcli.model import build_detector

    torch.manual_seed(0)
    recipe = recipe_from_dict(
        {
            "model": {"backbone": "tiny", "size_hw": [96, 128], "width": 0.25,
                      "resize": "letterbox"},
            "priors": {"aspect_ratios": [[2]] * 6},
            "postprocess": {"score_threshold": 0.05, "max_detections": 50},
        },
        "test",
    )  # fmt: skip
    detector = build_detector(recipe, 2)
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(checkpoint, make_payload(detector.model.state_dict(), recipe_to_dict(recipe),
                                             ["a", "b"]))  # fmt: skip
    result = export_model(checkpoint, tmp_path / "m.onnx", fmt="onnx")
    assert result.verify.passed
    exported = open_predictor(result.path)
    assert exported.info.resize == "letterbox"
    image = np.random.default_rng(1).integers(0, 255, (200, 90, 3), dtype=np.uint8)
    (found,) = exported.predict([image])
    if len(found):  # every box lies in the portrait image, not in the padded frame
        assert float(found.boxes_D4[:, 2].max()) <= 90 and float(found.boxes_D4[:, 3].max()) <= 200
