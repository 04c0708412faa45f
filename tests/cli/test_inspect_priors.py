"""``ssd inspect-priors``: totals from the measured model, the PNG, options and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ssdcli.cli.app import app
from ssdcli.cli.inspect_priors import parse_cells
from ssdcli.config import load_recipe
from ssdcli.errors import UsageError
from ssdcli.inspect import priors as command
from ssdcli.inspect.priors import PriorSet, prior_groups
from ssdcli.priors import build_level_specs, describe, make_priors

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
VOC300_MAPS = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def voc300_prior_set() -> PriorSet:
    """The voc300 priors from the generator alone (feature sizes given, no network built)."""
    recipe = load_recipe("voc300")
    levels = build_level_specs(recipe.priors, (300, 300), VOC300_MAPS)
    priors_P4 = make_priors(levels, (300, 300), clip=True).numpy()
    return PriorSet((300, 300), levels, describe(levels, (300, 300)), priors_P4)


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip building VGG16 in tests about options (the real path is tested above)."""
    monkeypatch.setattr(command, "measure_priors", lambda recipe: voc300_prior_set())


def test_default_is_voc300_with_8732_priors_and_a_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["inspect-priors"])
    assert result.exit_code == 0, result.output
    assert "total priors: 8732 over 6 levels" in result.stdout
    for row in ("38x38", "19x19", "10x10", "5x5", "3x3", "1x1", "5776", "2166"):
        assert row in result.stdout
    png = tmp_path / "priors.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {Path('priors.png')}" in result.stdout


def test_voc512_has_24564_priors_over_seven_measured_levels(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "p512.png"
    result = CliRunner().invoke(
        app, ["inspect-priors", str(RECIPES / "voc512.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "total priors: 24564 over 7 levels" in result.stdout
    assert "64x64" in result.stdout and "16384" in result.stdout  # 64 * 64 cells * 4 priors
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_clip_maybe_exits_2_with_one_line_naming_the_key() -> None:
    args = ["inspect-priors", str(RECIPES / "voc300.yaml"), "--set", "priors.clip=maybe"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "priors.clip" in lines[0] and "bool" in lines[0]


def test_drawing_on_an_image_with_chosen_levels_and_cells(
    tmp_path: Path, fake_measure: None
) -> None:
    import cv2

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((120, 200, 3), 90, np.uint8))
    out = tmp_path / "drawn.png"
    args = ["inspect-priors", "--image", str(photo), "--levels", "0,2", "--cells", "0,0;center"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--levels", "0,9"], "level 9 does not exist"),
        (["--levels", "a"], "expected comma-separated integers"),
        (["--cells", "20,20", "--levels", "2"], "outside level 2's 10x10 grid"),
        (["--cells", "1-2"], "expected ROW,COL"),
    ],
)
def test_bad_levels_and_cells_exit_2(
    args: list[str], expected: str, tmp_path: Path, fake_measure: None
) -> None:
    result = CliRunner().invoke(app, ["inspect-priors", *args, "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert expected in result.stderr


def test_missing_image_exits_1_naming_the_file(tmp_path: Path, fake_measure: None) -> None:
    missing = tmp_path / "no.jpg"
    result = CliRunner().invoke(app, ["inspect-priors", "--image", str(missing)])
    assert result.exit_code == 1
    assert "no.jpg" in result.stderr


def test_centre_cell_priors_of_level_0_worked_by_hand() -> None:
    # Level 0 of SSD300: 38x38 map, step 8; the centre cell (19, 19) is centred at
    # (19 + 0.5) * 8 = 156 px. Its priors: 30x30, sqrt(30 * 60) = 42.43 square,
    # 30 * sqrt(2) = 42.43 wide by 30 / sqrt(2) = 21.21 high, and the transpose.
    (group,) = prior_groups(voc300_prior_set(), [0], [None])
    root2 = 2**0.5
    sides = [(30, 30), ((30 * 60) ** 0.5,) * 2, (30 * root2, 30 / root2), (30 / root2, 30 * root2)]
    expected = [(156 - w / 2, 156 - h / 2, 156 + w / 2, 156 + h / 2) for w, h in sides]
    np.testing.assert_allclose(group.boxes_xyxy, expected, atol=1e-3)
    np.testing.assert_allclose(group.cells_xyxy, [(152, 152, 160, 160)])
    assert group.level == 0 and "38x38" in group.label


def test_parse_cells() -> None:
    assert parse_cells(None) == [None]
    assert parse_cells(["1,2;center", "3, 4"]) == [(1, 2), None, (3, 4)]
    with pytest.raises(UsageError):
        parse_cells(["-1,2"])


def _numbers(text: str) -> list[str]:
    import re

    return re.findall(r"\d+(?:\.\d+)?(?:x\d+(?:\.\d+)?)?", text)


def test_tables_keep_every_number_in_a_file(
    tmp_path: Path, fake_measure: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped to a file (no terminal, no COLUMNS), the prior table and the coverage tables keep
    every number a 400-column terminal shows; nothing is cut to an ellipsis."""
    from ssdcli.data.records import Manifest, Record

    monkeypatch.chdir(tmp_path)
    records = [
        Record.make(str(i), tmp_path / f"{i}.jpg", (300, 300), [[10, 10, 10 + 9 * i, 80]], [0])
        for i in range(1, 12)
    ]
    manifest = Manifest(["cell"], records, {"train": list(range(11))}, source=str(tmp_path))
    manifest_path = manifest.save(tmp_path / "manifest.json")
    args = ["inspect-priors", "--data", str(manifest_path), "--suggest"]
    piped = CliRunner().invoke(app, args, env={"COLUMNS": None})
    wide = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert piped.exit_code == 0 and wide.exit_code == 0, piped.output
    assert "…" not in piped.stdout
    assert max(len(line) for line in piped.stdout.splitlines()) > 80  # wider than the fallback
    assert _numbers(piped.stdout) == _numbers(wide.stdout)
    assert "8732" in piped.stdout and "300x300" in piped.stdout
