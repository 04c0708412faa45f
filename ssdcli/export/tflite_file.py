"""The LiteRT (TFLite) export, through litert-torch (PyTorch -> TFLite, no TensorFlow needed).

The raw form only: ``images [1, 3, H, W] float32 -> cls_logits [1, P, K], box_deltas [1, P, 4],
priors [P, 4]``; decoding and NMS run on the host (the LiteRT predictor), with the toolkit's
post-processing. The batch is fixed at 1 (the usual shape of on-device detectors). The model
description is written as JSON beside the file (:func:`ssdcli.infer.litert_runtime.metadata_path`).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ssdcli.infer.litert_runtime import metadata_path
from ssdcli.infer.model_info import ModelInfo, metadata_json
from ssdcli.infer.runtimes import require

if TYPE_CHECKING:
    from ssdcli.checkpoint.file import LoadedDetector


class RawNetwork(nn.Module):
    """``images_BCHW -> (cls_logits_BPK, box_deltas_BP4, priors_P4)``; the priors a constant."""

    def __init__(self, model: nn.Module, priors_P4: Tensor) -> None:
        super().__init__()
        self.net = model
        self.register_buffer("priors_P4", priors_P4.detach().cpu().float().clone())

    def forward(self, images_BCHW: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cls_logits_BPK, box_deltas_BP4 = self.net(images_BCHW)
        return cls_logits_BPK, box_deltas_BP4, self.priors_P4


def write_tflite(loaded: LoadedDetector, info: ModelInfo, path: Path, dynamic_batch: bool) -> None:
    """Convert ``loaded``'s network to ``path`` and write its description beside it.

    ``dynamic_batch`` is not available: the file takes one image per call (the caller says so).
    """
    litert_torch = require("litert_torch", "tflite")
    module = RawNetwork(loaded.detector.model, loaded.detector.priors_P4).eval()
    example = (torch.zeros(1, 3, *info.size_hw),)
    # The converter prints its progress on stdout, where the command's own output goes.
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        edge = litert_torch.convert(module, example)
        edge.export(str(path))
    metadata_path(path).write_text(metadata_json(info), encoding="utf-8")
