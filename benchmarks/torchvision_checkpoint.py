"""Write an ssdcli checkpoint holding torchvision's SSD300-VGG16 or SSDLite320-MobileNetV3 network
with random weights, for speed figures of ``ssd benchmark`` on the full-size models.

Nothing is downloaded: torchvision's model is built with random weights (He-normal, random
batch-norm statistics, as ``bench_infer.py`` does), imported with
``ssdcli.model.importers.import_torchvision`` and saved with the recipe values that reproduce
torchvision's priors and normalisation, under the class names of a manifest (so that the
benchmark can calibrate and score on it). Its mAP is that of an untrained model: use the file for
speed, and for checking that exports verify.

Usage::

    .venv/bin/python benchmarks/torchvision_checkpoint.py ssd300 runs/ssd300/best.pt \\
        --manifest data/shapes/manifest.json
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large

from ssdcli.checkpoint.file import make_payload, save_checkpoint
from ssdcli.config import Recipe, override_recipe, recipe_to_dict
from ssdcli.data.records import Manifest
from ssdcli.model.importers import import_torchvision

BUILDERS = {"ssd300": ssd300_vgg16, "ssdlite": ssdlite320_mobilenet_v3_large}


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """He-normal weights, small biases, random batch-norm statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif tensor.dim() == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                std = math.sqrt(2 / tensor[0].numel())
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(BUILDERS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--manifest", type=Path, required=True, help="its class names are used")
    args = parser.parse_args()
    class_names = Manifest.load(args.manifest).class_names
    with torch.device("meta"):
        tv = BUILDERS[args.model](
            weights=None, weights_backbone=None, num_classes=len(class_names) + 1
        )
    tv = tv.to_empty(device="cpu").eval()
    randomise(tv)
    imported = import_torchvision(tv.state_dict())
    recipe = override_recipe(Recipe(), imported.recipe_overrides)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = make_payload(imported.state_dict, recipe_to_dict(recipe), list(class_names))
    save_checkpoint(args.out, payload)
    count = len(class_names)
    print(f"wrote {args.out} (torchvision {imported.arch}, random weights, {count} classes)")


if __name__ == "__main__":
    main()
