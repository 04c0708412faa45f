"""Training throughput on the CPU: ssdcli vs torchvision, whole steps, same batch, same run.

Models (``--models``): SSD300-VGG16 against torchvision's ``ssd300_vgg16``; SSDLite320 on
MobileNetV3-Large against torchvision's ``ssdlite320_mobilenet_v3_large`` (random weights, no
downloads, imported into ssdcli with ``import_torchvision`` so both train the same network); and
the ``shapes_tiny`` recipe's ``tiny`` network at 300x300, set against torchvision's SSDLite320
(the CPU model torchvision offers). 20 classes everywhere, so the heads do comparable work.

One training step = forward, matching, loss, backward and an optimiser step (SGD for the
SSD300/SSDLite pairs; the recipe's AdamW for ``tiny``) on the same random batch of images with
1-6 random boxes each, in one process, the implementations alternating step by step so that
all see the same machine load. Data loading is excluded. Printed per implementation: median
seconds per step, images/s, the ratio to torchvision's SSDLite320 (and to the same-architecture
torchvision model) and the CPU cores kept busy during its steps (process CPU time / wall time).

    .venv/bin/python benchmarks/bench_train.py [--models ssdlite tiny ssd300] [--batch 8]
        [--steps 6] [--threads N]

ssdcli's step is the one ``ssd train`` runs (``ssdcli.train.loop.train_step``'s maths):
batched matching of the padded ground truths, one-pass MultiBox loss with batched hard negative
mining, channels-last memory layout on CPU. torchvision matches and mines per image and resizes
inside the model (``GeneralizedRCNNTransform``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

NUM_CLASSES = 20


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


def padded_targets(data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(gt_boxes_BG4 normalised xyxy, gt_labels_BG, gt_mask_BG)`` as the collate function."""
    size = data["images"].shape[-1]
    count = max(len(b) for b in data["boxes"])
    batch = len(data["boxes"])
    gt_boxes = torch.zeros(batch, count, 4)
    gt_labels = torch.zeros(batch, count, dtype=torch.long)
    gt_mask = torch.zeros(batch, count, dtype=torch.bool)
    for i, (b, lab) in enumerate(zip(data["boxes"], data["labels"], strict=True)):
        gt_boxes[i, : len(b)] = b / size
        gt_labels[i, : len(b)] = lab
        gt_mask[i, : len(b)] = True
    return gt_boxes, gt_labels, gt_mask


def ours_step_fn(
    data: dict, detector, recipe, optimizer_name: str = "sgd", lr: float = 1e-4
) -> Callable[[], None]:
    """A closure running one ssdcli training step of ``detector`` (as ``train_step`` does)."""
    from ssdcli.boxes import BoxCoder
    from ssdcli.loss import MultiBoxLoss
    from ssdcli.matcher import encode_matched, match

    model = detector.model.train().to(memory_format=torch.channels_last)
    mean = torch.tensor(recipe.model.input.mean).view(1, 3, 1, 1)
    std = torch.tensor(recipe.model.input.std).view(1, 3, 1, 1)
    images = ((data["images"] - mean) / std).contiguous(memory_format=torch.channels_last)
    gt_boxes, gt_labels, gt_mask = padded_targets(data)
    coder = BoxCoder(tuple(recipe.priors.variances))
    criterion = MultiBoxLoss(recipe.loss.neg_pos_ratio)
    if optimizer_name == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    priors = detector.priors_P4
    iou = recipe.loss.match_iou

    def step() -> None:
        matched = match(gt_boxes, gt_mask, priors, iou)
        labels_BP, deltas_BP4 = encode_matched(matched, gt_boxes, gt_labels, priors, coder)
        cls_BPK, box_BP4 = model(images)
        loss = criterion(cls_BPK, box_BP4, labels_BP, deltas_BP4).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ours_imported(data: dict, tv_model: torch.nn.Module) -> Callable[[], None]:
    """ssdcli's step on the network imported from a torchvision SSD (same weights)."""
    from ssdcli.config import Recipe, override_recipe
    from ssdcli.model import build_detector
    from ssdcli.model.importers import import_torchvision

    imported = import_torchvision(tv_model.state_dict())
    recipe = override_recipe(Recipe(), imported.recipe_overrides)
    detector = build_detector(recipe, num_classes=len(imported.class_names))
    detector.model.load_state_dict(imported.state_dict, strict=True)
    return ours_step_fn(data, detector, recipe)


