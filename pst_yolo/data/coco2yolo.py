"""COCO instances JSON + images folder -> an Ultralytics (YOLO-format) detection dataset.

    from pst_yolo.data.coco2yolo import convert
    report = convert("datasets/coco", train=("annotations/instances_train2017.json", "train2017"),
                     val=("annotations/instances_val2017.json", "val2017"))
    report.data_yaml        # train with it: yolo train data=datasets/coco/data.yaml ...

Writes under ``out``::

    data.yaml                          class names in category-id order (class i = i-th smallest id)
    coco_map.json                      class index <-> category id, and the COCO JSON + images of each split
    images/<split>/...                 links to (or copies of) the source images, same relative names
    labels/<split>/....txt             YOLO labels (class cx cy w h, normalised); crowd boxes left out
    annotations/instances_<split>.json the source annotations of the converted images, with the original
                                       image and category ids and file names relative to images/<split>
                                       (what evaluation scores against)

The output follows pst_yolo.data.writer: never inside or over an input, written next to ``out`` and renamed
into place, a non-empty ``out`` that is not an earlier conversion refused unless ``overwrite=True``.

Broken input is refused with counts and examples (image files listed but missing, boxes outside the
image, unknown category ids, ...); ``skip_invalid=True`` drops the affected images instead and
reports how many were skipped for which reason.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence, Union

import cv2

from pst_yolo.data.coco_json import ImageFileError, decode_image, load_coco_json
from pst_yolo.data.coco_map import MAP_FILE, write_map
from pst_yolo.data.writer import WriterError, dataset_writer, place_file, write_json, write_text
from pst_yolo.integration.runtime import progress

PathLike = Union[str, Path]
Source = Union[PathLike, Sequence[PathLike]]  # a JSON path, or (JSON, images folder)
SPLITS = ("train", "val", "test")
LINK_MODES = ("symlink", "hardlink", "copy")

# Problems that make an image unusable; the image (and its annotations) is skipped when allowed.
MISSING = "image file missing"
FORMAT = "image format Ultralytics cannot read"
UNREADABLE = "image file unreadable"
SIZE = "image size differs from the JSON"
NO_SIZE = "no width/height in the JSON"
OUTSIDE = "box outside the image"
BAD_BOX = "invalid box (not [x, y, w, h] with w, h > 0)"
UNKNOWN_CAT = "unknown category id"
ORPHAN = "annotation for an image id not in 'images'"  # annotation-level: dropped


class CocoConversionError(ValueError):
    """The input cannot be converted as given; the message says what is wrong and how to proceed."""


@dataclass
class SplitCounts:
    images_listed: int = 0
    images_written: int = 0
    background_images: int = 0  # written with an empty label file (no non-crowd boxes)
    boxes_written: int = 0
    crowd_skipped: int = 0  # iscrowd=1: not a YOLO label, kept in the evaluation JSON
    boxes_clipped: int = 0  # past the border by at most `tolerance` pixels: clipped
    copied_instead_of_linked: int = 0
    images_skipped: Counter = field(default_factory=Counter)  # reason -> images
    annotations_skipped: Counter = field(default_factory=Counter)  # reason -> annotations


@dataclass
class ConversionReport:
    out: Path
    data_yaml: Path
    mapping: Path
    names: list[str]
    category_ids: list[int]
    splits: dict[str, SplitCounts]

    def summary(self) -> str:
        lines = [f"COCO -> YOLO: {self.out} ({len(self.names)} classes)"]
        for split, c in self.splits.items():
            lines.append(
                f"  {split}: {c.images_written}/{c.images_listed} images written "
                f"({c.background_images} without boxes), {c.boxes_written} boxes, "
                f"{c.crowd_skipped} crowd boxes left out of the labels, {c.boxes_clipped} boxes clipped "
                "to the image border"
            )
            for reason, n in sorted(c.images_skipped.items()):
                lines.append(f"    skipped {n} image(s): {reason}")
            for reason, n in sorted(c.annotations_skipped.items()):
                lines.append(f"    skipped {n} annotation(s): {reason}")
            if c.copied_instead_of_linked:
                lines.append(f"    {c.copied_instead_of_linked} image(s) copied: links were not possible")
        lines.append(f"  data: {self.data_yaml}\n  class index <-> category id: {self.mapping}")
        return "\n".join(lines)


@dataclass
class _Image:
    info: dict
    src: Path | None
    rel: str
    annotations: list
    problems: list  # (reason, detail)
    width: int = 0
    height: int = 0


def _default_images(json_path: Path) -> Path:
    """COCO's layout: annotations/instances_val2017.json next to val2017/ or images/val2017/."""
    stem = json_path.stem.split("_", 1)[-1]  # instances_val2017 -> val2017
    root = json_path.parent.parent
    for cand in (root / stem, root / "images" / stem, json_path.parent / stem, json_path.parent / "images"):
        if cand.is_dir():
            return cand
    raise CocoConversionError(
        f"no images folder given for {json_path} and none found at {root / stem} or "
        f"{root / 'images' / stem}: give the (JSON, images folder) pair"
    )


