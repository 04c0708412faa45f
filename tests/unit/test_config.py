"""Recipes: YAML loading, overrides, validation messages, shipped names, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ssdcli.config import (
    PriorsConfig,
    Recipe,
    dump_recipe,
    find_recipe,
    load_recipe,
    override_recipe,
    recipe_from_dict,
    recipe_to_dict,
    shipped_recipes,
)
from ssdcli.errors import RecipeError

VOC_SIZES_PX = [(30, 60), (60, 111), (111, 162), (162, 213), (213, 264), (264, 315)]


def flat(sizes: list[tuple[float, float]]) -> list[float]:
    return [value for pair in sizes for value in pair]


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_ssd300_voc_training_settings() -> None:
    recipe = Recipe()
    assert recipe.train.lr == 0.001 and recipe.train.iterations == 120000
    assert recipe.train.milestones == [80000, 100000] and recipe.train.gamma == 0.1
    assert recipe.postprocess.nms_iou == 0.45 and recipe.postprocess.max_detections == 200
    # Default scales at 300 px are ssd.pytorch's VOC sizes.
    sizes = recipe.priors.sizes_px((300, 300), 6)
    assert flat(sizes) == pytest.approx(flat(VOC_SIZES_PX))


def test_exponent_float_reads_as_number(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 5E-4\n  grad_clip: 2e+1\n")
    recipe = load_recipe(path)
    assert recipe.train.lr == 0.001
    assert recipe.train.weight_decay == 0.0005
    assert recipe.train.grad_clip == 20.0


def test_exponent_float_in_a_string_field_stays_a_number(tmp_path: Path) -> None:
    # A string field must not silently accept `1e-3`: it is a number, so validation fails.
    path = write(tmp_path, "train:\n  best_metric: 1e-3\n")
    with pytest.raises(RecipeError, match=r"train\.best_metric: invalid value 0\.001 \(float\)"):
        load_recipe(path)


def test_set_overrides_are_yaml_values_and_beat_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0.1\n  amp: bf16\n")
    recipe = load_recipe(
        path,
        ["train.lr=1e-2", "model.size_hw=[512, 512]", "data.class_names=[a, b]", "train.amp=off"],
    )
    assert recipe.train.lr == 0.01
    assert recipe.model.size_hw == (512, 512)
    assert recipe.data.class_names == ["a", "b"]
    assert recipe.train.amp == "off"


def test_explicit_options_beat_set() -> None:
    recipe = load_recipe("voc300", ["data.batch_size=8"])
    assert override_recipe(recipe, {"data.batch_size": 4}).data.batch_size == 4
    assert recipe.data.batch_size == 8  # frozen: the original is unchanged


def test_setting_epochs_clears_iterations() -> None:
    recipe = load_recipe("coco300", ["train.epochs=12"])
    assert recipe.train.epochs == 12 and recipe.train.iterations is None


def test_unknown_key_suggests_the_closest_valid_key(tmp_path: Path) -> None:
    path = write(tmp_path, "priors:\n  clipp: true\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key priors.clipp" in message and "did you mean priors.clip?" in message
    assert "\n" not in message


def test_unknown_section_suggests_a_section(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="unknown key trian; did you mean train"):
        load_recipe(write(tmp_path, "trian:\n  lr: 0.1\n"))


def test_wrong_type_names_key_path_and_expected_type(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, "priors:\n  clip: maybe\n"))
    message = str(info.value)
    assert "priors.clip" in message and "expected bool" in message and "'maybe'" in message
    assert "(and " not in message  # one problem per union member is still one problem
    with pytest.raises(RecipeError, match=r"priors\.aspect_ratios\[1\]\[0\].*expected float"):
        load_recipe("voc300", ["priors.aspect_ratios=[[2], [x, 3], [2, 3], [2, 3], [2], [2]]"])
    with pytest.raises(RecipeError, match=r"model\.input\.channel_order.*one of rgb, bgr"):
        load_recipe(None, ["model.input.channel_order=hsv"])


def test_lengths_are_checked_against_aspect_ratios() -> None:
    with pytest.raises(RecipeError, match="steps has 2 values but aspect_ratios has 6 levels"):
        load_recipe("voc300", ["priors.steps=[8, 16]"])
    with pytest.raises(RecipeError, match="scales has 6 values .* give 7 values"):
        load_recipe(None, ["priors.scales=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]"])


def test_both_prior_size_forms_are_rejected() -> None:
    with pytest.raises(ValidationError, match="either scales or min_sizes"):
        PriorsConfig(scales=[0.1] * 7, min_sizes=[1.0] * 6, max_sizes=[2.0] * 6)


def test_scales_and_pixel_sizes_give_the_same_canonical_sizes() -> None:
    pixels = PriorsConfig(min_sizes=[30, 60], max_sizes=[60, 90], aspect_ratios=[[2], [2]])
    scales = PriorsConfig(scales=[0.1, 0.2, 0.3], aspect_ratios=[[2], [2]])
    assert pixels.sizes_px((300, 300), 2) == [(30, 60), (60, 90)]
    assert flat(scales.sizes_px((300, 300), 2)) == pytest.approx([30, 60, 60, 90])
    # Non-square input: scales are fractions of the shorter side.
    assert flat(scales.sizes_px((300, 600), 2)) == pytest.approx([30, 60, 60, 90])
    with pytest.raises(RecipeError, match="model gives 3 feature maps"):
        scales.sizes_px((300, 300), 3)


def test_setting_scales_replaces_the_recipe_pixel_sizes() -> None:
    recipe = load_recipe("voc300", ["priors.scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]"])
    assert recipe.priors.min_sizes is None
    assert flat(recipe.priors.sizes_px((300, 300), 6)) == pytest.approx(flat(VOC_SIZES_PX))


def test_missing_file_names_path_and_shipped_recipes(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RecipeError) as info:
        load_recipe(missing)
    message = str(info.value)
    assert str(missing) in message and "voc300" in message and "voc512" in message


def test_misspelt_name_gets_a_suggestion() -> None:
    with pytest.raises(RecipeError, match="did you mean voc512"):
        find_recipe("voc521")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"r\.yaml: invalid YAML at line \d+, column \d+"):
        load_recipe(write(tmp_path, "train:\n  lr: [1, 2\n"))


def test_bad_set_syntax() -> None:
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        load_recipe("voc300", ["train.lr"])
    with pytest.raises(RecipeError, match="priors.steps is a value"):
        load_recipe("voc300", ["priors.steps.deep=1"])


def test_shipped_names_resolve_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert {"voc300", "voc512", "coco300"} <= set(shipped_recipes())
    assert find_recipe("voc512").name == "voc512.yaml"
    assert find_recipe("voc512.yaml").is_absolute()
    assert load_recipe("voc512").model.size_hw == (512, 512)


def test_shipped_recipes_hold_the_paper_settings() -> None:
    voc300, voc512, coco300 = (load_recipe(n) for n in ("voc300", "voc512", "coco300"))
    assert voc300.priors.steps == [8, 16, 32, 64, 100, 300]
    assert voc300.priors.sizes_px((300, 300), 6) == VOC_SIZES_PX
    assert voc300.priors.aspect_ratios == [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    assert voc300.model.input.mean == (123, 117, 104) and voc300.model.input.std == (1, 1, 1)
    assert len(voc300.data.class_names or []) == 20 and voc300.data.train_split == "trainval"
    assert voc512.priors.num_levels == 7 and voc512.model.extra_levels == 5
    assert voc512.priors.sizes_px((512, 512), 7)[0] == (35.84, 76.8)
    assert voc512.priors.steps == [8, 16, 32, 64, 128, 256, 512]
    assert len(coco300.data.class_names or []) == 80 and coco300.data.format == "coco"
    assert coco300.priors.min_sizes == [21, 45, 99, 153, 207, 261]
    assert coco300.train.iterations == 400000 and coco300.train.milestones == [280000, 360000]


@pytest.mark.parametrize("name", ["voc300", "voc512", "coco300"])
def test_dump_round_trip(name: str, tmp_path: Path) -> None:
    recipe = load_recipe(name, ["train.lr=2.5e-4", "train.amp=off"])
    path = write(tmp_path, dump_recipe(recipe))
    again = load_recipe(path)
    assert again == recipe
    assert recipe_from_dict(recipe_to_dict(recipe), "dict") == recipe


def test_round_trip_of_defaults_keeps_default_scales(tmp_path: Path) -> None:
    again = load_recipe(write(tmp_path, dump_recipe(Recipe())))
    assert again == Recipe() and again.priors.scales is not None


def test_recipes_are_frozen() -> None:
    recipe = Recipe()
    with pytest.raises(ValueError, match="frozen"):
        recipe.train.lr = 0.1  # type: ignore[misc]
