"""Anchor: torchvision's SSDLite320-MobileNetV3-Large from scratch, in a wall-clock budget.

Trains ``torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None,
weights_backbone=None, num_classes=C + 1)`` (random weights everywhere; torchvision then uses its
reduced tail) on the ``train`` split of a data set read by ssdcli's data layer, exactly as
`ssd train --data PATH` reads it, for ``--time`` of wall-clock training; then predicts the test
split and scores it with the functions `ssd eval` uses (VOC area and VOC07 mAP@0.5, COCO AP), so
the figures sit beside `ssd train --data PATH --time 30m && ssd eval`. Prints one table row and
writes ``<out>/result.json``.

    PYTHONPATH=. python benchmarks/anchor_ssdlite.py --data ../shared/data/bccd --time 30m \\
        --out /work/anchors-out/ssdlite-bccd

The recipe is torchvision's own for this network (references/detection: ``--epochs 660
--lr-scheduler cosineannealinglr --lr 0.15 --batch-size 24 --weight-decay 0.00004
--data-augmentation ssdlite`` on 8 GPUs, SGD momentum 0.9, a linear warm-up over the first epoch
from 1/1000 of the rate), scaled to one CPU process:

* batch 24 (the reference's per-GPU batch), learning rate 0.15 x 24 / 192 = 0.01875 (the linear
  scaling rule: the reference's global batch is 8 x 24 = 192);
* the cosine runs over the wall-clock budget instead of 660 epochs: ``lr = base x (1 + cos(pi x
  elapsed / budget)) / 2``, so the rate reaches zero when the budget ends, whatever the speed;
* augmentation ``ssdlite``: ``RandomIoUCrop`` then ``RandomHorizontalFlip(0.5)`` from
  ``torchvision.transforms.v2`` (plus ``SanitizeBoundingBoxes``, which v2 needs after a crop);
  the model resizes to 320 x 320 and normalises itself;
* no aspect-ratio grouping (every image is resized to 320 x 320, so it changes nothing);
* torchvision's inference defaults for scoring (score 0.001, NMS IoU 0.55, 300 per image).

The clock starts at the first training step and is read after every step: no step starts when
the mean step time would take it past the budget. There is no evaluation during training (the
final weights are scored), and the scoring after the budget is not counted in it. Threads: torch's
default (one per core).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.models.detection import ssdlite320_mobilenet_v3_large
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchor_common import (  # noqa: E402
    TABLE_HEADER,
    load_splits,
    machine,
    now,
    parse_budget,
    score,
    table_row,
    write_json,
)

NAME = "SSDLite320-MobileNetV3-Large from scratch (torchvision)"
REFERENCE_GLOBAL_BATCH = 8 * 24  # torchvision's recipe: 8 GPUs x batch 24
REFERENCE_LR = 0.15


class TrainSplit(Dataset):
    """The train split as torchvision's detection models take it, with the ``ssdlite`` augmentation.

    Item: ``(image float32 [3, H, W] in 0..1, {"boxes": float32 [G, 4] xyxy pixels,
    "labels": int64 [G] in 1..C})``; label 0 is torchvision's background. Difficult and crowd
    boxes are left out, as ssdcli's training leaves them out.
    """

    def __init__(self, records: list) -> None:
        self.records = records
        self.crop_flip = v2.Compose(
            [v2.RandomIoUCrop(), v2.RandomHorizontalFlip(0.5), v2.SanitizeBoundingBoxes()]
        )
        self.flip = v2.RandomHorizontalFlip(0.5)  # RandomIoUCrop needs at least one box
        self.to_float = v2.ToDtype(torch.float32, scale=True)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from ssdcli.data import read_image_rgb

        record = self.records[index]
        keep = ~(record.difficult | record.iscrowd)
        pixels = torch.from_numpy(read_image_rgb(record.image_path)).permute(2, 0, 1)
        image = tv_tensors.Image(pixels)
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(record.boxes_xyxy[keep]),
                format="XYXY",
                canvas_size=tuple(image.shape[-2:]),
            ),
            "labels": torch.from_numpy(record.labels[keep] + 1),
        }
        image, target = (self.crop_flip if keep.any() else self.flip)(image, target)
        return self.to_float(image).as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor),
            "labels": target["labels"],
        }


def collate_list(batch: list) -> tuple[list, list]:
    return [item[0] for item in batch], [item[1] for item in batch]


def train(model: torch.nn.Module, records: list, args: argparse.Namespace, budget: float) -> dict:
    """SGD within ``budget`` seconds of wall clock; returns what the run did."""
    lr = REFERENCE_LR * args.batch / REFERENCE_GLOBAL_BATCH if args.lr is None else args.lr
    loader = DataLoader(
        TrainSplit(records),
        batch_size=args.batch,
        shuffle=True,
        drop_last=len(records) >= args.batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        collate_fn=collate_list,
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5)
    warmup = min(1000, max(len(loader) - 1, 1))  # torchvision: the first epoch, at most 1000
    model.train()
    load_start = machine()["load_1min"]
    start = time.perf_counter()
    steps = images = 0
    epoch = 0
    last_loss = math.nan
    stop = False
    while not stop:
        for images_list, targets in loader:
            elapsed = time.perf_counter() - start
            mean_step = elapsed / steps if steps else 0.0
            if elapsed + mean_step > budget:
                stop = True
                break
            factor = 1.0
            if steps < warmup:  # linear from 1/1000 to 1, as torchvision's first epoch
                alpha = steps / warmup
                factor = 0.001 * (1 - alpha) + alpha
            cosine = 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
            for group in optimizer.param_groups:
                group["lr"] = lr * factor * cosine
            losses = model(images_list, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise SystemExit(f"loss is {loss.item()} at step {steps}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            images += len(images_list)
            last_loss = loss.item()
            if steps % args.log_every == 0:
                print(
                    f"step {steps}  epoch {epoch}  loss {last_loss:.3f}  "
                    f"lr {optimizer.param_groups[0]['lr']:.5f}  "
                    f"{time.perf_counter() - start:.0f}s of {budget:.0f}s",
                    flush=True,
                )
        epoch += 1
    seconds = time.perf_counter() - start
    return {
        "budget_seconds": budget,
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "images_seen": images,
        "epochs": images / len(records),
        "images_per_second": images / seconds if seconds else 0.0,
        "final_loss": last_loss if steps else None,
        "load_start": load_start,
        "load_end": machine()["load_1min"],
        "lr": lr,
        "batch": args.batch,
        "warmup_steps": warmup,
    }


@torch.no_grad()
def predict(model: torch.nn.Module, records: list, batch: int) -> list:
    """torchvision's detections per record, as ``ImageDetections`` (labels 0..C-1)."""
    from ssdcli.data import read_image_rgb
    from ssdcli.metrics.voc import ImageDetections

    model.eval()
    out = []
    for first in range(0, len(records), batch):
        chunk = records[first : first + batch]
        images = [
            torch.from_numpy(read_image_rgb(r.image_path)).permute(2, 0, 1).float() / 255
            for r in chunk
        ]
        for det in model(images):  # boxes in pixels of the image given
            out.append(
                ImageDetections(
                    det["boxes"].numpy().astype(np.float32),
                    det["scores"].numpy().astype(np.float32),
                    (det["labels"] - 1).numpy().astype(np.int64),
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="data set as `ssd train --data` takes it")
    parser.add_argument("--time", default="30m", help="training budget, e.g. 30m (default)")
    parser.add_argument("--out", required=True, type=Path, help="folder for result.json")
    parser.add_argument("--batch", type=int, default=24, help="batch size (default 24)")
    parser.add_argument("--lr", type=float, default=None, help="default 0.15 x batch / 192")
    parser.add_argument("--workers", type=int, default=1, help="data loader processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=20)
    args = parser.parse_args(argv)
    budget = parse_budget(args.time)
    torch.manual_seed(args.seed)

    manifest, train_split, _, test_split = load_splits(args.data)
    train_records = [manifest.records[i] for i in manifest.split_indices(train_split)]
    test_records = [manifest.records[i] for i in manifest.split_indices(test_split)]
    info = machine()
    print(
        f"{NAME}: {len(train_records)} train / {len(test_records)} {test_split} images, "
        f"{len(manifest.class_names)} classes, budget {budget:.0f}s, "
        f"{torch.get_num_threads()} threads, {info['cpu']}, load {info['load_1min']}",
        flush=True,
    )
    model = ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=len(manifest.class_names) + 1
    )
    run = train(model, train_records, args, budget)
    print(
        f"trained {run['steps']} steps ({run['images_seen']} images) in {run['train_seconds']}s; "
        f"predicting {len(test_records)} {test_split} images (not counted in the budget)",
        flush=True,
    )
    eval_start = time.perf_counter()
    result = score(manifest, test_split, predict(model, test_records, batch=8))
    run["eval_seconds"] = round(time.perf_counter() - eval_start, 1)
    payload = {
        "network": NAME,
        "data": str(Path(args.data).resolve()),
        "finished": now(),
        "machine": info | {"threads": torch.get_num_threads()},
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "recipe": {
            "optimizer": "SGD momentum 0.9, weight decay 4e-5",
            "schedule": "linear warm-up over the first epoch, cosine over the wall-clock budget",
            "augmentation": "RandomIoUCrop, RandomHorizontalFlip(0.5) (torchvision v2)",
            "input": "320x320 (the model's own resize and normalisation)",
            "seed": args.seed,
        },
        "run": run,
        "test": result.to_dict(),
    }
    path = write_json(args.out / "result.json", payload)
    print(TABLE_HEADER)
    print(table_row(NAME, args.data, result, run))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