def _pairs(source: Source | Sequence[Source] | None) -> list[tuple[Path, Path]]:
    """Normalise: a JSON path, a (JSON, images) pair, or a list of either."""
    if source is None:
        return []
    if isinstance(source, (str, Path)):
        return [(Path(source), _default_images(Path(source)))]
    items = list(source)
    if len(items) == 2 and all(isinstance(x, (str, Path)) for x in items) and Path(items[1]).suffix.lower() != ".json":
        return [(Path(items[0]), Path(items[1]))]
    out = []
    for item in items:
        out += _pairs(item)
    return out


def _rel_name(file_name: str) -> str | None:
    p = PurePosixPath(str(file_name).replace("\\", "/"))
    if p.is_absolute() or (len(str(file_name)) > 1 and str(file_name)[1] == ":"):
        return p.name
    if ".." in p.parts:
        return None
    return p.as_posix()


def _source_file(file_name: str, images: Path) -> Path:
    """The file an image entry names: absolute, relative to the images folder, or its last part there."""
    name = Path(file_name)
    src = name if name.is_absolute() else images / name
    if not src.is_file() and not name.is_absolute() and (images / name.name).is_file():
        src = images / name.name
    return src


def _decoded_sizes(imgs, images: Path, img_formats: set, json_path: Path) -> dict[int, tuple[int, int] | str]:
    """Decode every listed image that exists (OpenCV, in threads): ``{id(_Image): (width, height) or the
    reason it cannot be decoded}``. A full decode, not a header read: truncated files are found too."""
    from concurrent.futures import ThreadPoolExecutor

    def size(img: _Image) -> tuple[int, tuple[int, int] | str | None]:
        src = _source_file(img.info["file_name"], images)
        if not src.is_file() or src.suffix.lower().lstrip(".") not in img_formats:
            return id(img), None
        try:
            h, w = decode_image(src, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION).shape[:2]
        except ImageFileError as e:
            return id(img), str(e)
        return id(img), (w, h)

    imgs = list(imgs)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # OpenCV decodes without the GIL
        return dict(progress(pool.map(size, imgs), desc=f"checking {json_path.name}", total=len(imgs)))


