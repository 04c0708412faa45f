"""The description of a model that every predictor needs, and its JSON form inside exported files.

``ssd export`` stores :func:`metadata_json` in the ONNX ``metadata_props`` (key
:data:`METADATA_KEY`) and as the TorchScript extra file ``ssdcli.json``; the predictors for those
files read it back with :func:`info_from_metadata`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ssdcli.errors import CheckpointError

METADATA_KEY = "ssdcli"
"""Key of the JSON model description in ONNX ``metadata_props`` and TorchScript extra files."""


@dataclass
class ModelInfo:
    """What a predictor needs to know about its model, whatever the format.

    Attributes:
        class_names: foreground names in label order ``0..C-1``.
        size_hw: network input ``(H, W)``.
        mean, std: per-channel normalisation in 0-255 units, in ``channel_order``.
        channel_order: ``"rgb"`` or ``"bgr"``, what the network expects.
        category_ids: original data-set ids per label (COCO), or None.
        fmt: ``"checkpoint"``, ``"onnx"`` or ``"torchscript"``.
        form: ``"raw"`` (head outputs, post-processed here) or ``"nms"`` (post-processing inside).
        fixed_batch: the only batch size the model accepts, or None for any.
        postprocess: post-processing settings the model carries (``score_threshold``,
            ``nms_iou``, ``max_detections``, ``pre_nms_top_k``); fixed inside ``"nms"`` models.
        extra: anything else from the model's metadata.
    """

    class_names: list[str]
    size_hw: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "rgb"
    category_ids: list[int] | None = None
    fmt: str = "checkpoint"
    form: str = "raw"
    fixed_batch: int | None = None
    postprocess: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def metadata_json(info: ModelInfo) -> str:
    """The model description stored inside exported files (JSON)."""
    return json.dumps(
        {
            "class_names": info.class_names,
            "category_ids": info.category_ids,
            "size_hw": list(info.size_hw),
            "mean": list(info.mean),
            "std": list(info.std),
            "channel_order": info.channel_order,
            "form": info.form,
            "fixed_batch": info.fixed_batch,
            "postprocess": info.postprocess,
            **info.extra,
        }
    )


def info_from_metadata(text: str, fmt: str, source: str) -> ModelInfo:
    """Inverse of :func:`metadata_json`.

    Raises:
        CheckpointError: the metadata is missing or malformed (not written by ``ssd export``).
    """
    try:
        meta = json.loads(text)
        known = {"class_names", "category_ids", "size_hw", "mean", "std", "channel_order"}
        known |= {"form", "fixed_batch", "postprocess"}
        return ModelInfo(
            class_names=[str(n) for n in meta["class_names"]],
            size_hw=(int(meta["size_hw"][0]), int(meta["size_hw"][1])),
            mean=tuple(float(v) for v in meta["mean"]),
            std=tuple(float(v) for v in meta["std"]),
            channel_order=str(meta.get("channel_order", "rgb")),
            category_ids=meta.get("category_ids"),
            fmt=fmt,
            form=str(meta["form"]),
            fixed_batch=meta.get("fixed_batch"),
            postprocess=dict(meta.get("postprocess") or {}),
            extra={k: v for k, v in meta.items() if k not in known},
        )
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise CheckpointError(
            f"{source} has no ssdcli metadata ({type(error).__name__}: {error}); "
            "use a file written by `ssd export`"
        ) from error
