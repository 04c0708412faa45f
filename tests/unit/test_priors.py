"""Priors: golden comparisons with ssd.pytorch's algorithm and torchvision's DefaultBoxGenerator."""

from __future__ import annotations

import math
from itertools import product

import pytest
import torch
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from ssdcli.config import PriorsConfig
from ssdcli.errors import RecipeError
from ssdcli.priors import LevelSpec, anchors_per_cell, build_level_specs, describe, make_priors

VOC300 = {
    "image_size": 300,
    "feature_maps": [38, 19, 10, 5, 3, 1],
    "steps": [8, 16, 32, 64, 100, 300],
    "min_sizes": [30, 60, 111, 162, 213, 264],
    "max_sizes": [60, 111, 162, 213, 264, 315],
    "aspect_ratios": [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
}
# SSD512 of the original SSD release (7 levels).
VOC512 = {
    "image_size": 512,
    "feature_maps": [64, 32, 16, 8, 4, 2, 1],
    "steps": [8, 16, 32, 64, 128, 256, 512],
    "min_sizes": [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8],
    "max_sizes": [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6],
    "aspect_ratios": [[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
}
TV_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]


def reference_prior_box(cfg: dict) -> torch.Tensor:
    """ssd.pytorch's PriorBox algorithm, written out as plain loops over every cell."""
    mean = []
    size = cfg["image_size"]
    for k, f in enumerate(cfg["feature_maps"]):
        for i, j in product(range(f), repeat=2):
            f_k = size / cfg["steps"][k]
            cx = (j + 0.5) / f_k
            cy = (i + 0.5) / f_k
            s_k = cfg["min_sizes"][k] / size
            mean += [cx, cy, s_k, s_k]
            s_k_prime = math.sqrt(s_k * (cfg["max_sizes"][k] / size))
            mean += [cx, cy, s_k_prime, s_k_prime]
            for ar in cfg["aspect_ratios"][k]:
                mean += [cx, cy, s_k * math.sqrt(ar), s_k / math.sqrt(ar)]
                mean += [cx, cy, s_k / math.sqrt(ar), s_k * math.sqrt(ar)]
    return torch.tensor(mean, dtype=torch.float32).view(-1, 4).clamp_(min=0, max=1)


def levels_from(cfg: dict) -> list[LevelSpec]:
    return [
        LevelSpec((f, f), (float(s), float(s)), float(lo), float(hi), tuple(map(float, r)))
        for f, s, lo, hi, r in zip(
            cfg["feature_maps"],
            cfg["steps"],
            cfg["min_sizes"],
            cfg["max_sizes"],
            cfg["aspect_ratios"],
            strict=True,
        )
    ]


def test_anchors_per_cell() -> None:
    assert anchors_per_cell([2]) == 4
    assert anchors_per_cell([2, 3]) == 6
    assert anchors_per_cell([2], has_max_size=False) == 3
    assert anchors_per_cell([]) == 2


@pytest.mark.parametrize(("cfg", "count"), [(VOC300, 8732), (VOC512, 24564)])
def test_equals_ssd_pytorch_prior_box(cfg: dict, count: int) -> None:
    size = cfg["image_size"]
    priors = make_priors(levels_from(cfg), (size, size))
    expected = reference_prior_box(cfg)
    assert priors.shape == (count, 4)
    assert priors.dtype == torch.float32
    assert torch.equal(priors, expected)


def test_first_and_last_cells_by_hand() -> None:
    priors = make_priors(levels_from(VOC300), (300, 300))
    c = 0.5 / (300 / 8)  # first centre: 0.01333...
    r2 = math.sqrt(2)
    first = torch.tensor(
        [
            [c, c, 0.1, 0.1],  # 30 / 300
            [c, c, math.sqrt(0.1 * 0.2), math.sqrt(0.1 * 0.2)],  # sqrt(30 * 60) / 300
            [c, c, 0.1 * r2, 0.1 / r2],
            [c, c, 0.1 / r2, 0.1 * r2],
        ]
    )
    torch.testing.assert_close(priors[:4], first, rtol=0, atol=1e-7)
    # Second cell of level 0 is one step to the right (x changes first).
    torch.testing.assert_close(priors[4, :2], torch.tensor([1.5 / 37.5, c]), rtol=0, atol=1e-7)
    # Last level: one 1x1 cell at the centre, 264 px; ratio 2 gives 264*sqrt2/300 > 1 -> clipped.
    last = torch.tensor(
        [
            [0.5, 0.5, 0.88, 0.88],
            [0.5, 0.5, math.sqrt(0.88 * 1.05), math.sqrt(0.88 * 1.05)],
            [0.5, 0.5, 1.0, 0.88 / r2],
            [0.5, 0.5, 0.88 / r2, 1.0],
        ]
    )
    torch.testing.assert_close(priors[-4:], last, rtol=0, atol=1e-6)


def test_order_is_level_y_x_anchor() -> None:
    priors = make_priors(levels_from(VOC300), (300, 300))
    # Level 1 starts after 38*38*4 priors; cell (y=2, x=5), anchor 3 of 6.
    index = 38 * 38 * 4 + (2 * 19 + 5) * 6 + 3
    f_k = 300 / 16
    assert priors[index, 0].item() == pytest.approx((5 + 0.5) / f_k, abs=1e-7)
    assert priors[index, 1].item() == pytest.approx((2 + 0.5) / f_k, abs=1e-7)
    s = 60 / 300
    assert priors[index, 2].item() == pytest.approx(s / math.sqrt(2), abs=1e-7)


def tv_ssd300_default_boxes() -> torch.Tensor:
    """torchvision's ssd300_vgg16 default boxes, converted from xyxy pixels to normalised cxcywh."""
    generator = DefaultBoxGenerator(
        VOC300["aspect_ratios"], scales=TV_SCALES, steps=VOC300["steps"]
    )
    images = ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)])
    features = [torch.zeros(1, 1, f, f) for f in VOC300["feature_maps"]]
    xyxy = generator(images, features)[0] / 300
    return torch.cat(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]), dim=1)


