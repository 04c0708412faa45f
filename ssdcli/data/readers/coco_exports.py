"""What exported COCO files do differently: a parent category, image ids restarting per split.

Both are decided over all the files of a data set (``split -> (path, parsed JSON)``), whose
``categories`` were already checked (dicts with an int ``id`` and a str ``name``); anything else
in them may be of any type, so only hashable scalars are compared.
"""

from __future__ import annotations

from pathlib import Path


def parent_categories(loaded: dict[str, tuple[Path, dict]], categories: dict[int, str]) -> dict:
    """Category id -> note, for each category that is only the parent of the others.

    Exporters list the project as category 0 (``{"id": 0, "name": "a"}``) with every real
    class's ``supercategory`` set to its name; no annotation uses it. Making it a class would
    train a phantom class with no objects.
    """
    used = {
        _key(ann.get("category_id"))
        for _, data in loaded.values()
        for ann in data["annotations"]
        if isinstance(ann, dict)
    }
    supers: dict[str, int] = {}
    for _, data in loaded.values():
        for cat in data["categories"]:  # already checked: dicts with an int id and a str name
            parent = _key(cat.get("supercategory"))
            if isinstance(parent, str) and cat["name"] != parent:
                supers[parent] = supers.get(parent, 0) + 1
    found = {}
    for cid, name in categories.items():
        if cid not in used and name in supers and len(categories) > 1:
            found[cid] = (
                f"COCO category {cid} {name!r} is used by no annotation and is the supercategory "
                f"of the others: not a class"
            )
    return found


def _key(value: object) -> object:
    """``value`` if it can be a COCO id or name (hashable scalar), else None."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def ids_repeat(loaded: dict[str, tuple[Path, dict]]) -> bool:
    """Whether two files use the same image id (then ids are prefixed with the split)."""
    seen: set[object] = set()
    for _, data in loaded.values():
        ids = {_key(image.get("id")) for image in data["images"] if isinstance(image, dict)}
        if seen & ids:
            return True
        seen |= ids
    return False
