"""Prior coverage: hand-worked best IoUs, groups, the suggestion search and the CLI option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.coverage.measure import ground_truths, prior_coverage
from ssdcli.coverage.suggest import suggest_priors
from ssdcli.data.records import Manifest, Record
from ssdcli.priors import LevelSpec, make_priors


def _manifest(boxes_px: list[list[float]], labels: list[int], difficult=None) -> Manifest:
    record = Record.make("a", "/nowhere/a.jpg", (100, 100), boxes_px, labels, difficult)
    return Manifest(["cat", "dog"], [record], {"all": [0]})


def test_best_iou_hand_values_and_groups() -> None:
    level = LevelSpec((1, 1), (100.0, 100.0), 50.0, None, ())  # one prior: xyxy 25..75
    manifest = _manifest(
        [[25, 25, 75, 75], [25, 25, 75, 50], [0, 0, 10, 10], [0, 0, 90, 90]],
        [0, 1, 1, 0],
        [False, False, False, True],  # the difficult box is not counted
    )
    gts = ground_truths(manifest)
    coverage = prior_coverage(gts, make_priors([level], (100, 100)), [level], 0.5)
    np.testing.assert_allclose(coverage.best_iou_G, [1.0, 0.5, 0.0], atol=1e-6)
    assert coverage.positives_G.tolist() == [1, 1, 0]
    assert coverage.covered == pytest.approx(2 / 3)
    groups = dict(coverage.groups(manifest.class_names))
    assert groups["class dog"].tolist() == [False, True, True]
    assert groups["size small (< 32^2 px)"].tolist() == [False, False, True]


def test_suggestion_shrinks_priors_that_are_too_large() -> None:
    # 2x2 grid, priors 50 and sqrt(50*60) px; the boxes are 35 px squares on the cell centres,
    # IoU 1225/2500 = 0.49 with the best prior: none covered. Sizes x0.7 fit them exactly.
    level = LevelSpec((2, 2), (50.0, 50.0), 50.0, 60.0, ())
    boxes = [[c - 17.5, r - 17.5, c + 17.5, r + 17.5] for r in (25, 75) for c in (25, 75)]
    gts = ground_truths(_manifest(boxes, [0, 0, 1, 1]))
    proposal = suggest_priors(gts, [level], (100, 100), 0.5)
    assert proposal.before == 0.0 and proposal.after == 1.0
    assert proposal.levels[0].min_size == pytest.approx(35.0)
    assert "min_sizes: [35.0]" in proposal.fragment()


def test_inspect_priors_data_option(tmp_path: Path) -> None:
    boxes = [[10, 10, 60, 50], [5, 60, 30, 95]]
    path = _manifest(boxes, [0, 1]).save(tmp_path / "manifest.json")
    args = [
        "inspect-priors",
        "shapes_tiny",
        "--data",
        str(path),
        "--suggest",
        "--out",
        str(tmp_path / "p.png"),
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "prior coverage" in result.output and "worst-covered" in result.output
    assert (tmp_path / "p_coverage.png").stat().st_size > 0
    no_data = CliRunner().invoke(app, ["inspect-priors", "shapes_tiny", "--suggest"])
    assert no_data.exit_code == 2
