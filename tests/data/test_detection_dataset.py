"""DetectionDataset, collate and the loader: targets, determinism, corrupt images, padding."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssdcli.data.pipeline.collate import collate
from ssdcli.data.pipeline.dataset import DetectionDataset
from ssdcli.data.pipeline.loader import build_loader
from ssdcli.data.records import Manifest, Record
from ssdcli.errors import DataError

INPUT = SimpleNamespace(mean=(120.0, 110.0, 100.0), std=(60.0, 60.0, 60.0), channel_order="rgb")


@pytest.fixture
def manifest(tmp_path: Path, write_image) -> Manifest:
    records = []
    for k in range(6):
        path = write_image(tmp_path / f"{k}.jpg", 40, 80, seed=k)
        boxes = [[4, 4, 40, 30], [50, 10, 70, 38], [10, 20, 30, 36]][: k % 3 + 1]
        difficult = [False, True, False][: len(boxes)]
        records.append(
            Record.make(str(k), path, (40, 80), boxes, [0, 1, 0][: len(boxes)], difficult)
        )
    return Manifest(["a", "b"], records, {"train": [0, 1, 2, 3, 4, 5], "test": [2, 5]})


def test_eval_sample_is_preprocessed_with_all_objects(manifest: Manifest) -> None:
    dataset = DetectionDataset(manifest, "test", (30, 60), INPUT, train=False)
    image, target = dataset[0]
    assert image.shape == (3, 30, 60) and image.dtype == torch.float32
    np.testing.assert_allclose(
        target["boxes_xyxy"],
        [
            [4 / 80, 4 / 40, 40 / 80, 30 / 40],
            [50 / 80, 10 / 40, 70 / 80, 38 / 40],
            [10 / 80, 20 / 40, 30 / 80, 36 / 40],
        ],
        rtol=1e-6,
    )
    assert target["difficult"].tolist() == [False, True, False]
    assert target["index"] == 0 and target["size_hw"] == (40, 80)


def test_train_samples_drop_difficult_unless_asked(manifest: Manifest) -> None:
    plain = DetectionDataset(
        manifest,
        "train",
        (32, 32),
        INPUT,
        train=True,
        augment=SimpleNamespace(
            photometric=False, zoom_out=False, max_zoom=1.0, iou_crop=False, hflip=False
        ),
    )
    assert plain[2][1]["labels"].tolist() == [0, 0]  # the difficult 'b' is gone
    keep = DetectionDataset(
        manifest,
        "train",
        (32, 32),
        INPUT,
        train=True,
        include_difficult=True,
        augment=plain.augment,
    )
    assert keep[2][1]["labels"].tolist() == [0, 1, 0]
    boxes = keep[2][1]["boxes_xyxy"]
    assert torch.all((boxes >= 0) & (boxes <= 1))


def test_train_sample_depends_only_on_seed_epoch_index(manifest: Manifest) -> None:
    dataset = DetectionDataset(manifest, "train", (32, 32), INPUT, train=True, seed=3)
    a, b = dataset[(2, 4)], dataset[2 * 6 + 4]  # tuple and flat keys are the same sample
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1]["boxes_xyxy"], b[1]["boxes_xyxy"])
    other_epochs = [dataset[(epoch, 4)][0] for epoch in range(4)]
    assert any(not torch.equal(other_epochs[0], x) for x in other_epochs[1:])


def test_corrupt_training_image_is_replaced_and_counted(manifest: Manifest) -> None:
    Path(manifest.records[1].image_path).write_bytes(b"garbage")
    dataset = DetectionDataset(manifest, "train", (32, 32), INPUT, train=True)
    image, target = dataset[1]
    assert target["skipped"] == 1 and dataset.skipped == 1
    assert image.shape == (3, 32, 32)
    evaluation = DetectionDataset(manifest, "train", (32, 32), INPUT, train=False)
    with pytest.raises(DataError, match=r"1\.jpg cannot be decoded"):
        evaluation[1]


def test_collate_pads_with_a_mask(manifest: Manifest) -> None:
    dataset = DetectionDataset(manifest, "train", (16, 16), INPUT, train=False)
    batch = collate([dataset[0], dataset[2]])
    assert batch.images_BCHW.shape == (2, 3, 16, 16)
    assert batch.gt_boxes_BG4.shape == (2, 3, 4)
    assert batch.gt_mask_BG.tolist() == [[True, False, False], [True, True, True]]
    assert batch.gt_labels_BG.tolist() == [[0, 0, 0], [0, 1, 0]]
    assert batch.gt_difficult_BG.tolist() == [[False, False, False], [False, True, False]]
    assert torch.all(batch.gt_boxes_BG4[0, 1:] == 0)
    assert batch.indices_B.tolist() == [0, 2] and batch.sizes_hw_B2.tolist() == [[40, 80]] * 2
    assert batch.to("cpu").gt_mask_BG.dtype == torch.bool and len(batch) == 2


def test_worker_count_does_not_change_the_batches(manifest: Manifest) -> None:
    dataset = DetectionDataset(manifest, "train", (24, 24), INPUT, train=True, seed=5)
    runs = []
    for workers in (0, 2):
        loader = build_loader(dataset, 3, train=True, seed=7, workers=workers)
        loader.batch_sampler.set_epoch(1)
        runs.append(list(loader))
    assert len(runs[0]) == 2
    for one, two in zip(*runs, strict=True):
        torch.testing.assert_close(one.images_BCHW, two.images_BCHW)
        torch.testing.assert_close(one.gt_boxes_BG4, two.gt_boxes_BG4)
        assert one.indices_B.tolist() == two.indices_B.tolist()