def ours_tiny(data: dict) -> Callable[[], None]:
    """ssdcli's step on the ``shapes_tiny`` recipe's network (20 classes), AdamW as the recipe."""
    from ssdcli.config import load_recipe
    from ssdcli.model import build_detector

    recipe = load_recipe("shapes_tiny")
    torch.manual_seed(0)
    detector = build_detector(recipe, NUM_CLASSES)
    return ours_step_fn(data, detector, recipe, "adamw", recipe.train.lr)


def torchvision_model(key: str) -> torch.nn.Module:
    """torchvision's SSD300-VGG16 or SSDLite320-MobileNetV3 (random weights, no download)."""
    from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large

    factory = ssd300_vgg16 if key == "ssd300" else ssdlite320_mobilenet_v3_large
    torch.manual_seed(0)
    return factory(weights=None, weights_backbone=None, num_classes=NUM_CLASSES + 1)


def torchvision_step_fn(data: dict, model: torch.nn.Module) -> Callable[[], None]:
    """A closure running one torchvision training step (losses summed, SGD)."""
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


def build_runners(models: list[str], batch: int) -> dict[str, tuple[str, Callable[[], None]]]:
    """name -> (torchvision reference name, step closure); torchvision's own rows included."""
    runners: dict[str, tuple[str, Callable[[], None]]] = {}
    data300 = random_batch(batch, 300, NUM_CLASSES)
    data320 = random_batch(batch, 320, NUM_CLASSES)
    tv_lite = "torchvision SSDLite320-MobileNetV3"
    if "ssdlite" in models or "tiny" in models:
        runners[tv_lite] = (tv_lite, torchvision_step_fn(data320, torchvision_model("ssdlite")))
    if "ssdlite" in models:
        tv = torchvision_model("ssdlite")
        runners["ssdcli SSDLite320-MobileNetV3"] = (tv_lite, ours_imported(data320, tv))
    if "tiny" in models:
        runners["ssdcli tiny 300x300 (shapes_tiny)"] = (tv_lite, ours_tiny(data300))
    if "ssd300" in models:
        tv300 = "torchvision SSD300-VGG16"
        tv = torchvision_model("ssd300")
        runners[tv300] = (tv300, torchvision_step_fn(data300, tv))
        runners["ssdcli SSD300-VGG16"] = (
            tv300,
            ours_imported(data300, torchvision_model("ssd300")),
        )
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ssdlite", "tiny"],
                        choices=["ssdlite", "tiny", "ssd300"])  # fmt: skip
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per implementation")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runners = build_runners(args.models, args.batch)
    for _, step in runners.values():  # warm-up (allocator, oneDNN kernels)
        step()
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, float] = dict.fromkeys(runners, 0.0)
    for _ in range(args.steps):
        for name, (_, step) in runners.items():  # alternate so all see the same load
            start, cpu_start = time.perf_counter(), time.process_time()
            step()
            times[name].append(time.perf_counter() - start)
            cpu[name] += time.process_time() - cpu_start

    load = os.getloadavg()[0]
    table = Table(
        title=f"Training steps, batch {args.batch}, CPU, {torch.get_num_threads()} threads, "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    columns = ("implementation", "median s/step", "images/s", "vs torchvision SSDLite320",
               "vs same torchvision model", "cores busy")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right" if column != "implementation" else "left")
    speed = {name: args.batch / statistics.median(values) for name, values in times.items()}
    lite = "torchvision SSDLite320-MobileNetV3"
    for name, (reference, _) in runners.items():
        cores = cpu[name] / sum(times[name])
        table.add_row(
            name, f"{statistics.median(times[name]):.3f}", f"{speed[name]:.1f}",
            f"{speed[name] / speed[lite]:.2f}x" if lite in speed else "",
            f"{speed[name] / speed[reference]:.2f}x", f"{cores:.2f}",
        )  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
