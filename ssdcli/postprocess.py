"""Raw network outputs -> detections in pixels of each original image.

Steps (SSD section 3, "Inference"), for each image and foreground class: softmax over classes,
keep scores strictly above ``score_threshold``, keep the ``pre_nms_top_k`` best, greedy
non-maximum suppression (as ``torchvision.ops.nms``), then keep the ``max_detections`` best of
the image over all classes, boxes scaled to pixels of the original image and clamped to it.
Equal scores are ordered by class, then prior index (NMS visits equal scores by prior index).

That result, exactly, with far less work:

* a class can score above the threshold only where ``logit_c - logit_0 > log(threshold)``; a
  cheap test on that finds the rows worth a softmax;
* greedy NMS decides a candidate from the better candidates of its own class only, so it runs on
  the best candidates of each image (at least ``max_detections``; more only when too few
  survive), for all (image, class) groups at once (:func:`ssdcli.nms.greedy_nms_in_order`),
  and only their boxes are decoded.

It runs on the host, whatever the device of the inputs. The few hundred candidates per image
are handled with NumPy: its per-call cost is a fraction of torch's and it stays on one thread
(on a busy machine, a thread team for a small operation can cost a scheduler time slice). The
arithmetic is the same IEEE float32; softmax and box decoding are torch's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ssdcli.boxes import BoxCoder, frame_hw
from ssdcli.config import PostprocessConfig
from ssdcli.nms import greedy_nms_in_order

__all__ = ["Detections", "PostProcessor", "PostprocessOverrides", "PostprocessSettings"]

# Slack (natural log) of the logit-difference test: it only widens the superset of rows, far
# beyond the float32 rounding of the softmax and of the test itself.
_LOGIT_SLACK = 1e-2
# Rows of logits scanned at a time by that test (about the size of a core's L2 cache).
_BLOCK_BYTES = 1 << 19


@dataclass(frozen=True)
class PostprocessSettings:
    """How raw outputs become detections; the recipe's ``postprocess`` section, typed.

    No defaults of its own: :meth:`from_config` takes them from
    :class:`~ssdcli.config.PostprocessConfig`, the one place they are written.

    Attributes:
        score_threshold: keep class scores strictly above this.
        nms_iou: suppress boxes of the same class and image whose IoU is above this.
        max_detections: at most this many detections per image (best scores).
        pre_nms_top_k: at most this many candidates per class per image enter NMS.
    """

    score_threshold: float
    nms_iou: float
    max_detections: int
    pre_nms_top_k: int

    @classmethod
    def from_config(cls, cfg: PostprocessConfig) -> PostprocessSettings:
        """From the recipe's ``postprocess`` section."""
        return cls(
            float(cfg.score_threshold),
            float(cfg.nms_iou),
            int(cfg.max_detections),
            int(cfg.pre_nms_top_k),
        )

    @classmethod
    def defaults(cls) -> PostprocessSettings:
        """The recipe defaults (``PostprocessConfig()``): the SSD paper's test settings."""
        return cls.from_config(PostprocessConfig())

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | PostprocessConfig) -> PostprocessSettings:
        """From a recipe section or the dict stored in an exported file; a missing key takes
        the recipe default."""
        if not isinstance(values, Mapping):
            return cls.from_config(values)
        default = PostprocessConfig()
        given = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        return cls.from_config(default.model_copy(update=given))

    def to_dict(self) -> dict[str, float | int]:
        """The JSON form stored in exported files (the recipe's key names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class PostprocessOverrides:
    """Settings asked for at run time (``ssd detect --threshold ...``); None = the model's own."""

    score_threshold: float | None = None
    nms_iou: float | None = None
    max_detections: int | None = None

    def apply(self, settings: PostprocessSettings) -> PostprocessSettings:
        """``settings`` with every value given here in its place."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(settings, **{k: v for k, v in given.items() if v is not None})


@dataclass
class Detections:
    """Detections of one image, sorted by decreasing score.

    Attributes:
        boxes_D4 (Tensor[D, 4], float32): xyxy, pixels of the original image, clamped to it.
        scores_D (Tensor[D], float32): class probabilities.
        labels_D (Tensor[D], int64): foreground class index 0..C-1.
    """

    boxes_D4: Tensor
    scores_D: Tensor
    labels_D: Tensor

    # Short read-only aliases.
    @property
    def boxes(self) -> Tensor:
        return self.boxes_D4

    @property
    def scores(self) -> Tensor:
        return self.scores_D

    @property
    def labels(self) -> Tensor:
        return self.labels_D

    def __len__(self) -> int:
        return int(self.scores_D.shape[0])


def _empty(device: torch.device) -> Detections:
    return Detections(
        boxes_D4=torch.zeros(0, 4, device=device),
        scores_D=torch.zeros(0, device=device),
        labels_D=torch.zeros(0, dtype=torch.long, device=device),
    )


class PostProcessor:
    """Decode + score filter + per-class NMS + top-k.

    Args:
        priors_P4 (Tensor[P, 4], float): normalised cxcywh priors of the model.
        coder: the box coder the model was trained with.
        settings: threshold, NMS IoU, per-image and per-class limits.
        resize, input_hw: how images became the network input (``model.resize``, and the input
            size it needs for ``"letterbox"``), to map boxes back to each original image.
    """

    def __init__(
        self,
        priors_P4: Tensor,
        coder: BoxCoder,
        settings: PostprocessSettings | None = None,
        resize: str = "stretch",
        input_hw: tuple[int, int] | None = None,
    ) -> None:
        self.priors_P4 = priors_P4
        self.coder = coder
        self.settings = settings or PostprocessSettings.defaults()
        if resize == "letterbox" and input_hw is None:
            raise ValueError("letterbox post-processing needs the network input size")
        self.resize, self.input_hw = resize, input_hw

    def __call__(
        self,
        cls_logits_BPK: Tensor,
        box_deltas_BP4: Tensor,
        image_sizes_hw: Sequence[tuple[int, int]],
        max_detections: int | None = None,
    ) -> list[Detections]:
        """Detections per image.

        Args:
            cls_logits_BPK (Tensor[B, P, K], float): class logits, index 0 = background.
            box_deltas_BP4 (Tensor[B, P, 4], float): predicted deltas.
            image_sizes_hw: ``(H, W)`` of each original image (B entries), the frame of the output.
            max_detections: this call's per-image limit instead of the settings' one (a predictor
                that filters classes afterwards asks for all survivors).

        Returns:
            B :class:`Detections` on the device of the inputs, each sorted by decreasing score
            (possibly empty).
        """
        batch, num_priors, num_k = cls_logits_BPK.shape
        if len(image_sizes_hw) != batch:
            raise ValueError(f"{len(image_sizes_hw)} image sizes for a batch of {batch} images")
        device = cls_logits_BPK.device
        settings = self.settings
        if max_detections is not None:
            settings = replace(settings, max_detections=int(max_detections))
        if min(num_k - 1, num_priors, settings.pre_nms_top_k, settings.max_detections) <= 0:
            return [_empty(device) for _ in range(batch)]
        logits_XK = cls_logits_BPK.detach().to("cpu", torch.float32).reshape(-1, num_k).numpy()
        found = _candidates(logits_XK, settings.score_threshold)
        if found is None:
            return [_empty(device) for _ in range(batch)]
        flat_N, class_N, score_N = found
        image_N = flat_N // num_priors
        decode = _box_decoder(self.coder, self.priors_P4, box_deltas_BP4)
        best, boxes_D4 = _best_survivors(
            (image_N, class_N, score_N), lambda sel: decode(flat_N[sel]), batch, num_k - 1, settings
        )
        sizes_B2 = np.asarray(image_sizes_hw, dtype=np.float32).reshape(batch, 2)
        frames_B2 = sizes_B2
        if self.resize == "letterbox":
            frames = [frame_hw(hw, self.input_hw, "letterbox") for hw in image_sizes_hw]
            frames_B2 = np.asarray(frames, dtype=np.float32).reshape(batch, 2)
        found = image_N[best], class_N[best], score_N[best]
        return _split(*found, boxes_D4, frames_B2, sizes_B2, device)


def _best_survivors(
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
    boxes_of: Callable[[np.ndarray], np.ndarray],
    batch: int,
    num_classes: int,
    settings: PostprocessSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``max_detections`` NMS survivors of each image, image-major, by decreasing
    score, class, prior.

    NMS runs on the best candidates of each image (and any tied with the last of them): as
    many as give ``max_detections`` survivors, or all of them.

    Args:
        candidates: ``image_N``, ``class_N``, ``score_N``, in (image, prior, class) order.
        boxes_of: candidate indices -> their boxes (ndarray[S, 4], float32).

    Returns:
        Indices of the survivors among the candidates, and their boxes.
    """
    image_N, class_N, score_N = candidates
    group_N = image_N * num_classes + class_N
    count_B = np.bincount(image_N, minlength=batch)
    lower_BN = _negated_scores_per_image(score_N, image_N, count_B)
    # A few more than max_detections first: NMS seldom removes many of the best.
    limit_B = np.full(batch, settings.max_detections + settings.max_detections // 8 + 1)
    while True:
        limit_B = np.minimum(limit_B, lower_BN.shape[1])
        kth = np.unique(limit_B - 1)
        least_B = -np.partition(lower_BN, kth, axis=1)[np.arange(batch), limit_B - 1]
        sel = np.flatnonzero(score_N >= least_B[image_N])
        # By image, decreasing score, class; lexsort is stable: prior order last.
        sel = sel[np.lexsort((class_N[sel], -score_N[sel], image_N[sel]))]
        boxes_S4 = boxes_of(sel)
        kept = greedy_nms_in_order(boxes_S4, group_N[sel], settings.nms_iou, settings.pre_nms_top_k)
        kept = np.flatnonzero(kept)
        survivors_B = np.bincount(image_N[sel[kept]], minlength=batch)
        more_B = survivors_B < settings.max_detections
        if more_B.any():
            more_B &= np.bincount(image_N[sel], minlength=batch) < count_B
        if not more_B.any():
            break
        limit_B = np.where(more_B, limit_B * 4, limit_B)
    # Survivors are image-major by decreasing score: the best of each image come first.
    image_K = image_N[sel[kept]]
    rank_K = np.arange(kept.size) - (np.cumsum(survivors_B) - survivors_B)[image_K]
    kept = kept[rank_K < settings.max_detections]
    return sel[kept], boxes_S4[kept]


def _negated_scores_per_image(
    score_N: np.ndarray, image_N: np.ndarray, count_B: np.ndarray
) -> np.ndarray:
    """(B, N_max) float32: the negated scores of each image (``image_N`` sorted), padded with
    +1, so that ascending order puts the best first."""
    if count_B.size == 1:
        return -score_N[None]
    column_N = np.arange(image_N.size) - (np.cumsum(count_B) - count_B)[image_N]
    lower_BN = np.ones((count_B.size, count_B.max()), dtype=np.float32)
    lower_BN[image_N, column_N] = -score_N
    return lower_BN


def _candidates(
    logits_XK: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Every (row, class) whose softmax score is above ``threshold``, in (row, class) order;
    None when there are none.

    Args:
        logits_XK (ndarray[X, K], float32): rows ``image * P + prior`` of class logits.

    Returns:
        ``row_N`` and ``class_N`` (0..C-1, foreground), int64; ``score_N``, float32.
    """
    rows = _rows_worth_a_softmax(logits_XK, threshold)
    # The rows of the full softmax, bit for bit.
    probs_RK = torch.from_numpy(logits_XK[rows]).softmax(dim=-1).numpy()
    pair_N = np.flatnonzero(probs_RK[:, 1:] > np.float32(threshold))  # as torch compares
    if pair_N.size == 0:
        return None
    row_N, class_N = np.divmod(pair_N, logits_XK.shape[1] - 1)
    return rows[row_N], class_N, probs_RK[row_N, class_N + 1]


def _box_decoder(
    coder: BoxCoder, priors_P4: Tensor, box_deltas_BP4: Tensor
) -> Callable[[np.ndarray], np.ndarray]:
    """A function: rows ``image * P + prior`` (ndarray[S], int64) -> their decoded boxes
    (ndarray[S, 4], float32, normalised xyxy clamped to [0, 1])."""
    num_priors = box_deltas_BP4.shape[1]
    deltas_X4 = box_deltas_BP4.detach().to("cpu", torch.float32).reshape(-1, 4).numpy()
    priors_P4 = priors_P4.detach().to("cpu", torch.float32).numpy()

    def decode(rows_S: np.ndarray) -> np.ndarray:
        deltas_S4 = torch.from_numpy(deltas_X4[rows_S])
        boxes_S4 = coder.decode(deltas_S4, torch.from_numpy(priors_P4[rows_S % num_priors]))
        return boxes_S4.clamp_(0.0, 1.0).numpy()

    return decode


def _rows_worth_a_softmax(logits_XK: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the rows where some class may score above ``threshold`` (a superset).

    ``score_c <= exp(logit_c - logit_0)``, so a class can pass only where
    ``max_c logit_c - logit_0 > log(threshold)``; the test leaves a slack far beyond float32
    rounding. Rows with a NaN drop out (their softmax is NaN).

    Args:
        logits_XK (ndarray[X, K], float32): rows of class logits, index 0 = background.
    """
    if threshold >= 1.0:
        return np.zeros(0, dtype=np.int64)  # softmax scores never exceed 1
    if threshold <= 1e-30:
        return np.arange(logits_XK.shape[0])
    best_X = np.empty(logits_XK.shape[0], dtype=np.float32)
    # Class by class along blocks of rows that stay in cache: NumPy is slow across short rows.
    step = max(1, _BLOCK_BYTES // (4 * logits_XK.shape[1]))
    for start in range(0, logits_XK.shape[0], step):
        block_XK, best = logits_XK[start : start + step], best_X[start : start + step]
        np.copyto(best, block_XK[:, 1])
        for k in range(2, logits_XK.shape[1]):
            np.maximum(best, block_XK[:, k], out=best)
    best_X -= logits_XK[:, 0]
    return np.flatnonzero(best_X > np.float32(math.log(threshold) - _LOGIT_SLACK))


def _split(
    image_D: np.ndarray,
    class_D: np.ndarray,
    score_D: np.ndarray,
    boxes_D4: np.ndarray,
    frames_B2: np.ndarray,
    sizes_B2: np.ndarray,
    device: torch.device,
) -> list[Detections]:
    """Normalised boxes -> pixels of each original image (clamped), one Detections per image.

    ``frames_B2``: ``(H, W)`` in original pixels that the network input spans (the image size
    when stretched); ``sizes_B2``: the images' own ``(H, W)``, to clamp to.
    """
    scale_D4 = frames_B2[:, [1, 0, 1, 0]][image_D]
    limit_D4 = sizes_B2[:, [1, 0, 1, 0]][image_D]
    pixels_D4 = np.minimum(np.maximum(boxes_D4 * scale_D4, np.float32(0.0)), limit_D4)
    counts = np.bincount(image_D, minlength=sizes_B2.shape[0]).tolist()
    columns = [torch.from_numpy(a).to(device).split(counts) for a in (pixels_D4, score_D, class_D)]
    # The only per-image loop: one object per image.
    return [Detections(b, s, c) for b, s, c in zip(*columns, strict=True)]
