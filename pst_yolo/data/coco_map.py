"""The file that ties a dataset's class indices to COCO category ids: ``coco_map.json`` next to ``data.yaml``.

Written by ``pst-yolo synth`` and ``pst-yolo coco2yolo``; read by COCO evaluation and ``pst-yolo bench`` to
score a model against the split's own COCO JSON with the original image and category ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from pst_yolo.data.writer import write_json

MAP_FILE = "coco_map.json"  # the class-index <-> category-id mapping, next to data.yaml
MAP_FORMAT = "pst-yolo/coco-map/1"


def write_map(path: Path, names: Sequence[str], category_ids: Sequence[int], splits: dict, **extra) -> Path:
    """Write the class-index <-> category-id mapping file that evaluation and ``pst-yolo bench`` read.

    ``splits``: ``{split: [{"annotations": path, "images": path}, ...]}``; paths inside ``path.parent``
    are stored relative to it, so the dataset folder can be moved.
    """
    root = path.parent.resolve()

    def rel(p) -> str:
        p = Path(p).resolve()
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return str(p)

    doc = {
        "format": MAP_FORMAT,
        "classes": [
            {"index": i, "category_id": int(c), "name": n} for i, (n, c) in enumerate(zip(names, category_ids))
        ],
        "splits": {
            s: [{"annotations": rel(e["annotations"]), "images": rel(e["images"])} for e in entries]
            for s, entries in splits.items()
        },
        **extra,
    }
    write_json(path, doc, indent=1)
    return path


def read_map(path: str | Path) -> dict:
    """Read a mapping file (``coco_map.json``); returns it with paths made absolute and
    ``class_map`` = ``{class index: category id}`` added."""
    path = Path(path)
    if path.is_dir():
        path = path / MAP_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no class mapping file at {path}; it is written by `pst-yolo synth` and "
            "`pst-yolo coco2yolo` next to data.yaml"
        )
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError):  # (the decoder's own message names neither the file nor its kind)
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != MAP_FORMAT or "classes" not in doc:
        raise ValueError(f"{path} is not a pst-yolo mapping file (expected format {MAP_FORMAT!r})")
    root = path.parent.resolve()
    doc["class_map"] = {int(c["index"]): int(c["category_id"]) for c in doc["classes"]}
    doc["names"] = [c["name"] for c in sorted(doc["classes"], key=lambda c: c["index"])]
    doc["splits"] = {
        s: [{k: (root / v).resolve() for k, v in e.items()} for e in entries]
        for s, entries in doc.get("splits", {}).items()
    }
    doc["path"] = path
    return doc