def _scan(
    json_path: Path,
    images: Path,
    prefix: str,
    verify: bool,
    tolerance: float,
    img_formats: set,
    categories: dict[int, str],
) -> tuple[dict, list[_Image], Counter]:
    """Read one (JSON, images) pair and find every problem in it, writing nothing."""
    if not images.is_dir():
        raise CocoConversionError(f"images folder not found: {images} (paired with {json_path})")
    data, _ = load_coco_json(json_path, error=CocoConversionError)
    for c in data["categories"]:
        cid, name = c.get("id"), str(c.get("name", c.get("id")))
        if not isinstance(cid, int):
            raise CocoConversionError(f"{json_path}: category {c} has no integer id")
        if categories.setdefault(cid, name) != name:
            raise CocoConversionError(
                f"category id {cid} is {categories[cid]!r} in one file and {name!r} in "
                f"{json_path}: the files are from different datasets"
            )
    own_cats = {c["id"] for c in data["categories"]}
    ids = [im.get("id") for im in data["images"]]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        raise CocoConversionError(f"{json_path}: image ids must be unique integers")
    by_id: dict[int, _Image] = {}
    seen_rel: dict[str, int] = {}
    for im in data["images"]:
        fname = im.get("file_name")
        rel = _rel_name(fname) if fname else None
        if rel is None:
            raise CocoConversionError(
                f"{json_path}: image id {im['id']} has file_name {fname!r}; it must be a "
                "path inside the images folder (no '..') or an absolute path"
            )
        label_key = str(PurePosixPath(rel).with_suffix("")).lower()
        if label_key in seen_rel:
            raise CocoConversionError(
                f"{json_path}: images {seen_rel[label_key]} and {im['id']} would share the "
                f"label file of {rel!r} (same name apart from the extension)"
            )
        seen_rel[label_key] = im["id"]
        by_id[im["id"]] = _Image(info=im, src=None, rel=f"{prefix}{rel}", annotations=[], problems=[])
    orphans = Counter()
    for a in data.get("annotations", []):
        img = by_id.get(a.get("image_id"))
        if img is None:
            orphans[ORPHAN] += 1
        else:
            img.annotations.append(a)

    sizes = _decoded_sizes(by_id.values(), images, img_formats, json_path) if verify else {}
    for img in by_id.values():
        im = img.info
        src = _source_file(im["file_name"], images)
        w, h = im.get("width"), im.get("height")
        if not src.is_file():
            img.problems.append((MISSING, str(src)))
        elif src.suffix.lower().lstrip(".") not in img_formats:
            img.problems.append((FORMAT, str(src)))
        elif verify:
            decoded = sizes[id(img)]
            if isinstance(decoded, str):
                img.problems.append((UNREADABLE, decoded))
            else:
                fw, fh = decoded
                if w is None or h is None:
                    w, h = fw, fh
                elif (w, h) != (fw, fh):
                    img.problems.append((SIZE, f"{src} is {fw}x{fh}, JSON says {w}x{h}"))
        if not img.problems and (
            not isinstance(w, (int, float)) or not isinstance(h, (int, float)) or w <= 0 or h <= 0
        ):
            img.problems.append((NO_SIZE, f"image id {im['id']}"))
        img.src, img.width, img.height = src, int(w or 0), int(h or 0)
        if img.problems:
            continue
        for a in img.annotations:
            box = a.get("bbox")
            if a.get("category_id") not in own_cats:
                img.problems.append((UNKNOWN_CAT, f"annotation {a.get('id')} has category {a.get('category_id')!r}"))
                continue
            if not (
                isinstance(box, (list, tuple))
                and len(box) == 4
                and all(isinstance(v, (int, float)) for v in box)
                and box[2] > 0
                and box[3] > 0
            ):
                img.problems.append((BAD_BOX, f"annotation {a.get('id')}: {box!r}"))
                continue
            x, y, bw, bh = box
            if x < -tolerance or y < -tolerance or x + bw > img.width + tolerance or y + bh > img.height + tolerance:
                img.problems.append(
                    (OUTSIDE, f"annotation {a.get('id')}: {box} in a {img.width}x{img.height} image {img.src.name}")
                )
    return data, list(by_id.values()), orphans


def _place(src: Path, dst: Path, mode: str) -> bool:
    """Link or copy; returns False when a link was asked for but a copy was made."""
    return place_file(src, dst, mode)


