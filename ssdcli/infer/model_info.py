"""The description of a model that every predictor needs, and its JSON form inside exported files.

``ssd export`` stores :func:`metadata_json` in the ONNX ``metadata_props`` (key
:data:`METADATA_KEY`) and as the TorchScript extra file ``ssdcli.json``; the predictors for those
files read it back with :func:`info_from_metadata`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ssdcli.boxes import DEFAULT_MAX_LOG_SCALE, BoxCoder
from ssdcli.errors import CheckpointError
from ssdcli.postprocess import PostprocessSettings

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
        resize: ``"stretch"`` or ``"letterbox"``: how an image becomes the network input.
        category_ids: original data-set ids per label (COCO), or None.
        fmt: ``"checkpoint"``, ``"onnx"`` or ``"torchscript"``.
        form: ``"raw"`` (head outputs, post-processed here) or ``"nms"`` (post-processing inside).
        fixed_batch: the only batch size the model accepts, or None for any.
        postprocess: the post-processing settings the model carries; fixed inside ``"nms"``
            models, defaults for ``"raw"`` ones and checkpoints.
        variances, max_log_scale: the box coding the model was trained with (see
            :class:`~ssdcli.boxes.BoxCoder`).
        extra: descriptive metadata (version, priors description, opset, int8); nothing that a
            predictor needs to compute detections is read from it.
    """

    class_names: list[str]
    size_hw: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "rgb"
    resize: str = "stretch"
    category_ids: list[int] | None = None
    fmt: str = "checkpoint"
    form: str = "raw"
    fixed_batch: int | None = None
    postprocess: PostprocessSettings = field(default_factory=PostprocessSettings.defaults)
    variances: tuple[float, float] = (0.1, 0.2)
    max_log_scale: float = DEFAULT_MAX_LOG_SCALE
    extra: dict[str, Any] = field(default_factory=dict)

    def box_coder(self) -> BoxCoder:
        """The box coder that decodes this model's deltas."""
        return BoxCoder(self.variances, self.max_log_scale)


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
            "resize": info.resize,
            "form": info.form,
            "fixed_batch": info.fixed_batch,
            "postprocess": info.postprocess.to_dict(),
            "variances": list(info.variances),
            "max_log_scale": info.max_log_scale,
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
        known = {"class_names", "category_ids", "size_hw", "mean", "std", "channel_order", "resize"}
        known |= {"form", "fixed_batch", "postprocess", "variances", "max_log_scale"}
        return ModelInfo(
            class_names=[str(n) for n in meta["class_names"]],
            size_hw=(int(meta["size_hw"][0]), int(meta["size_hw"][1])),
            mean=tuple(float(v) for v in meta["mean"]),
            std=tuple(float(v) for v in meta["std"]),
            channel_order=str(meta.get("channel_order", "rgb")),
            resize=str(meta.get("resize", "stretch")),
            category_ids=meta.get("category_ids"),
            fmt=fmt,
            form=str(meta["form"]),
            fixed_batch=meta.get("fixed_batch"),
            postprocess=PostprocessSettings.from_mapping(meta.get("postprocess") or {}),
            variances=_pair(meta.get("variances", (0.1, 0.2))),
            max_log_scale=float(meta.get("max_log_scale", DEFAULT_MAX_LOG_SCALE)),
            extra={k: v for k, v in meta.items() if k not in known},
        )
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise CheckpointError(
            f"{source} has no ssdcli metadata ({type(error).__name__}: {error}); "
            "use a file written by `ssd export`"
        ) from error


def _pair(values: Any) -> tuple[float, float]:
    return (float(values[0]), float(values[1]))
