"""Checking an Ultralytics dataset split before it is validated: every image decodes, every label line is one
Ultralytics would keep.

Ultralytics drops a corrupt image or a bad label with one log line ("ignoring corrupt image/label") and scores
the rest, so a table computed on fewer images looks like any other. ``pst-yolo compare`` refuses such a split
instead, as ``bench`` and ``evaluate`` do for their COCO JSON: the error counts the bad files and names a few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from pst_yolo.data.coco_json import ImageFileError, decode_image

PathLike = Union[str, Path]
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}


class DatasetError(ValueError):
    """A dataset split that would be scored silently on fewer images; the message names the files."""


@dataclass
class SplitProblems:
    """What is wrong in a split: ``(file, reason)`` per bad image or label file."""

    images: int = 0
    bad: list = field(default_factory=list)

    def message(self, where: str) -> str:
        shown = "; ".join(f"{path}: {why}" for path, why in self.bad[:3])
        more = f" (and {len(self.bad) - 3} more)" if len(self.bad) > 3 else ""
        return (
            f"{where}: {len(self.bad)} of {self.images} image(s) or their labels cannot be used, e.g. {shown}{more}. "
            "Ultralytics would skip them and score the rest; fix or remove them"
        )


def _label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def label_problem(text: str, nc: int) -> Optional[str]:
    """Why a label file's content is one Ultralytics would drop (None if it is fine): a line whose class is not
    an integer in [0, nc), whose numbers are not finite, lie outside [0, 1], or give a box no width or height."""
    for n, line in enumerate(text.splitlines(), 1):
        values = line.split()
        if not values:
            continue
        try:
            cls, numbers = float(values[0]), [float(v) for v in values[1:]]
        except ValueError:
            return f"line {n} is not numbers: {line.strip()[:60]!r}"
        if not cls.is_integer() or not 0 <= cls < nc:
            return f"line {n}: class {values[0]} is not one of the dataset's {nc} classes (0..{nc - 1})"
        if len(numbers) < 4:
            return f"line {n}: {len(numbers)} coordinates, a box needs 4 (x y w h, normalised)"
        if not all(math.isfinite(v) for v in numbers):
            return f"line {n}: a coordinate is not a finite number"
        if any(v < 0 or v > 1 for v in numbers[:4]):  # (pose keypoints carry visibility flags 0..2 later on)
            return f"line {n}: coordinates must lie in [0, 1] (normalised), got {' '.join(values[1:5])}"
        if len(numbers) == 4 and (numbers[2] <= 0 or numbers[3] <= 0):
            return f"line {n}: a box of width {values[3]} and height {values[4]} (both must be > 0)"
    return None


def _split_images(root: Path, entry: Any) -> list[Path]:
    """The image files a data.yaml split names: folders (searched recursively), .txt lists, single files."""
    entries = entry if isinstance(entry, (list, tuple)) else [entry]
    out: list[Path] = []
    for e in entries:
        p = Path(str(e))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt" and p.is_file():
            for line in p.read_text().splitlines():
                line = line.strip()
                if line:
                    f = Path(line)
                    out.append(f if f.is_absolute() else p.parent / f)
        elif p.exists():
            out.append(p)
        else:
            raise DatasetError(f"{p} (a split of the dataset) does not exist")
    return out


def check_detection_split(data_yaml: PathLike, split: str = "val") -> SplitProblems:
    """Check every image of ``split`` of an Ultralytics detection ``data.yaml`` and its label file; refuse with
    :class:`DatasetError` if any is bad. A YAML that names no local split (a dataset Ultralytics downloads, such
    as ``coco8.yaml``) is left to Ultralytics."""
    import yaml

    path = Path(data_yaml)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DatasetError(f"data={path}: not a readable YAML file ({e})") from None
    if not isinstance(doc, dict) or split not in doc:
        raise DatasetError(f"data={path} has no {split}: split (a data.yaml lists train:, val: and names:)")
    root = Path(str(doc.get("path") or path.parent))
    root = root if root.is_absolute() else path.parent / root
    if not root.exists():
        return SplitProblems()  # not here yet: Ultralytics downloads it (coco8.yaml and friends)
    names = doc.get("names")
    nc = len(names) if isinstance(names, (list, dict)) else int(doc.get("nc") or 0)
    problems = SplitProblems()
    for image in _split_images(root, doc[split]):
        problems.images += 1
        try:
            decode_image(image)
        except ImageFileError as e:
            problems.bad.append((image, str(e).removeprefix(f"{image}: ")))
            continue
        label = _label_path(image)
        if label.is_file():  # no label file: an image without objects, as Ultralytics reads it
            try:
                why = label_problem(label.read_text(), nc)
            except (OSError, UnicodeDecodeError) as e:
                why = f"unreadable ({e})"
            if why:
                problems.bad.append((label, why))
    if problems.images == 0:
        raise DatasetError(f"data={path}: the {split} split has no images")
    if problems.bad:
        raise DatasetError(problems.message(f"data={path} split {split}"))
    return problems


def check_classification_split(root: PathLike, split: str = "val") -> SplitProblems:
    """Every image of an ImageFolder split (``root/split/<class>/*``) decodes; refuse with :class:`DatasetError`
    otherwise."""
    folder = Path(root) / split
    problems = SplitProblems()
    if not folder.is_dir():  # (Ultralytics would validate on another split instead, with a log line)
        raise DatasetError(
            f"data={root} has no {split}/ folder; an ImageFolder root holds train/ and {split}/, one folder per class"
        )
    for image in sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES):
        problems.images += 1
        try:
            decode_image(image)
        except ImageFileError as e:
            problems.bad.append((image, str(e).removeprefix(f"{image}: ")))
    if problems.bad:
        raise DatasetError(problems.message(f"data={root} split {split}"))
    return problems
