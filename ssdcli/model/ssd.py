"""The SSD network: backbone -> extra layers -> per-level heads -> raw outputs.

Matching, loss, decoding and NMS live outside (``ssdcli.matcher``, ``ssdcli.loss``,
``ssdcli.postprocess``): ``forward`` returns the same pair in train and eval mode.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import Tensor, nn

from ssdcli.errors import ModelError
from ssdcli.model.head import apply_head

PARTS = ("backbone", "extras", "neck", "box_head", "cls_head")
"""Parts that ``model.freeze`` may name."""


class SSD(nn.Module):
    """Single Shot MultiBox Detector network.

    Attributes:
        backbone: ``forward(images_BCHW) -> list[Tensor]``, the backbone's own feature maps.
        extras: blocks applied in turn to the last map, each adding a level.
        neck: ``forward(maps) -> maps`` between the levels and the heads (a feature pyramid,
            :mod:`ssdcli.model.neck`), or None.
        cls_head: one predictor per level, ``A_l * K`` output channels.
        box_head: one predictor per level, ``A_l * 4`` output channels.
        num_classes: foreground classes; K = num_classes + 1 (index 0 is background).
        feature_hws: ``(H, W)`` of each level's map, measured at build time.
        anchors_per_level: priors per cell of each level (``priors.anchors_per_cell``).
        frozen_parts: parts whose parameters are frozen (their batch norms stay in eval mode).
    """

    def __init__(
        self,
        backbone: nn.Module,
        extras: nn.ModuleList,
        cls_head: nn.ModuleList,
        box_head: nn.ModuleList,
        num_classes: int,
        feature_hws: Sequence[tuple[int, int]],
        anchors_per_level: Sequence[int],
        neck: nn.Module | None = None,
    ) -> None:
        super().__init__()
        assert len(cls_head) == len(box_head) == len(feature_hws) == len(anchors_per_level)
        self.backbone = backbone
        self.extras = extras
        self.neck = neck
        self.cls_head = cls_head
        self.box_head = box_head
        self.num_classes = num_classes
        self.feature_hws = [tuple(hw) for hw in feature_hws]
        self.anchors_per_level = list(anchors_per_level)
        self.frozen_parts: tuple[str, ...] = ()

    @property
    def num_priors(self) -> int:
        """P: priors over all levels, ``sum(H_l * W_l * A_l)``."""
        levels = zip(self.feature_hws, self.anchors_per_level, strict=True)
        return sum(h * w * a for (h, w), a in levels)

    def features(self, images_BCHW: Tensor) -> list[Tensor]:
        """All levels' feature maps: the backbone's, then one per extra block, through the neck."""
        maps = list(self.backbone(images_BCHW))
        x = maps[-1]
        for block in self.extras:
            x = block(x)
            maps.append(x)
        return maps if self.neck is None else list(self.neck(maps))

    def predict(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Heads on given feature maps: ``(cls_logits_BPK, box_deltas_BP4)``."""
        cls_logits_BPK = apply_head(self.cls_head, features, self.num_classes + 1)
        box_deltas_BP4 = apply_head(self.box_head, features, 4)
        return cls_logits_BPK, box_deltas_BP4

    def forward(self, images_BCHW: Tensor) -> tuple[Tensor, Tensor]:
        """Raw outputs for a batch of preprocessed images.

        Args:
            images_BCHW (Tensor[B, 3, H, W], float32): normalised images at the build size.

        Returns:
            cls_logits_BPK (Tensor[B, P, K]): class logits, index 0 background.
            box_deltas_BP4 (Tensor[B, P, 4]): encoded offsets to the priors (variances applied
                by ``BoxCoder``), priors in (level, y, x, anchor) order.
        """
        return self.predict(self.features(images_BCHW))

    def train(self, mode: bool = True) -> SSD:
        """Set train/eval mode; batch norms of frozen parts stay in eval mode."""
        super().train(mode)
        for part in self.frozen_parts:
            if getattr(self, part) is None:
                continue
            for module in getattr(self, part).modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def freeze(model: SSD, parts: Sequence[str]) -> None:
    """Freeze the parameters of named parts (``"backbone"``, ``"extras"``, ``"neck"``,
    ``"box_head"``, ``"cls_head"``): no gradients, and their batch-norm statistics stop updating.

    Raises:
        ModelError: an unknown part name (with a close match when there is one).
    """
    for part in parts:
        if part not in PARTS:
            close = difflib.get_close_matches(part, PARTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ModelError(
                f"model.freeze: unknown part {part!r}{hint} (parts: {', '.join(PARTS)})"
            )
    for part in parts:
        if getattr(model, part) is None:  # no neck
            continue
        for parameter in getattr(model, part).parameters():
            parameter.requires_grad_(False)
    model.frozen_parts = tuple(dict.fromkeys((*model.frozen_parts, *parts)))
    model.train(model.training)