def convert(
    out: PathLike,
    train: Source | Sequence[Source] | None = None,
    val: Source | Sequence[Source] | None = None,
    test: Source | Sequence[Source] | None = None,
    mode: str = "symlink",
    skip_invalid: bool = False,
    overwrite: bool = False,
    verify_images: bool = True,
    tolerance: float = 1.0,
    verbose: bool = True,
) -> ConversionReport:
    """Convert COCO (instances JSON, images folder) pairs into an Ultralytics dataset under ``out``.

    Args:
        out: output folder.
        train, val, test: per split, a JSON path (images folder found the COCO way: ``annotations/
            instances_val2017.json`` -> ``val2017/``), a ``(JSON, images folder)`` pair, or a list of
            them (merged; each pair's images go to a sub-folder named after its JSON). ``val`` is required.
        mode: ``symlink`` (default), ``hardlink`` or ``copy`` the images (links fall back to copies).
        skip_invalid: drop images with problems (counted in the report) instead of refusing.
        overwrite: replace an earlier conversion in ``out`` (only the files it wrote go), or write into a
            folder with other files (kept; a file of the same name as one of ours is refused). Without it,
            a non-empty ``out`` is refused. ``out`` may not be, contain or lie inside an input.
        verify_images: open every image header to check its size against the JSON (and fill
            missing sizes); off = trust the JSON.
        tolerance: boxes may run past the border by this many pixels (clipped); more is an error.

    Returns:
        :class:`ConversionReport` with the paths written and per-split counts.
    """
    if mode not in LINK_MODES:
        raise CocoConversionError(f"mode must be one of {', '.join(LINK_MODES)}, got {mode!r}")
    sources = {s: _pairs(v) for s, v in (("train", train), ("val", val), ("test", test)) if v is not None}
    if not sources.get("val"):
        raise CocoConversionError("a val split is required (the COCO JSON that evaluation scores against)")
    inputs = [p for pairs in sources.values() for pair in pairs for p in pair]
    # The target is checked first (not a source, not someone else's folder); then everything is read and
    # checked before anything is written; the dataset is written next to the target and renamed into place.
    try:
        with dataset_writer(
            out, "coco2yolo", sources=inputs, overwrite=overwrite, replace_own=False, derived=("labels/*.cache",)
        ) as w:
            scan = _scan_all(sources, verify_images, tolerance, skip_invalid, verbose)
            report = _write(w.tmp, scan, mode, verbose)
    except WriterError as e:
        raise CocoConversionError(str(e)) from None
    out = Path(out)
    report.out, report.data_yaml, report.mapping = out, out / "data.yaml", out / MAP_FILE
    if verbose:
        print(report.summary())
    return report


@dataclass
class _Scan:
    """Everything read from the sources: per split, (JSON path, images folder, JSON data, images)."""

    sources: dict[str, list[tuple[Path, Path]]]
    entries: dict[str, list]
    categories: dict[int, str]
    counts: dict[str, SplitCounts]


def _scan_all(
    sources: dict[str, list[tuple[Path, Path]]],
    verify_images: bool,
    tolerance: float,
    skip_invalid: bool,
    verbose: bool,
) -> _Scan:
    """Read every JSON and check every image; refuse broken input (with counts and examples) unless skipped."""
    from ultralytics.data.utils import IMG_FORMATS

    categories: dict[int, str] = {}
    scanned: dict[str, list] = {}
    counts = {s: SplitCounts() for s in sources}
    problems: Counter = Counter()
    examples: dict[str, str] = {}
    for split, pairs in sources.items():
        stems = Counter(p[0].stem for p in pairs)
        for n, (json_path, images) in enumerate(pairs):
            prefix = (
                ""
                if len(pairs) == 1
                else (f"{json_path.stem}/" if stems[json_path.stem] == 1 else f"{n}_{json_path.stem}/")
            )
            data, imgs, orphans = _scan(json_path, images, prefix, verify_images, tolerance, IMG_FORMATS, categories)
            scanned.setdefault(split, []).append((json_path, images, data, imgs))
            counts[split].images_listed += len(imgs)
            counts[split].annotations_skipped.update(orphans)
            problems.update(orphans)
            if orphans:
                examples.setdefault(ORPHAN, f"{orphans[ORPHAN]} in {json_path}")
            for img in imgs:
                for reason, detail in img.problems:
                    problems[reason] += 1
                    examples.setdefault(reason, detail)
        ids = Counter(img.info["id"] for _, _, _, imgs in scanned[split] for img in imgs)
        dup = [i for i, n in ids.items() if n > 1]
        if dup and split == "val":
            raise CocoConversionError(
                f"the val JSON files share image ids (e.g. {dup[:3]}): evaluation needs one "
                "id per image; give one val file or renumber the images"
            )
    if problems and not skip_invalid:
        detail = "; ".join(f"{n} x {reason} (e.g. {examples[reason]})" for reason, n in problems.most_common())
        raise CocoConversionError(
            f"refusing to convert broken input: {detail}. Fix the JSON/images, or pass "
            "skip_invalid=True (CLI: skip=true) to leave those images out; the report counts them"
        )
    names = [categories[c] for c in sorted(categories)]
    if len(set(names)) != len(names) and verbose:
        print(
            "warning: some categories share a name; evaluation must use the coco_map.json (class_map=), not the names"
        )
    return _Scan(sources=sources, entries=scanned, categories=categories, counts=counts)