def test_reproduces_torchvision_default_box_generator() -> None:
    cfg = PriorsConfig(scales=TV_SCALES, steps=VOC300["steps"], clip="wh")
    feature_hws = [(f, f) for f in VOC300["feature_maps"]]
    levels = build_level_specs(cfg, (300, 300), feature_hws)
    priors = make_priors(levels, (300, 300), clip=cfg.clip)
    expected = tv_ssd300_default_boxes()
    assert priors.shape == expected.shape == (8732, 4)
    # torchvision computes centres in float32 and goes through xyxy pixels: ~1e-7 differences.
    torch.testing.assert_close(priors, expected, rtol=0, atol=2e-6)


def test_torchvision_and_ssd_pytorch_clipping_differ_on_ssd300() -> None:
    cfg = PriorsConfig(scales=TV_SCALES, steps=VOC300["steps"])
    levels = build_level_specs(cfg, (300, 300), [(f, f) for f in VOC300["feature_maps"]])
    clipped = make_priors(levels, (300, 300), clip=True)
    expected = tv_ssd300_default_boxes()
    # The 10x10 level (step 32) puts its last centres at 9.5 / 9.375 > 1: only ssd.pytorch's
    # clipping (True) clamps them; every other value agrees.
    differs = (clipped - expected).abs() > 2e-6
    start = 38 * 38 * 4 + 19 * 19 * 6
    level2 = clipped[start : start + 600].view(10, 10, 6, 4)
    assert torch.all(level2[:, 9, :, 0] == 1.0) and torch.all(level2[9, :, :, 1] == 1.0)
    assert int(differs.sum()) == 2 * 10 * 6  # last column (cx) and last row (cy), 6 priors each
    assert expected[start : start + 600].max().item() == pytest.approx(9.5 / 9.375, abs=1e-6)


def test_clip_modes() -> None:
    level = LevelSpec((1, 1), (300.0, 300.0), 264.0, 315.0, (2.0,))
    raw = make_priors([level], (300, 300), clip=False)
    assert raw[2, 2].item() == pytest.approx(0.88 * math.sqrt(2), rel=1e-6)  # > 1 unclipped
    assert make_priors([level], (300, 300), clip="wh")[2, 2].item() == 1.0
    # A centre outside the image: True clamps it, "wh" keeps it (torchvision's behaviour).
    outside = LevelSpec((1, 2), (300.0, 400.0), 30.0, None, ())
    assert make_priors([outside], (300, 300), clip=True)[1, 0].item() == 1.0
    assert make_priors([outside], (300, 300), clip="wh")[1, 0].item() == pytest.approx(1.5 * 4 / 3)
    with pytest.raises(ValueError):
        make_priors([level], (300, 300), clip="xy")


