"""Recipe files: finding shipped recipes, YAML reading/writing, ``--set`` overrides, error messages.

The pydantic models live in :mod:`ssdcli.config`; this module only moves plain data and turns
validation errors into one-line :class:`~ssdcli.errors.RecipeError` messages. No torch import.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from ssdcli.errors import RecipeError

_REPO_RECIPES = Path(__file__).resolve().parent.parent / "recipes"


class _RecipeLoader(yaml.SafeLoader):
    """Safe loader that also reads exponent floats without a dot (``1e-3``) as numbers.

    PyYAML follows YAML 1.1, whose float pattern needs a ``.``, so plain ``1e-3`` would be a string.
    """


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

# Keys where setting one explicitly (non-null) in a later layer clears the others.
_EXCLUSIVE: dict[str, tuple[str, ...]] = {
    "train.epochs": ("train.iterations",),
    "train.iterations": ("train.epochs",),
    "priors.scales": ("priors.min_sizes", "priors.max_sizes"),
    "priors.min_sizes": ("priors.scales",),
    "priors.max_sizes": ("priors.scales",),
}


def yaml_load(text: str) -> Any:
    """Parse YAML with ``yaml.safe_load`` semantics plus ``1e-3``-style floats."""
    return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)


def yaml_dump(data: Any) -> str:
    """YAML text for plain data, keys in their given order, short lists inline."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)


def _shipped_dirs() -> list[Any]:
    """Folders holding shipped recipes: the packaged ``ssdcli/recipes`` first, then the repo's."""
    dirs: list[Any] = []
    packaged = resources.files("ssdcli") / "recipes"
    if packaged.is_dir():
        dirs.append(packaged)
    if _REPO_RECIPES.is_dir():
        dirs.append(_REPO_RECIPES)
    return dirs


def shipped_recipes() -> list[str]:
    """Names of the shipped recipes (file stems), sorted."""
    names = {
        entry.name.rsplit(".", 1)[0]
        for folder in _shipped_dirs()
        for entry in folder.iterdir()
        if entry.name.endswith((".yaml", ".yml"))
    }
    return sorted(names)


