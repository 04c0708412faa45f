"""Compare candidate designs for the ``tiny`` backbone on this CPU.

Prints parameter counts and images/s for training steps (forward + backward) and inference at
256x256, for a 6-class detector (5 shapes + background) with the default 6-level priors.
Steps are interleaved (A, B, C, A, B, C, ...) so that every candidate meets the same load; the
best and median wall-clock steps are reported with images per CPU-second of this process (less
sensitive to other jobs on a shared machine), and the load average before and after. Forward
GFLOPs per image (``torch.utils.flop_counter``) give a noise-free comparison.

    .venv/bin/python benchmarks/tiny_backbone_search.py [--threads 2] [--batch 16] [--samples 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssdcli.config import Recipe
from ssdcli.model import BACKBONES, build_detector
from ssdcli.model.tiny import TINY_LAYOUT, TinyLayout, tiny_backbone

CANDIDATES: dict[str, TinyLayout] = {
    # Plain 3x3 convolutions everywhere (VGG-like, narrow).
    "plain": TinyLayout(
        to_s8=(("conv", 16, 2), ("conv", 32, 2), ("conv", 32, 1), ("conv", 64, 2), ("conv", 64, 1)),
        to_s16=(("conv", 128, 2), ("conv", 128, 1)),
        extras=(128, 128, 128, 128),
        head_style="conv",
    ),
    # MobileNetV1-like: depthwise-separable after a plain stem, SSDLite heads.
    "separable": TinyLayout(
        to_s8=(("conv", 16, 2), ("sep", 32, 2), ("sep", 32, 1), ("sep", 64, 2), ("sep", 64, 1)),
        to_s16=(("sep", 128, 2), ("sep", 128, 1), ("sep", 128, 1)),
        extras=(128, 128, 128, 128),
        head_style="separable",
    ),
    # Plain convolutions at high resolution (few channels, where depthwise is slow per FLOP),
    # separable ones from stride 8 on; plain 3x3 heads. One separable layer at stride 8.
    "hybrid_shallow": TinyLayout(
        to_s8=(("conv", 16, 2), ("conv", 32, 2), ("conv", 64, 2), ("sep", 64, 1)),
        to_s16=TINY_LAYOUT.to_s16,
        extras=TINY_LAYOUT.extras,
        head_style="conv",
    ),
    # The same with three separable layers at stride 8.
    "hybrid": TinyLayout(
        to_s8=(("conv", 16, 2), ("conv", 32, 2), ("conv", 64, 2)) + (("sep", 64, 1),) * 3,
        to_s16=TINY_LAYOUT.to_s16,
        extras=TINY_LAYOUT.extras,
        head_style="conv",
    ),
    # The built-in layout: "hybrid" with a space-to-depth stem (no stride-2 feature map).
    "hybrid_s2d": TINY_LAYOUT,
    # The same body with SSDLite heads.
    "hybrid_s2d_sephead": TinyLayout(
        TINY_LAYOUT.to_s8, TINY_LAYOUT.to_s16, TINY_LAYOUT.extras, head_style="separable"
    ),
}


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds over all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def forward_gflops(model: torch.nn.Module, size: int) -> float:
    """Forward FLOPs (2 per multiply-add) of one image, in GFLOP."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    detectors = {}
    for name, layout in CANDIDATES.items():
        BACKBONES[f"search_{name}"] = partial(tiny_backbone, layout=layout)
        recipe = Recipe.model_validate(
            {"model": {"backbone": f"search_{name}", "size_hw": [args.size, args.size]}}
        )
        detectors[name] = build_detector(recipe, num_classes=5)

    images = torch.randn(args.batch, 3, args.size, args.size)
    steps = {}
    for name, detector in detectors.items():
        model = detector.model
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

        def train_step(model=model, optimizer=optimizer) -> None:
            model.train()
            cls_logits_BPK, box_deltas_BP4 = model(images)
            loss = cls_logits_BPK.square().mean() + box_deltas_BP4.square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def infer(model=model) -> None:
            model.eval()
            with torch.inference_mode():
                model(images)

        steps[name] = {"train": train_step, "infer": infer}
        train_step(), infer()  # warm-up

    # One step per candidate in turn, so that every candidate sees the same load phases.
    samples = {(n, kind): [] for n in steps for kind in ("train", "infer")}
    load_before = os.getloadavg()[0]
    for _ in range(args.samples):
        for name, kinds in steps.items():
            for kind, fn in kinds.items():
                samples[name, kind].append(_timed(fn))
    load_after = os.getloadavg()[0]

    print(
        f"{args.size}x{args.size}, batch {args.batch}, {args.threads} threads, "
        f"{args.samples} interleaved steps each; load average {load_before:.2f} -> "
        f"{load_after:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        "img/s: best and median wall-clock step; img/CPU-s: images per CPU-second of this "
        "process (median), less sensitive to other jobs sharing the CPUs"
    )
    header = ["candidate", "params", "GFLOP/img", "train best", "median", "img/CPU-s"]
    header += ["infer best", "median", "img/CPU-s"]
    print(f"{header[0]:<16}" + "".join(f"{h:>12}" for h in header[1:]))
    for name, detector in detectors.items():
        row = [
            f"{sum(p.numel() for p in detector.model.parameters()):,}",
            f"{forward_gflops(detector.model, args.size):.3f}",
        ]
        for kind in ("train", "infer"):
            walls = [wall for wall, _ in samples[name, kind]]
            cpus = [cpu for _, cpu in samples[name, kind]]
            row += [
                f"{args.batch / min(walls):.1f}",
                f"{args.batch / statistics.median(walls):.1f}",
                f"{args.batch / statistics.median(cpus):.1f}",
            ]
        print(f"{name:<16}" + "".join(f"{v:>12}" for v in row))
    maps = ",".join(str(h) for h, _ in next(iter(detectors.values())).model.feature_hws)
    print(f"feature map heights: {maps}")


if __name__ == "__main__":
    main()
