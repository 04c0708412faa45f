"""Training throughput of SSD300-VGG16: ssdcli vs torchvision's ``ssd300_vgg16``, same batch.

One training step = forward, matching, loss, backward and an SGD step, on the same random batch
of 300x300 images with 1-6 random boxes each (20 classes), in one process, alternating the two
implementations so both see the same machine load. Prints images/s of each and the ratio.

    .venv/bin/python benchmarks/bench_train.py --batch 8 --steps 4

ssdcli's step is the one ``ssd train`` runs (``ssdcli.train.loop.train_step``'s maths):
batched matching of the padded ground truths on the device, one-pass MultiBox loss with batched
hard negative mining, channels-last memory layout on CPU. torchvision matches and mines per image
and resizes inside the model (``GeneralizedRCNNTransform``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table


def random_batch(batch: int, size: int, num_classes: int, seed: int = 0) -> dict:
    """Images (B, 3, S, S) in [0, 255] and per-image pixel xyxy boxes with labels 0..C-1."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=gen) * 255
    boxes, labels = [], []
    for _ in range(batch):
        count = int(torch.randint(1, 7, (1,), generator=gen))
        xy = torch.rand(count, 2, generator=gen) * size * 0.7
        wh = torch.rand(count, 2, generator=gen) * size * 0.3 + 16
        boxes.append(torch.cat([xy, (xy + wh).clamp(max=size)], dim=1))
        labels.append(torch.randint(0, num_classes, (count,), generator=gen))
    return {"images": images, "boxes": boxes, "labels": labels}


def ours_step_fn(data: dict, num_classes: int, channels_last: bool):
    """A closure running one ssdcli training step."""
    from ssdcli.boxes import BoxCoder
    from ssdcli.config import load_recipe
    from ssdcli.loss import MultiBoxLoss
    from ssdcli.matcher import encode_targets
    from ssdcli.model import build_detector

    recipe = load_recipe("voc300")
    detector = build_detector(recipe, num_classes)
    model = detector.model.train()
    size = data["images"].shape[-1]
    images = (data["images"] - 117.0) / 58.0
    if channels_last:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    count = max(len(b) for b in data["boxes"])
    batch = len(data["boxes"])
    gt_boxes = torch.zeros(batch, count, 4)
    gt_labels = torch.zeros(batch, count, dtype=torch.long)
    gt_mask = torch.zeros(batch, count, dtype=torch.bool)
    for i, (b, lab) in enumerate(zip(data["boxes"], data["labels"], strict=True)):
        gt_boxes[i, : len(b)] = b / size
        gt_labels[i, : len(b)] = lab
        gt_mask[i, : len(b)] = True
    coder, criterion = BoxCoder((0.1, 0.2)), MultiBoxLoss(3.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        with torch.no_grad():
            labels_BP, deltas_BP4 = encode_targets(
                gt_boxes, gt_labels, gt_mask, detector.priors_P4, coder, 0.5
            )
        cls_BPK, box_BP4 = model(images)
        loss = criterion(cls_BPK, box_BP4, labels_BP, deltas_BP4).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def torchvision_step_fn(data: dict, num_classes: int):
    """A closure running one torchvision ``ssd300_vgg16`` training step (losses summed)."""
    from torchvision.models.detection import ssd300_vgg16

    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=num_classes + 1)
    model.train()
    images = list(data["images"] / 255.0)
    pairs = zip(data["boxes"], data["labels"], strict=True)
    targets = [{"boxes": boxes, "labels": labels + 1} for boxes, labels in pairs]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per implementation")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-channels-last", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = random_batch(args.batch, 300, num_classes=20)
    runners = {
        "ssdcli": ours_step_fn(data, 20, channels_last=not args.no_channels_last),
        "torchvision": torchvision_step_fn(data, 20),
    }
    for step in runners.values():  # warm-up (allocator, oneDNN kernels)
        step()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.steps):
        for name, step in runners.items():  # alternate so both see the same load
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    table = Table(
        title=f"SSD300-VGG16 training, batch {args.batch}, CPU, {torch.get_num_threads()} threads"
    )
    for column in ("implementation", "median s/step", "images/s"):
        table.add_column(column, justify="right" if column != "implementation" else "left")
    speed = {}
    for name, values in times.items():
        median = statistics.median(values)
        speed[name] = args.batch / median
        table.add_row(name, f"{median:.3f}", f"{speed[name]:.2f}")
    Console().print(table)
    print(f"ratio ssdcli / torchvision: {speed['ssdcli'] / speed['torchvision']:.2f}x")


if __name__ == "__main__":
    main()