def _label_lines(img: _Image, index: dict[int, int], c: SplitCounts) -> list[str]:
    """YOLO label lines of one image (crowd boxes left out, boxes clipped to the image)."""
    lines = []
    for a in img.annotations:
        if a.get("iscrowd"):
            c.crowd_skipped += 1
            continue
        x, y, bw, bh = (float(v) for v in a["bbox"])
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + bw, img.width), min(y + bh, img.height)
        if (x0, y0, x1, y1) != (x, y, x + bw, y + bh):
            c.boxes_clipped += 1
        if x1 <= x0 or y1 <= y0:
            c.annotations_skipped["box inside the border tolerance only"] += 1
            continue
        lines.append(
            f"{index[a['category_id']]} {(x0 + x1) / 2 / img.width:.6f} "
            f"{(y0 + y1) / 2 / img.height:.6f} {(x1 - x0) / img.width:.6f} "
            f"{(y1 - y0) / img.height:.6f}\n"
        )
    return lines


def _write(out: Path, scan: _Scan, mode: str, verbose: bool) -> ConversionReport:
    """Write images, labels, per-split COCO JSON, coco_map.json and data.yaml under ``out`` (a new folder)."""
    cat_ids = sorted(scan.categories)
    names = [scan.categories[c] for c in cat_ids]
    index = {c: i for i, c in enumerate(cat_ids)}
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    map_splits, sources_doc = {}, {}
    for split, entries in scan.entries.items():
        c = scan.counts[split]
        eval_images, eval_anns = [], []
        ids = Counter(img.info["id"] for _, _, _, imgs in entries for img in imgs)
        mergeable = all(n == 1 for n in ids.values())
        for json_path, images, _, imgs in entries:
            for img in progress(imgs, desc=f"writing {split} ({json_path.name})", total=len(imgs)):
                if img.problems:
                    for reason in dict.fromkeys(r for r, _ in img.problems):
                        c.images_skipped[reason] += 1
                    continue
                if not _place(img.src, out / "images" / split / img.rel, mode):
                    c.copied_instead_of_linked += 1
                lines = _label_lines(img, index, c)
                label = (out / "labels" / split / img.rel).with_suffix(".txt")
                label.parent.mkdir(parents=True, exist_ok=True)
                write_text(label, "".join(lines))
                c.images_written += 1
                c.boxes_written += len(lines)
                c.background_images += not lines
                eval_images.append({**img.info, "file_name": img.rel, "width": img.width, "height": img.height})
                eval_anns += img.annotations
            sources_doc.setdefault(split, []).append(
                {"annotations": str(json_path.resolve()), "images": str(images.resolve())}
            )
        if not mergeable:  # only train/test get here: val refused by the scan
            if verbose:
                print(
                    f"note: the {split} JSON files share image ids, so no merged "
                    f"annotations/instances_{split}.json is written (it is not needed for training)"
                )
            continue
        ann_path = out / "annotations" / f"instances_{split}.json"
        first = entries[0][2]
        doc = {
            "info": {**(first.get("info") or {}), "converted_by": "pst-yolo coco2yolo"},
            "licenses": first.get("licenses", []),
            "images": eval_images,
            "annotations": eval_anns,
            "categories": [{"id": cid, "name": scan.categories[cid]} for cid in cat_ids],
        }
        write_json(ann_path, doc)
        map_splits[split] = [{"annotations": ann_path, "images": out / "images" / split}]
    mapping = write_map(out / MAP_FILE, names, cat_ids, map_splits, source="pst-yolo coco2yolo", sources=sources_doc)
    data_yaml = out / "data.yaml"
    lines = [
        "# written by pst-yolo coco2yolo; dataset root = this file's folder",
        "# class i = i-th smallest COCO category id (see coco_map.json)",
    ]
    lines += [f"{split}: images/{split}" for split in scan.sources]
    lines.append("names:")
    lines += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
    write_text(data_yaml, "\n".join(lines) + "\n")
    return ConversionReport(
        out=out, data_yaml=data_yaml, mapping=mapping, names=names, category_ids=cat_ids, splits=scan.counts
    )
