"""Config by section: every default is written once, in ``ssdcli.config``.

Typed settings built from a recipe section (``from_config``) have no defaults of their own, so a
default changed in the recipe schema reaches every user of the settings.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from ssdcli.config import AugmentConfig, ModelConfig, PostprocessConfig
from ssdcli.data.pipeline.transforms import AugmentSettings
from ssdcli.model.backbone import BackboneOptions
from ssdcli.postprocess import PostprocessSettings

PACKAGE = Path(__file__).resolve().parents[2] / "ssdcli"


def _dataclasses_with_from_config() -> list[tuple[str, ast.ClassDef]]:
    """Every ``@dataclass`` of the package with a ``from_config`` method, read from the source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if any(d.startswith("dataclass") for d in decorators) and "from_config" in methods:
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.name}", node))
    return found


def test_settings_built_from_a_section_declare_no_defaults() -> None:
    found = _dataclasses_with_from_config()
    names = {name.rsplit(":", 1)[1] for name, _ in found}
    assert {"PostprocessSettings", "AugmentSettings", "BackboneOptions"} <= names
    for name, node in found:
        with_default = [
            ast.unparse(item.target)
            for item in node.body
            if isinstance(item, ast.AnnAssign) and item.value is not None
        ]
        assert with_default == [], f"{name} writes defaults of its own: {with_default}"


@pytest.mark.parametrize(
    ("settings", "section", "renamed"),
    [
        (PostprocessSettings, PostprocessConfig, {}),
        (AugmentSettings, AugmentConfig, {}),
        (BackboneOptions, ModelConfig, {"weights": "backbone_weights"}),
    ],
)
def test_settings_take_every_value_from_their_section(settings, section, renamed) -> None:
    built = settings.from_config(section())
    for field in dataclasses.fields(settings):
        assert field.default is dataclasses.MISSING
        assert field.default_factory is dataclasses.MISSING
        expected = getattr(section(), renamed.get(field.name, field.name))
        assert getattr(built, field.name) == expected


def test_defaults_are_the_recipe_defaults_and_follow_a_changed_section() -> None:
    assert PostprocessSettings.defaults() == PostprocessSettings(0.01, 0.45, 200, 400)
    assert AugmentSettings.defaults() == AugmentSettings(True, True, 4.0, True, True)
    changed = PostprocessConfig(nms_iou=0.4, max_detections=50)
    assert PostprocessSettings.from_config(changed) == PostprocessSettings(0.01, 0.4, 50, 400)
    # An exported file's stored dict: missing keys take the section's defaults.
    assert PostprocessSettings.from_mapping({"nms_iou": 0.3}).nms_iou == 0.3
    assert PostprocessSettings.from_mapping({}) == PostprocessSettings.defaults()
