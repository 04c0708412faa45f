"""Time matching + MultiBox loss (forward and backward): ssdcli vs torchvision's SSD path.

Both paths start from the same random batch (B images x 8732 SSD300 priors x 21 classes, 1 to 12
random objects per image) and the same head outputs, and each uses its own prior generator:

* ssdcli: ``encode_targets`` (one batched IoU) + ``MultiBoxLoss`` (one top-k mining) + backward.
* torchvision: ``DefaultBoxGenerator`` anchors, ``SSDMatcher`` per image on ``box_iou`` (as
  ``SSD.forward`` does in training) + ``SSD.compute_loss`` + backward.

Prior/anchor generation is done once, outside the timed region, for both. The two paths take
turns within every repeat; the table gives the median wall time and the median process CPU time
(steadier than wall time on a shared machine; ``--threads 1`` makes the two comparable).

Usage::

    .venv/bin/python benchmarks/bench_loss.py [--batch 32] [--repeats 30] [--warmup 5]
        [--threads N] [--device cpu|cuda] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table
from torchvision.models.detection import ssd300_vgg16
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from ssdcli.boxes import BoxCoder, to_normalized
from ssdcli.loss import MultiBoxLoss
from ssdcli.matcher import encode_targets
from ssdcli.priors import LevelSpec, make_priors

SIZE_HW = (300, 300)
FEATURE_SIDES = (38, 19, 10, 5, 3, 1)
STEPS = (8, 16, 32, 64, 100, 300)
MIN_SIZES = (30, 60, 111, 162, 213, 264)
MAX_SIZES = (60, 111, 162, 213, 264, 315)
RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
NUM_K = 21  # 20 VOC classes + background


def ssd300_priors() -> torch.Tensor:
    """ssdcli priors for the SSD300 VOC settings: Tensor[8732, 4] normalised cxcywh."""
    levels = [
        LevelSpec((f, f), (float(s), float(s)), float(lo), float(hi), tuple(map(float, r)))
        for f, s, lo, hi, r in zip(FEATURE_SIDES, STEPS, MIN_SIZES, MAX_SIZES, RATIOS, strict=True)
    ]
    return make_priors(levels, SIZE_HW)


def random_batch(batch: int, gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image: (boxes Tensor[G, 4] xyxy pixels of 300x300, labels Tensor[G] 0..19), G 1..12."""
    out = []
    for _ in range(batch):
        g = int(torch.randint(1, 13, (1,), generator=gen))
        xy = torch.rand(g, 2, generator=gen) * 260
        wh = 10 + torch.rand(g, 2, generator=gen) * (300 - 10 - xy)
        boxes = torch.cat((xy, (xy + wh).clamp(max=300)), dim=1)
        out.append((boxes, torch.randint(0, NUM_K - 1, (g,), generator=gen)))
    return out


def pad(samples, device):
    """Padded normalised batch: gt_boxes_BG4, gt_labels_BG, gt_mask_BG."""
    g_max = max(len(labels) for _, labels in samples)
    boxes = torch.zeros(len(samples), g_max, 4)
    labels = torch.zeros(len(samples), g_max, dtype=torch.long)
    mask = torch.zeros(len(samples), g_max, dtype=torch.bool)
    for i, (b, lab) in enumerate(samples):
        boxes[i, : len(lab)] = to_normalized(b, SIZE_HW)
        labels[i, : len(lab)] = lab
        mask[i, : len(lab)] = True
    return boxes.to(device), labels.to(device), mask.to(device)


