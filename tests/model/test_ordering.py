"""The head's flattening order equals the prior order (level, y, x, anchor) on a toy model.

A two-level plug-in backbone emits maps whose two channels hold each cell's row and column.
The heads' weights copy them (centre tap only), and biases add the anchor index and level, so
each output row says which (level, y, x, anchor) produced it. Those must match the priors at the
same row: centre ((x + 0.5) / W_l, (y + 0.5) / H_l) and the anchor's size, worked out by hand.
"""

from __future__ import annotations

import math
import textwrap

import pytest
import torch

from ssdcli.config import Recipe
from ssdcli.model import build_detector

SIZE_HW = (32, 48)  # non-square, so a swapped H/W shows up

TOY_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Coordinates(nn.Module):
        '''Two maps (stride 8 and 16) whose channels are each cell's row and column.'''

        def forward(self, images):
            maps = []
            for stride in (8, 16):
                h, w = images.shape[2] // stride, images.shape[3] // stride
                rows = torch.arange(h, dtype=images.dtype).view(h, 1).expand(h, w)
                cols = torch.arange(w, dtype=images.dtype).view(1, w).expand(h, w)
                coords = torch.stack([rows, cols]).unsqueeze(0)
                maps.append(coords.expand(images.shape[0], -1, -1, -1))
            return maps


    def coordinates(options):
        return Coordinates()
    """
)

# Hand-worked prior sizes (w, h) normalised by (W, H) = (48, 32), per level, in anchor order:
# s_k, sqrt(s_k * s_k+1), then (s sqrt r, s / sqrt r), (s / sqrt r, s sqrt r) per ratio.
LEVEL0 = [  # min 8 px, max 16 px, ratios [2]
    (8 / 48, 8 / 32),
    (math.sqrt(8 * 16) / 48, math.sqrt(8 * 16) / 32),
    (8 * math.sqrt(2) / 48, 8 / math.sqrt(2) / 32),
    (8 / math.sqrt(2) / 48, 8 * math.sqrt(2) / 32),
]
LEVEL1 = [  # min 16 px, max 24 px, ratios [2, 3]
    (16 / 48, 16 / 32),
    (math.sqrt(16 * 24) / 48, math.sqrt(16 * 24) / 32),
    (16 * math.sqrt(2) / 48, 16 / math.sqrt(2) / 32),
    (16 / math.sqrt(2) / 48, 16 * math.sqrt(2) / 32),
    (16 * math.sqrt(3) / 48, 16 / math.sqrt(3) / 32),
    (16 / math.sqrt(3) / 48, 16 * math.sqrt(3) / 32),
]


@pytest.fixture()
def toy_detector(tmp_path, monkeypatch):
    (tmp_path / "toy_coordinates.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = Recipe.model_validate(
        {
            "model": {"backbone": "toy_coordinates:coordinates", "size_hw": list(SIZE_HW)},
            "priors": {
                "steps": None,
                "scales": None,
                "min_sizes": [8, 16],
                "max_sizes": [16, 24],
                "aspect_ratios": [[2], [2, 3]],
                "clip": False,
            },
        }
    )
    return build_detector(recipe, num_classes=2)


def _encode_positions(detector) -> None:
    """Box head outputs (row, col, anchor, level); class logit k of anchor a is 10 a + k."""
    model = detector.model
    num_k = model.num_classes + 1
    with torch.no_grad():
        for level, (box_conv, cls_conv) in enumerate(
            zip(model.box_head, model.cls_head, strict=True)
        ):
            box_conv.weight.zero_()
            cls_conv.weight.zero_()
            for a in range(model.anchors_per_level[level]):
                box_conv.weight[4 * a + 0, 0, 1, 1] = 1.0  # row
                box_conv.weight[4 * a + 1, 1, 1, 1] = 1.0  # column
                box_conv.bias[4 * a + 2] = a
                box_conv.bias[4 * a + 3] = level
                for k in range(num_k):
                    cls_conv.bias[a * num_k + k] = 10 * a + k


def test_head_order_equals_prior_order(toy_detector) -> None:
    model = toy_detector.model
    assert model.feature_hws == [(4, 6), (2, 3)]
    assert model.anchors_per_level == [4, 6]
    _encode_positions(toy_detector)
    with torch.no_grad():
        cls_logits_BPK, box_deltas_BP4 = model.eval()(torch.zeros(2, 3, *SIZE_HW))
    priors_P4 = toy_detector.priors_P4.double()
    assert box_deltas_BP4.shape == (2, 4 * 6 * 4 + 2 * 3 * 6, 4) == (2, priors_P4.shape[0], 4)
    assert torch.equal(box_deltas_BP4[0], box_deltas_BP4[1])

    rows, cols, anchors, levels = box_deltas_BP4[0].double().round().long().unbind(1)
    # Outputs come level by level, row-major, anchors innermost.
    expected_order = [
        (level, y, x, a)
        for level, ((h, w), count) in enumerate(zip(model.feature_hws, (4, 6), strict=True))
        for y in range(h)
        for x in range(w)
        for a in range(count)
    ]
    assert (
        list(zip(levels.tolist(), rows.tolist(), cols.tolist(), anchors.tolist(), strict=True))
        == expected_order
    )

    feature_hws = torch.tensor(model.feature_hws, dtype=torch.float64)[levels]
    torch.testing.assert_close(priors_P4[:, 0], (cols + 0.5) / feature_hws[:, 1])
    torch.testing.assert_close(priors_P4[:, 1], (rows + 0.5) / feature_hws[:, 0])
    sizes = [LEVEL0, LEVEL1]
    expected_wh = torch.tensor(
        [sizes[lv][a] for lv, a in zip(levels.tolist(), anchors.tolist(), strict=True)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(priors_P4[:, 2:], expected_wh, rtol=1e-6, atol=1e-6)

    k = torch.arange(model.num_classes + 1)
    expected_cls = (10 * anchors.view(-1, 1) + k.view(1, -1)).float()
    assert torch.equal(cls_logits_BPK[0], expected_cls)
