"""Modules saved by the TorchScript export, in the same two forms as the ONNX export.

* :class:`RawModule`: ``images -> (cls_logits_BPK, box_deltas_BP4, priors_P4)``;
* :class:`NmsModule`: ``images -> (boxes_BD4, scores_BD, labels_BD, count_B)``, padded to ``D =
  max_detections`` rows per image exactly like the ONNX export (normalised xyxy boxes, labels
  0..C-1 and -1 for padding, ``count`` valid rows first).

The network inside is traced; the post-processing below is scripted (it has data-dependent shapes)
and mirrors :class:`~ssdcli.postprocess.PostProcessor`. Loading a saved file needs ``import
torchvision`` first (it registers the NMS operator).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torchvision
from torch import Tensor, nn

if TYPE_CHECKING:
    from ssdcli.boxes import BoxCoder
    from ssdcli.checkpoint.file import LoadedDetector
    from ssdcli.infer.model_info import ModelInfo
    from ssdcli.postprocess import PostprocessSettings


def postprocess_padded(
    cls_logits_BPK: Tensor,
    box_deltas_BP4: Tensor,
    priors_P4: Tensor,
    variances: tuple[float, float],
    max_log_scale: float,
    score_threshold: float,
    nms_iou: float,
    pre_nms_top_k: int,
    max_detections: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Decode + per-class NMS for a batch, padded per image (scriptable).

    Args:
        cls_logits_BPK (Tensor[B, P, K], float32): class logits, 0 = background.
        box_deltas_BP4 (Tensor[B, P, 4], float32): box deltas.
        priors_P4 (Tensor[P, 4], float32): normalised cxcywh priors.
        variances, max_log_scale: the box coder's settings.
        score_threshold, nms_iou, pre_nms_top_k, max_detections: as in ``PostProcessor``.

    Returns:
        ``boxes_BD4`` (normalised xyxy), ``scores_BD``, ``labels_BD`` (int64, -1 = padding),
        ``count_B`` (int64); rows sorted by decreasing score, valid rows first.
    """
    batch, num_priors, num_k = cls_logits_BPK.shape
    num_classes = num_k - 1
    device = cls_logits_BPK.device
    # BoxCoder.decode, written out so that it compiles with TorchScript.
    centre = priors_P4[:, :2] + box_deltas_BP4[..., :2] * variances[0] * priors_P4[:, 2:]
    log_scale = (box_deltas_BP4[..., 2:] * variances[1]).clamp(max=max_log_scale)
    size = priors_P4[:, 2:] * torch.exp(log_scale)
    boxes_BP4 = torch.cat((centre - size / 2, centre + size / 2), dim=-1).clamp(0.0, 1.0)
    scores_BCP = cls_logits_BPK.softmax(dim=-1)[..., 1:].transpose(1, 2)
    top_k = min(pre_nms_top_k, num_priors)
    top_s, top_i = scores_BCP.topk(top_k, dim=-1)
    where = (top_s > score_threshold).nonzero()
    b_idx, c_idx, j_idx = where[:, 0], where[:, 1], where[:, 2]
    scores = top_s[b_idx, c_idx, j_idx]
    boxes = boxes_BP4[b_idx, top_i[b_idx, c_idx, j_idx]]
    kept = torchvision.ops.batched_nms(boxes, scores, b_idx * num_classes + c_idx, nms_iou)
    # Best max_detections per image: dense (B, N + D) scores, -1 where a row is not this image's.
    mine = b_idx[kept].unsqueeze(0) == torch.arange(batch, device=device).unsqueeze(1)
    dense = torch.where(
        mine, scores[kept].unsqueeze(0), torch.full_like(mine, -1.0, dtype=scores.dtype)
    )
    pad = torch.full((batch, max_detections), -1.0, dtype=scores.dtype, device=device)
    best_s, best_i = torch.cat((dense, pad), dim=1).topk(max_detections, dim=1)
    valid = best_s > -0.5
    box_all = torch.cat((boxes[kept], torch.zeros(max_detections, 4, device=device)), dim=0)
    lab_all = torch.cat(
        (c_idx[kept], torch.zeros(max_detections, dtype=torch.long, device=device)), dim=0
    )
    out_boxes = torch.where(valid.unsqueeze(-1), box_all[best_i], torch.zeros_like(box_all[best_i]))
    out_scores = torch.where(valid, best_s, torch.zeros_like(best_s))
    out_labels = torch.where(valid, lab_all[best_i], torch.full_like(lab_all[best_i], -1))
    return out_boxes, out_scores, out_labels, valid.long().sum(dim=1)


class RawModule(nn.Module):
    """``images_BCHW -> (cls_logits_BPK, box_deltas_BP4, priors_P4)``."""

    def __init__(self, net: nn.Module, priors_P4: Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("priors", priors_P4.float().clone())

    def forward(self, images_BCHW: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cls_logits_BPK, box_deltas_BP4 = self.net(images_BCHW)
        return cls_logits_BPK, box_deltas_BP4, self.priors


class NmsModule(nn.Module):
    """``images_BCHW -> (boxes_BD4, scores_BD, labels_BD, count_B)`` (see module doc)."""

    def __init__(
        self,
        net: nn.Module,
        priors_P4: Tensor,
        coder: BoxCoder,
        settings: PostprocessSettings,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("priors", priors_P4.float().clone())
        # Plain attributes: TorchScript scripts floats and ints, not the settings object.
        self.variances = coder.variances
        self.max_log_scale = coder.max_log_scale
        self.score_threshold = settings.score_threshold
        self.nms_iou = settings.nms_iou
        self.pre_nms_top_k = settings.pre_nms_top_k
        self.max_detections = settings.max_detections

    def forward(self, images_BCHW: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        cls_logits_BPK, box_deltas_BP4 = self.net(images_BCHW)
        return postprocess_padded(
            cls_logits_BPK,
            box_deltas_BP4,
            self.priors,
            self.variances,
            self.max_log_scale,
            self.score_threshold,
            self.nms_iou,
            self.pre_nms_top_k,
            self.max_detections,
        )


def write_torchscript(
    loaded: LoadedDetector, info: ModelInfo, path: Path, dynamic_batch: bool, half: bool
) -> None:
    """Trace the network, script the post-processing, save with the metadata as an extra file."""
    from ssdcli.export.onnx_graph import Float32Boundary
    from ssdcli.infer.model_info import METADATA_KEY, metadata_json

    detector = loaded.detector
    example = torch.zeros(2 if dynamic_batch else 1, 3, *info.size_hw)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer notices
        net = torch.jit.trace(
            Float32Boundary(detector.model, half).eval(), example, check_trace=False
        )
        priors = detector.priors_P4.detach().cpu().float()
        if info.form == "nms":
            module = NmsModule(net, priors, info.box_coder(), info.postprocess)
        else:
            module = RawModule(net, priors)
        scripted = torch.jit.script(module.eval())
        torch.jit.save(
            scripted, str(path), _extra_files={f"{METADATA_KEY}.json": metadata_json(info)}
        )