def time_interleaved(
    fns: dict[str, Callable[[], None]], warmup: int, repeats: int, device: str
) -> dict[str, tuple[list[float], list[float]]]:
    """Wall-clock and process CPU milliseconds per call of each function, after warm-up.

    The functions take turns within every repeat, so that both paths see the same load when the
    machine is shared. CPU time (all threads of this process) is less disturbed by other jobs than
    wall time; with one thread on an idle machine the two agree.
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync()
            times[name][0].append((time.perf_counter() - start) * 1000)
            times[name][1].append((time.process_time() - start_cpu) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    gen = torch.Generator().manual_seed(args.seed)
    samples = random_batch(args.batch, gen)
    num_p = 8732
    logits0 = torch.randn(args.batch, num_p, NUM_K, generator=gen).to(device)
    deltas0 = torch.randn(args.batch, num_p, 4, generator=gen).to(device)

    # ssdcli path.
    priors_P4 = ssd300_priors().to(device)
    coder, criterion = BoxCoder((0.1, 0.2)), MultiBoxLoss(neg_pos_ratio=3.0)
    gt_boxes_BG4, gt_labels_BG, gt_mask_BG = pad(samples, device)
    ours_logits = logits0.clone().requires_grad_()
    ours_deltas = deltas0.clone().requires_grad_()

    def ours() -> None:
        labels_BP, target_BP4 = encode_targets(
            gt_boxes_BG4, gt_labels_BG, gt_mask_BG, priors_P4, coder, 0.5
        )
        parts = criterion(ours_logits, ours_deltas, labels_BP, target_BP4)
        ours_logits.grad = ours_deltas.grad = None
        parts.total.backward()

    # torchvision path: its own anchors (DefaultBoxGenerator) and per-image SSDMatcher.
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=NUM_K).to(device)
    images = ImageList(torch.zeros(args.batch, 3, *SIZE_HW, device=device), [SIZE_HW] * args.batch)
    features = [torch.zeros(1, 1, f, f, device=device) for f in FEATURE_SIDES]
    anchors = model.anchor_generator(images, features)
    targets = [{"boxes": b.to(device), "labels": (lab + 1).to(device)} for b, lab in samples]
    tv_logits = logits0.clone().requires_grad_()
    tv_deltas = deltas0.clone().requires_grad_()

    def torchvision_path() -> None:
        matched_idxs = []
        for anchors_per_image, target in zip(anchors, targets, strict=True):
            quality = box_iou(target["boxes"], anchors_per_image)
            matched_idxs.append(model.proposal_matcher(quality))
        head_outputs = {"bbox_regression": tv_deltas, "cls_logits": tv_logits}
        losses = model.compute_loss(targets, head_outputs, anchors, matched_idxs)
        tv_logits.grad = tv_deltas.grad = None
        (losses["bbox_regression"] + losses["classification"]).backward()

    with torch.no_grad():
        labels_BP, target_BP4 = encode_targets(
            gt_boxes_BG4, gt_labels_BG, gt_mask_BG, priors_P4, coder, 0.5
        )
    num_pos = int((labels_BP > 0).sum())

    times = time_interleaved(
        {"torchvision": torchvision_path, "ssdcli": ours}, args.warmup, args.repeats, device
    )
    rows = [
        (name, statistics.median(wall), min(wall), statistics.median(cpu))
        for name, (wall, cpu) in times.items()
    ]
    tv_wall, tv_cpu = rows[0][1], rows[0][3]

    table = Table(
        title=(
            f"match + MultiBox loss fwd+bwd: batch {args.batch} x {num_p} priors x {NUM_K} "
            "classes, "
            f"{sum(len(lab) for _, lab in samples)} objects, {num_pos} positives (ssdcli), "
            f"{device}, {torch.get_num_threads()} threads, median of {args.repeats}"
        )
    )
    table.add_column("path", no_wrap=True)
    table.add_column("median wall ms", justify="right")
    table.add_column("min wall ms", justify="right")
    table.add_column("median CPU ms", justify="right")
    table.add_column("speed-up (wall)", justify="right")
    table.add_column("speed-up (CPU)", justify="right")
    for name, median, best, cpu in rows:
        table.add_row(
            name,
            f"{median:.1f}",
            f"{best:.1f}",
            f"{cpu:.1f}",
            f"{tv_wall / median:.1f}x",
            f"{tv_cpu / cpu:.1f}x",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