def test_non_square_input() -> None:
    # H=300, W=600, step 8 on both axes: x centres use W, y centres use H.
    level = LevelSpec((38, 75), (8.0, 8.0), 30.0, 60.0, (2.0,))
    priors = make_priors([level], (300, 600)).view(38, 75, 4, 4)
    assert priors[0, 1, 0, 0].item() == pytest.approx(1.5 / (600 / 8), abs=1e-7)
    assert priors[1, 0, 0, 1].item() == pytest.approx(1.5 / (300 / 8), abs=1e-7)
    # Priors stay square in pixels: w * W == h * H for the ratio-1 priors.
    w_px, h_px = priors[0, 0, 0, 2].item() * 600, priors[0, 0, 0, 3].item() * 300
    assert w_px == pytest.approx(30.0) and h_px == pytest.approx(30.0)
    w_px, h_px = priors[0, 0, 2, 2].item() * 600, priors[0, 0, 2, 3].item() * 300
    assert w_px == pytest.approx(30 * math.sqrt(2)) and h_px == pytest.approx(30 / math.sqrt(2))


def test_build_level_specs_step_none_is_per_axis() -> None:
    cfg = PriorsConfig(scales=[0.2, 0.5, 0.9], aspect_ratios=[[2], [2, 3]])
    levels = build_level_specs(cfg, (320, 640), [(10, 20), (5, 9)])
    assert levels[0].step_hw == (32.0, 32.0)
    assert levels[1].step_hw == pytest.approx((64.0, 640 / 9))
    # Scales are fractions of min(H, W) = 320.
    assert levels[0].min_size == pytest.approx(64.0) and levels[0].max_size == pytest.approx(160)
    priors = make_priors(levels, (320, 640))
    assert priors.shape[0] == 10 * 20 * 4 + 5 * 9 * 6
    # Last cell of level 1: x centre (8 + 0.5) / 9.
    assert priors[-1, 0].item() == pytest.approx(8.5 / 9, abs=1e-6)


def test_build_level_specs_pixel_sizes_match_voc300() -> None:
    cfg = PriorsConfig(
        min_sizes=VOC300["min_sizes"],
        max_sizes=VOC300["max_sizes"],
        steps=VOC300["steps"],
        aspect_ratios=VOC300["aspect_ratios"],
    )
    feature_hws = [(f, f) for f in VOC300["feature_maps"]]
    priors = make_priors(build_level_specs(cfg, (300, 300), feature_hws), (300, 300))
    assert torch.equal(priors, reference_prior_box(VOC300))


def test_build_level_specs_level_count_mismatch() -> None:
    cfg = PriorsConfig(min_sizes=VOC300["min_sizes"], max_sizes=VOC300["max_sizes"])
    with pytest.raises(RecipeError):
        build_level_specs(cfg, (300, 300), [(38, 38), (19, 19)])


def test_describe_rows() -> None:
    levels = levels_from(VOC300)
    rows = describe(levels, (300, 300))
    assert [r["num_priors"] for r in rows] == [5776, 2166, 600, 150, 36, 4]
    assert sum(r["num_priors"] for r in rows) == 8732
    assert [r["per_cell"] for r in rows] == [4, 6, 6, 6, 4, 4]
    assert rows[1]["first_index"] == 5776
    assert rows[0]["sizes_wh"][0] == pytest.approx((30.0, 30.0))
    assert rows[0]["sizes_wh"][1] == pytest.approx((math.sqrt(1800), math.sqrt(1800)))


def test_level_without_max_size() -> None:
    level = LevelSpec((2, 2), (150.0, 150.0), 60.0, None, (2.0,))
    priors = make_priors([level], (300, 300))
    assert priors.shape == (2 * 2 * 3, 4)
    assert priors[1, 2].item() == pytest.approx(0.2 * math.sqrt(2), rel=1e-6)
