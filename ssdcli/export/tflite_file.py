"""The LiteRT (TFLite) export, through litert-torch (PyTorch -> TFLite, no TensorFlow needed).

The raw form only: ``images [1, 3, H, W] float32 -> cls_logits [1, P, K], box_deltas [1, P, 4],
priors [P, 4]``; decoding and NMS run on the host (the LiteRT predictor), with the toolkit's
post-processing. The batch is fixed at 1 (the usual shape of on-device detectors). The model
description is written as JSON beside the file (:func:`ssdcli.infer.litert_runtime.metadata_path`).
The conversion itself runs in a child process (:mod:`ssdcli.export.tflite_convert`), so that
litert-torch's dependencies (JAX, torchao) never load into the calling process.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ssdcli.errors import ExportError
from ssdcli.export.tflite_convert import ERROR_PREFIX
from ssdcli.infer.litert_runtime import metadata_path
from ssdcli.infer.model_info import ModelInfo, metadata_json

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
    if importlib.util.find_spec("litert_torch") is None:
        raise ExportError(
            "this needs the optional package 'litert_torch', which is not installed; install it "
            "with `pip install 'ssdcli[tflite]'`"
        )
    module = RawNetwork(loaded.detector.model, loaded.detector.priors_P4).eval()
    height, width = info.size_hw
    with tempfile.TemporaryDirectory(prefix="ssd-tflite-") as tmp:
        network = Path(tmp) / "network.pt"
        torch.save(module, network)
        command = [sys.executable, "-m", "ssdcli.export.tflite_convert", str(network), str(path)]
        done = subprocess.run(
            [*command, str(height), str(width)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = next(
            (line.removeprefix(ERROR_PREFIX) for line in reversed(lines) if ERROR_PREFIX in line),
            lines[-1] if lines else f"exit status {done.returncode}",
        )
        raise ExportError(f"tflite conversion failed: {reason}")
    metadata_path(path).write_text(metadata_json(info), encoding="utf-8")
