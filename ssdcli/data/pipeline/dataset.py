"""A PyTorch Dataset over one split of a :class:`Manifest`.

Keys: ``dataset[(epoch, position)]`` or ``dataset[epoch * len(dataset) + position]`` (what
:class:`~ssdcli.data.pipeline.loader.EpochSampler` yields); a plain ``position`` means epoch 0. The
augmentation generator is seeded from ``(seed, epoch, position)`` only, so a sample does not
depend on which worker (or how many workers) produced it, and the epoch reaches persistent
workers through the key, without shared state.

Training: SSD augmentation; ``difficult`` objects dropped unless ``include_difficult``; COCO
``iscrowd`` objects always dropped. A corrupt image is replaced by another image chosen from the
same seed (counted in ``target["skipped"]`` and logged), never a crash.
Evaluation: :func:`preprocess_image` only; every object kept, with its flags.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from ssdcli.data.images import read_image_rgb
from ssdcli.data.pipeline.transforms import (
    AugmentSettings,
    augment_ssd,
    normalize_image,
    preprocess_image,
)
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError

if TYPE_CHECKING:
    from ssdcli.config import InputConfig

log = logging.getLogger(__name__)
MAX_REPLACEMENTS = 10


class DetectionDataset(Dataset):
    """Samples of one split, as network inputs and normalised targets.

    Args:
        manifest: the data set.
        split: split name (``manifest.splits`` key).
        size_hw: network input size ``(H, W)``.
        input_cfg: the recipe's ``model.input`` (``mean``, ``std`` per channel in 0-255 units in
            ``channel_order``, which is ``"rgb"`` or ``"bgr"``), or any object with them.
        train: augment (True) or only resize + normalise (False).
        augment: which augmentations run in training: :class:`AugmentSettings` or the recipe's
            ``data.augment`` (None: all, paper defaults).
        include_difficult: keep VOC ``difficult`` objects in training.
        seed: augmentation seed.

    ``dataset[key]`` returns ``(image_CHW, target)``: ``image_CHW`` float32 Tensor ``[3, H, W]``;
    ``target`` a dict with ``boxes_xyxy`` (float32 ``[G, 4]``, xyxy normalised to ``[0, 1]`` of
    the network input, which is also normalised xyxy of the original image in evaluation),
    ``labels`` (int64 ``[G]``, ``0..C-1``), ``difficult`` and ``iscrowd`` (bool ``[G]``),
    ``index`` (position in :attr:`records` of the image used: the key's position unless a corrupt
    image was replaced), ``size_hw`` (its original size) and ``skipped`` (corrupt images replaced
    to make this sample).
    """

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        size_hw: Sequence[int],
        input_cfg: InputConfig,
        *,
        train: bool = False,
        augment: AugmentSettings | None = None,
        include_difficult: bool = False,
        seed: int = 0,
        resize: str = "stretch",
    ) -> None:
        self.records: list[Record] = [manifest.records[i] for i in manifest.split_indices(split)]
        if not self.records:
            raise DataError(
                f"split {split!r} of {manifest.source} has no usable images; fix: "
                "check `ssd prepare-data` problems or choose another split"
            )
        self.class_names = manifest.class_names
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.resize = resize  # "stretch" or "letterbox", as the model's recipe says
        self.mean = tuple(float(v) for v in input_cfg.mean)
        self.std = tuple(float(v) for v in input_cfg.std)
        self.channel_order = channel_order = input_cfg.channel_order
        self.train = train
        if augment is None or isinstance(augment, AugmentSettings):
            self.augment = augment or AugmentSettings.defaults()
        else:
            self.augment = AugmentSettings.from_config(augment)
        self.include_difficult = include_difficult
        self.seed = seed
        rgb_mean = self.mean if channel_order == "rgb" else self.mean[::-1]
        self.fill_rgb = tuple(int(round(v)) for v in rgb_mean)
        self.skipped = 0  # corrupt images met by this process (workers count their own)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict]:
        if isinstance(key, tuple):
            epoch, position = int(key[0]), int(key[1])
        else:
            epoch, position = divmod(int(key), len(self.records))
        if not self.train:
            return self._eval_sample(position)
        rng = np.random.default_rng([self.seed, epoch, position])
        index, image, skipped = self._read_or_replace(position, rng)
        record = self.records[index]
        keep = _train_objects(record, self.include_difficult)
        boxes = _scaled_boxes(record, image.shape[:2])[keep]
        out = augment_ssd(
            image, boxes, self.size_hw, rng, self.augment, self.fill_rgb, self.resize
        )
        height, width = self.size_hw
        target = {
            "boxes_xyxy": torch.from_numpy(out.boxes_xyxy / np.float32([width, height] * 2)),
            "labels": torch.from_numpy(record.labels[keep][out.keep]),
            "difficult": torch.from_numpy(record.difficult[keep][out.keep]),
            "iscrowd": torch.zeros(len(out.keep), dtype=torch.bool),
            "index": index,
            "size_hw": record.size_hw,
            "skipped": skipped,
        }
        image_chw = normalize_image(out.image, self.mean, self.std, self.channel_order)
        return torch.from_numpy(image_chw), target

    def _read_or_replace(
        self, position: int, rng: np.random.Generator
    ) -> tuple[int, np.ndarray, int]:
        """(index used, its RGB image, corrupt images skipped): a corrupt image is replaced by
        one drawn from ``rng`` (so the replacement is deterministic too) and logged."""
        index, skipped = position, 0
        while True:
            try:
                return index, read_image_rgb(self.records[index].image_path), skipped
            except DataError as error:
                skipped += 1
                self.skipped += 1
                log.warning("skipping a corrupt training image: %s", error)
                if skipped > MAX_REPLACEMENTS:
                    raise DataError(
                        f"{skipped} corrupt images in a row (last: "
                        f"{self.records[index].image_path}); fix the data set"
                    ) from None
                index = int(rng.integers(len(self.records)))

    def _eval_sample(self, position: int) -> tuple[torch.Tensor, dict]:
        record = self.records[position]
        image = read_image_rgb(record.image_path)  # DataError names the file: metrics need all
        height, width = record.size_hw
        target = {
            "boxes_xyxy": torch.from_numpy(record.boxes_xyxy / np.float32([width, height] * 2)),
            "labels": torch.from_numpy(record.labels),
            "difficult": torch.from_numpy(record.difficult),
            "iscrowd": torch.from_numpy(record.iscrowd),
            "index": position,
            "size_hw": record.size_hw,
            "skipped": 0,
        }
        chw = preprocess_image(
            image, self.size_hw, self.mean, self.std, self.channel_order, self.resize
        )
        return torch.from_numpy(chw), target


def _train_objects(record: Record, include_difficult: bool) -> np.ndarray:
    """Indices of the objects trained on (no crowd; no difficult unless asked)."""
    usable = ~record.iscrowd if include_difficult else ~(record.iscrowd | record.difficult)
    return np.flatnonzero(usable)


def _scaled_boxes(record: Record, decoded_hw: tuple[int, int]) -> np.ndarray:
    """Record boxes in the decoded image's pixels (they differ only if the file changed)."""
    if tuple(decoded_hw) == tuple(record.size_hw):
        return record.boxes_xyxy
    gain_y, gain_x = np.divide(decoded_hw, record.size_hw)
    return record.boxes_xyxy * np.float32([gain_x, gain_y, gain_x, gain_y])
