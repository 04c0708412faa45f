"""Compare candidate designs for the ``tiny`` backbone on this CPU.

Prints parameter counts and images/s for training steps (forward + backward) and inference at
256x256, for a 6-class detector (5 shapes + background) with the default 6-level priors.
Rounds are interleaved (A, B, C, A, B, C, ...) and the best round is reported (contention only
ever slows a round down), with the spread; the load average before and after is printed to judge
the noise. Forward GFLOPs per image (``torch.utils.flop_counter``) give a noise-free comparison.

    .venv/bin/python benchmarks/tiny_backbone_search.py [--threads 2] [--batch 16] [--rounds 3]
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
    # separable ones from stride 8 on; plain 3x3 heads.
    "hybrid": TINY_LAYOUT,
    # The same body with SSDLite heads.
    "hybrid_sephead": TinyLayout(
        TINY_LAYOUT.to_s8, TINY_LAYOUT.to_s16, TINY_LAYOUT.extras, head_style="separable"
    ),
}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=4)
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
    train_s: dict[str, list[float]] = {n: [] for n in detectors}
    infer_s: dict[str, list[float]] = {n: [] for n in detectors}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
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

            train_s[name].append(_time(train_step, args.repeats))
            infer_s[name].append(_time(infer, args.repeats))
    load_after = os.getloadavg()[0]

    print(
        f"{args.size}x{args.size}, batch {args.batch}, {args.threads} threads, median of "
        f"{args.rounds} interleaved rounds x {args.repeats} steps; "
        f"load average {load_before:.2f} -> {load_after:.2f}"
    )
    header = ["candidate", "params", "maps", "GFLOP/img", "train img/s", "(median)", "infer img/s"]
    print("".join(f"{h:>14}" if i else f"{h:<16}" for i, h in enumerate(header)))
    for name, detector in detectors.items():
        params = sum(p.numel() for p in detector.model.parameters())
        maps = ",".join(str(h) for h, _ in detector.model.feature_hws)
        gflops = forward_gflops(detector.model, args.size)
        train_best = args.batch / min(train_s[name])
        train_median = args.batch / statistics.median(train_s[name])
        infer_best = args.batch / min(infer_s[name])
        print(
            f"{name:<16}{params:>14,}{maps:>14}{gflops:>14.3f}{train_best:>14.1f}"
            f"{train_median:>14.1f}{infer_best:>14.1f}"
        )


if __name__ == "__main__":
    main()