def find_recipe(name_or_path: str | Path) -> Path:
    """Resolve a recipe argument: an existing file path, else a shipped recipe name.

    Raises:
        RecipeError: neither a file nor a shipped name; lists the shipped names.
    """
    from ssdcli.paths import RECIPE_FILE, path_message, what_is

    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    if path.exists():  # a directory or a device: say so rather than "not found"
        raise RecipeError(path_message("recipe", text, what_is(path), RECIPE_FILE))
    stem = text[: -len(path.suffix)] if path.suffix in (".yaml", ".yml") else text
    if "/" not in stem and "\\" not in stem:
        for folder in _shipped_dirs():
            for suffix in (".yaml", ".yml"):
                candidate = folder / f"{stem}{suffix}"
                if candidate.is_file():
                    return Path(str(candidate))
    names = shipped_recipes()
    close = difflib.get_close_matches(stem, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise RecipeError(
        f"recipe {text}: does not exist (looked at {path.resolve()}) and is not a shipped recipe; "
        f"{hint}expected a path to a .yaml file or one of: {', '.join(names) or '(none)'}"
    )


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read a recipe file into a plain dict (empty file = all defaults).

    Raises:
        RecipeError: unreadable file, invalid YAML (with line and column), or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: cannot read recipe ({error}); check the path") from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{path}: invalid YAML{where}: {problem}; fix the syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping of sections (model:, priors:, data:, ...), "
            f"not a {type(data).__name__}"
        )
    return data


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Iterable[str],
    source: str,
    typed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A deep copy of ``data`` with ``"a.b=value"`` overrides (YAML values) and typed values set.

    Setting ``train.epochs`` (non-null) clears ``train.iterations`` unless that is also set, and
    likewise for the other mutually exclusive keys (scales vs min/max sizes).
    """
    pairs: list[tuple[str, Any]] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"--set {item}: expected KEY=VALUE, e.g. --set train.lr=0.01")
        try:
            pairs.append((key, yaml_load(text) if text.strip() else None))
        except yaml.YAMLError:
            raise RecipeError(
                f"--set {item}: the value is not valid YAML; quote strings, e.g. "
                f"--set {key}='\"{text}\"'"
            ) from None
    pairs.extend((typed or {}).items())
    result = _deep_copy(data)
    explicit = {key for key, _ in pairs}
    for key, value in pairs:
        _set_path(result, key, value, source)
        if value is not None:
            for other in _EXCLUSIVE.get(key, ()):
                if other not in explicit:
                    _set_path(result, other, None, source)
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {key: _deep_copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_deep_copy(value) for value in data]
    return data


def _set_path(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise RecipeError(
                f"{source}: cannot set {key}: {where} is a value ({child!r}), not a section; "
                f"set {where} itself instead"
            )
        node = child
    node[parts[-1]] = value


def explain_validation_error(error: ValidationError, root: type[BaseModel], source: str) -> str:
    """One line for the first problem in ``error``: source, key path, what is wrong, the fix."""
    problems = error.errors()
    first = problems[0]
    loc, annotation = _walk(root, tuple(first["loc"]))
    # A value that fails every member of a union gives one problem per member, at one key.
    locs = [_walk(root, tuple(problem["loc"]))[0] for problem in problems]
    distinct = len(dict.fromkeys(locs))
    more = f" (and {distinct - 1} more problem(s))" if distinct > 1 else ""
    path = _format_loc(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        section_model = _model_of(_walk(root, loc[:-1])[1])
        valid = list(section_model.model_fields) if section_model else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        section = _format_loc(loc[:-1]) or "the top level"
        prefix = f"{_format_loc(loc[:-1])}." if loc[:-1] else ""
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        return (
            f"{source}: unknown key {path}; {hint}valid keys in {section}: "
            f"{', '.join(valid)}. Fix: rename or remove it{more}"
        )
    message = str(first["msg"]).removeprefix("Value error, ")
    if kind == "value_error" or loc == () or annotation is None:
        return f"{source}: {path or 'recipe'}: {message}{more}"
    if kind in ("missing", "too_short", "too_long") and isinstance(loc[-1], int):
        path = _format_loc(loc[:-1])
        expected = _type_name(_walk(root, loc[:-1])[1])
        return (
            f"{source}: {path}: wrong number of values; expected {expected}. "
            f"Fix: give {path} that many values{more}"
        )
    expected = _type_name(annotation)
    given = first.get("input")
    given_text = f"{given!r} ({type(given).__name__})" if given is not None else "null"
    detail = f": {message[:1].lower()}{message[1:]}" if locs.count(loc) == 1 else ""
    return (
        f"{source}: {path}: invalid value {given_text}, expected {expected}{detail}. "
        f"Fix: set {path} to {expected}{_example(annotation, path)}{more}"
    )


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(annotation: Any) -> list[Any]:
    """The non-None members of an Optional/union annotation (itself otherwise)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return [annotation]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional), or None."""
    members = _unwrap(annotation)
    return next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """Follow a pydantic error location through the models.

    Returns:
        The location without pydantic's union member tags (``"bool"``, ``"literal['wh']"``) and
        the annotation of the value there (None where the location leaves the models).
    """
    clean: list[Any] = []
    annotation: Any = root
    for part in loc:
        model = _model_of(annotation)
        if isinstance(part, str) and model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        elif isinstance(part, int) and annotation is not None:
            annotation = _item_annotation(annotation, part)
        elif isinstance(part, str) and len(_unwrap(annotation)) > 1:
            continue  # a union member tag: not a key
        else:
            annotation = None
        clean.append(part)
    return tuple(clean), annotation


def _item_annotation(annotation: Any, index: int) -> Any:
    """The annotation of item ``index`` of a list/tuple annotation (through Optional), or None."""
    container = next((m for m in _unwrap(annotation) if typing.get_args(m)), None)
    args = typing.get_args(container) if container is not None else ()
    if not args or typing.get_origin(container) not in (list, tuple):
        return None
    return args[0] if len(args) == 1 or args[-1] is Ellipsis else args[min(index, len(args) - 1)]


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        choices = typing.get_args(annotation)
        return f'"{choices[0]}"' if len(choices) == 1 else "one of " + ", ".join(map(str, choices))
    if origin in (list, tuple):
        inner = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{origin.__name__}[{inner}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section (mapping of keys)"
    return {bool: "bool (true or false)", int: "int", float: "float", str: "str"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _example(annotation: Any, path: str) -> str:
    members = _unwrap(annotation)
    first = members[0] if members else None
    if first is str:
        return " (put the value in quotes)"
    if "[" in path:  # --set addresses whole values, not list items
        return ""
    samples = {bool: "true", int: "1", float: "0.5"}
    if typing.get_origin(first) is Literal:
        return f", e.g. --set {path}={typing.get_args(first)[0]}"
    if first in samples:
        return f", e.g. --set {path}={samples[first]}"
    return ""
