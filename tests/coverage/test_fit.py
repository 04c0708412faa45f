"""``priors.fit: auto``: the recipe shorthand, and fitting that never covers fewer boxes."""

from __future__ import annotations

import json

import numpy as np

from ssdcli.config import (
    PriorsConfig,
    load_recipe,
    override_recipe,
    recipe_from_dict,
    recipe_to_dict,
)
from ssdcli.coverage.fit import fit_priors, recipe_levels
from ssdcli.coverage.measure import ground_truths, prior_coverage
from ssdcli.data.records import Manifest, Record
from ssdcli.priors import make_priors

SMALL = {
    "model": {"backbone": "tiny", "size_hw": [64, 64], "extra_levels": 2, "width": 0.25},
    "priors": {"fit": "auto", "scales": [0.5, 0.6, 0.7, 0.8, 0.95], "aspect_ratios": [[2]] * 4},
}


def test_priors_auto_is_short_for_fit_auto() -> None:
    recipe = recipe_from_dict({"priors": "auto"}, "test")
    assert recipe.priors.fit == "auto"
    assert recipe.priors.aspect_ratios == load_recipe(None).priors.aspect_ratios


def _small_boxes_manifest() -> Manifest:
    # 8-12 px boxes in 64 px images: the recipe's priors (32 px and up) fit none of them.
    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        x, y = rng.uniform(5, 45, 2)
        side = rng.uniform(8, 12)
        boxes = [[x, y, x + side, y + side]]
        records.append(Record.make(f"i{i}", f"/nowhere/{i}.jpg", (64, 64), boxes, [0]))
    return Manifest(["spot"], records, {"train": list(range(6))})


def test_fit_covers_more_and_the_run_records_it(tmp_path) -> None:
    recipe = recipe_from_dict(SMALL, "test")
    manifest = _small_boxes_manifest()
    lines: list[str] = []
    fit = fit_priors(recipe, manifest, "train", lines.append)
    fitted = fit.recipe
    assert fitted.priors.fit == "off" and fitted.priors.scales is None
    assert fit.summary.startswith("auto: ") and "-> " in fit.summary
    assert len(lines) == 1 and "priors fitted to the data" in lines[0]
    # The summary is the run's record (priors_fit.json), not a recipe value.
    assert "fitted" not in PriorsConfig.model_fields
    assert "fitted" not in recipe_to_dict(fitted)["priors"]
    record = json.loads(fit.save(tmp_path).read_text())
    assert (tmp_path / "priors_fit.json").is_file()
    assert record["summary"] == fit.summary and record["changed"] is True
    assert (record["split"], record["boxes"], record["match_iou"]) == ("train", 6, 0.5)
    assert record["covered_before"] < record["covered_after"] <= 1.0

    def covered(r):  # share of boxes with a prior at IoU >= match_iou
        levels = recipe_levels(r, 1)
        priors = make_priors(levels, (64, 64), r.priors.clip)
        return prior_coverage(ground_truths(manifest, "train"), priors, levels, 0.5).covered

    before, after = covered(recipe), covered(fitted)
    assert before < after
    # The same number of priors per level and cell: the head keeps its shape.
    assert [len(r) for r in fitted.priors.aspect_ratios] == [1, 1, 1, 1]
    # Loading the fitted recipe again builds the same priors (no second fit).
    again = override_recipe(fitted, {})
    assert again.priors == fitted.priors
