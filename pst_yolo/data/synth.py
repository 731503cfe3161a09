"""Deterministic synthetic detection dataset, written in both YOLO and COCO formats.

Five object classes that differ in outline *and* texture (disc, square, triangle, ring, cross) over
varied backgrounds (gradients, stripes, blotches, noise), with clutter that is not an object
(irregular blobs, thin lines), partial occlusion (every labelled object stays at least
``min_visible`` visible; its box is the box of its visible pixels) and sizes spanning COCO's
small / medium / large area ranges (areas < 32², 32²..96², > 96² pixels, measured in the
image's own pixels). Small objects are a few stride-8 cells wide: their class shows only in
texture and outline, so the detector has to fuse fine and coarse features.

Everything is drawn with OpenCV from NumPy generators seeded per image (``[seed, split, index]``),
so the same arguments give byte-identical files, and the val split does not change when only the
size of the train split does.

Layout written under ``out``::

    data.yaml                          Ultralytics dataset file (no absolute paths: movable)
    coco_map.json                      class index <-> COCO category id, and the COCO JSON of each split
    images/{train,val}/*.png
    labels/{train,val}/*.txt           YOLO labels
    annotations/instances_{train,val}.json   COCO instances (category ids 1..5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from pst_yolo.data.coco_map import MAP_FILE, write_map
from pst_yolo.data.writer import (
    MAX_IMGSZ,
    check_disk,
    check_memory,
    dataset_writer,
    write_image,
    write_json,
    write_text,
)
from pst_yolo.integration.runtime import progress

CLASS_NAMES = ("disc", "square", "triangle", "ring", "cross")
_SPLIT_IDS = {"train": 0, "val": 1}


MAX_OBJECTS = 100  # pycocotools scores at most 100 detections per image (maxDets): more objects cannot all count
MAX_CLUTTER = 100  # blobs per image: more would bury the objects (and take minutes per image to draw)


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Sizes are in pixels of the (square) images; ``*_side`` are fractions of ``imgsz``."""

    train: int = 64
    val: int = 16
    imgsz: int = 128
    seed: int = 0
    max_objects: int = 10
    min_objects: int = 1
    min_side: float = 0.1  # smallest object side, as a fraction of imgsz (0.1 * 160 = 16 px; at least 4 px)
    max_side: float = 0.8  # largest object side (0.8 * 160 = 128 px: COCO "large" needs > 96 px)
    min_visible: float = 0.7  # an object may be hidden by later ones, but never more than 30 %
    clutter: int = 3  # up to this many non-object blobs, and half as many lines, per image

    def __post_init__(self):
        problems = []
        if self.train < 0 or self.val < 0:
            problems.append(f"train and val must be >= 0 (got train={self.train}, val={self.val})")
        if self.train + self.val == 0:
            problems.append("train + val must be at least 1")
        if self.imgsz < 32:
            problems.append(f"imgsz must be >= 32 pixels (got {self.imgsz})")
        if self.imgsz > MAX_IMGSZ:
            problems.append(f"imgsz must be <= {MAX_IMGSZ} pixels (got {self.imgsz})")
        if not 1 <= self.min_objects <= self.max_objects:
            problems.append(f"need 1 <= min_objects <= max_objects (got {self.min_objects}, {self.max_objects})")
        if not 0 < self.min_side <= self.max_side <= 0.95:
            problems.append(f"need 0 < min_side <= max_side <= 0.95 (got {self.min_side}, {self.max_side})")
        if not 0 < self.min_visible <= 1:
            problems.append(f"min_visible must be in (0, 1] (got {self.min_visible})")
        if self.max_objects > MAX_OBJECTS:
            problems.append(
                f"max_objects must be <= {MAX_OBJECTS}, what COCO scoring counts per image (got {self.max_objects})"
            )
        if not 0 <= self.clutter <= MAX_CLUTTER:
            problems.append(f"clutter must be from 0 to {MAX_CLUTTER} (got {self.clutter})")
        if self.seed < 0:
            problems.append(f"seed must be >= 0 (got {self.seed})")
        if problems:
            raise ValueError("invalid synthetic dataset spec: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient, stripes or colour blotches, plus sensor-like noise: no two images look alike."""
    kind = int(rng.integers(0, 3))
    if kind == 0 or kind == 1:  # linear gradient in a random direction, sometimes with stripes
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        t = xx * math.cos(angle) + yy * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
        if kind == 1:
            period = float(rng.uniform(0.04, 0.15)) * size
            phase = rng.uniform(0, 2 * math.pi)
            s_angle = rng.uniform(0, math.pi)
            u = (xx * math.cos(s_angle) + yy * math.sin(s_angle)) * size
            img = img + (np.sin(2 * math.pi * u / period + phase) > 0)[..., None] * rng.uniform(15, 35)
    else:  # low-frequency colour blotches
        grid = int(rng.integers(2, 6))
        small = rng.uniform(0, 255, (grid, grid, 3)).astype(np.float32)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    img = img + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _pattern(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Class-specific texture in [0.55, 1] (multiplies the object colour); the period scales with the object."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(2.0, min(h, w) / float(rng.uniform(4.0, 6.0)))
    if cls == 0:  # disc: smooth radial shading, bright centre
        r = np.hypot((xx - w / 2) / max(w / 2, 1), (yy - h / 2) / max(h / 2, 1))
        return 1.0 - 0.45 * np.clip(r, 0, 1) ** 2
    if cls == 1:  # square: checkerboard
        return 0.55 + 0.45 * (((xx // period) + (yy // period)) % 2)
    if cls == 2:  # triangle: horizontal bars
        return 0.55 + 0.45 * ((yy // period) % 2)
    if cls == 3:  # ring: flat
        return np.ones((h, w), np.float32)
    return 0.55 + 0.45 * (((xx + yy) // period) % 2)  # cross: diagonal stripes


def _mask(cls: int, h: int, w: int) -> np.ndarray:
    """Filled outline of the class, exactly touching all four sides of the h x w box."""
    m = np.zeros((h, w), np.uint8)
    if cls in (0, 3):
        centre = ((w - 1) / 2, (h - 1) / 2)
        cv2.ellipse(m, (centre, (float(w), float(h)), 0.0), 255, -1)
        if cls == 3:
            cv2.ellipse(m, (centre, (w * 0.5, h * 0.5), 0.0), 0, -1)
    elif cls == 1:
        m[:] = 255
    elif cls == 2:
        pts = np.array([[(w - 1) // 2, 0], [w - 1, h - 1], [0, h - 1]], np.int32)
        cv2.fillPoly(m, [pts], 255)
    else:
        tw, th = max(round(w * 0.36), 1), max(round(h * 0.36), 1)
        m[:, (w - tw) // 2 : (w - tw) // 2 + tw] = 255
        m[(h - th) // 2 : (h - th) // 2 + th, :] = 255
    return m > 0


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A colour that stands out from the mean colour of the pixels it will cover."""
    mean = under.reshape(-1, 3).mean(0)
    best, best_d = None, -1.0
    for _ in range(8):
        c = rng.uniform(0, 255, 3)
        d = float(np.abs(c - mean).sum())
        if d > 150:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _clutter_blob(rng: np.random.Generator, img: np.ndarray) -> None:
    """An irregular polygon (not one of the classes) of object-like size: a hard negative."""
    size = img.shape[0]
    r = float(np.exp(rng.uniform(math.log(0.03), math.log(0.2)))) * size
    cx, cy = rng.uniform(0, size, 2)
    n = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = r * rng.uniform(0.4, 1.0, n)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).round().astype(np.int32)
    cv2.fillPoly(img, [pts], tuple(float(v) for v in rng.uniform(0, 255, 3)))


def _line(rng: np.random.Generator, img: np.ndarray) -> None:
    size = img.shape[0]
    p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
    colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
    cv2.line(img, (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1])), colour, int(rng.integers(1, 3)))


# An optional per-object hook of draw_scene (pst_yolo.data.synth_tasks rotates shapes with it):
# (rng, cls, mask [h, w] bool) -> (new mask [H, W] bool, warp applied to the texture [h, w] -> [H, W], info).
ShapeHook = Callable[[np.random.Generator, int, np.ndarray], tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], Any]]


@dataclass
class Scene:
    """One drawn image: ``owner`` [S, S] int16 says which object each pixel shows (-1: none); ``placed[j]`` =
    (cls, x0, y0, w, h, info) of object j: its class, its patch (top-left pixel, width and height: the shape's
    box, before occlusion) and the shape hook's info (None without a hook)."""

    img: np.ndarray
    owner: np.ndarray
    placed: list[tuple[int, int, int, int, int, Any]]


def draw_image(rng: np.random.Generator, spec: SynthSpec) -> tuple[np.ndarray, list[list[int]]]:
    """One image and its boxes ``[cls, x0, y0, x1, y1]`` (pixels, x1/y1 exclusive) of the visible pixels."""
    scene = draw_scene(rng, spec)
    return scene.img, [box for _, box in visible_boxes(scene)]


def visible_boxes(scene: Scene) -> list[tuple[int, list[int]]]:
    """(object index j, ``[cls, x0, y0, x1, y1]``) of each object's visible pixels; objects under 3 px wide or
    high are left out (they get no label)."""
    boxes = []
    for j, (cls, *_) in enumerate(scene.placed):
        ys, xs = np.nonzero(scene.owner == j)
        if len(xs) == 0:
            continue
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        if x1 - x0 >= 3 and y1 - y0 >= 3:
            boxes.append((j, [cls, x0, y0, x1, y1]))
    return boxes


def draw_scene(rng: np.random.Generator, spec: SynthSpec, shape: ShapeHook | None = None) -> Scene:
    """Draw one image; ``shape`` may transform each object's mask (and, the same way, its texture)."""
    size = spec.imgsz
    img = _background(rng, size)
    for _ in range(int(rng.integers(0, spec.clutter + 1))):
        _clutter_blob(rng, img)
    owner = np.full((size, size), -1, np.int16)  # which object each pixel shows
    areas: list[int] = []
    lo = math.log(max(spec.min_side * size, 4.0))  # never below 4 px
    hi = max(math.log(spec.max_side * size), lo)
    objects = []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        cls = int(rng.integers(0, len(CLASS_NAMES)))
        side = math.exp(rng.uniform(lo, hi))  # log-uniform: as many 16-32 px objects as 64-128 px ones
        aspect = float(rng.uniform(0.75, 1.33))
        w = int(min(max(round(side * math.sqrt(aspect)), 4), size))
        h = int(min(max(round(side / math.sqrt(aspect)), 4), size))
        objects.append((w * h > (0.6 * size) ** 2, cls, w, h))
    # Objects of COCO's "large" size (at 160 px) go first, so they find room; the rest in random order.
    objects.sort(key=lambda o: not o[0])
    placed: list[tuple[int, int, int, int, int, Any]] = []
    for _, cls, w, h in objects:
        mask, warp, info = _mask(cls, h, w), None, None
        if shape is not None:
            mask, warp, info = shape(rng, cls, mask)
            if mask.shape[0] > size or mask.shape[1] > size:
                continue  # the transformed shape does not fit in the image
        ph, pw = mask.shape
        for _attempt in range(10):
            x0, y0 = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
            covered = owner[y0 : y0 + ph, x0 : x0 + pw][mask]
            ok = True
            for j in np.unique(covered[covered >= 0]):
                still = int((owner == j).sum()) - int((covered == j).sum())
                if still < spec.min_visible * areas[j]:
                    ok = False
                    break
            if ok:
                break
        else:
            continue  # no room for this object without hiding another one too much
        region = img[y0 : y0 + ph, x0 : x0 + pw]
        colour = _contrasting_colour(rng, region[mask])
        pattern = _pattern(rng, cls, h, w)
        if warp is not None:
            pattern = warp(pattern)
        texture = np.clip(pattern[..., None] * colour, 0, 255).astype(np.uint8)
        region[mask] = texture[mask]
        owner[y0 : y0 + ph, x0 : x0 + pw][mask] = len(areas)
        areas.append(int(mask.sum()))
        placed.append((cls, x0, y0, pw, ph, info))
    for _ in range(int(rng.integers(0, spec.clutter // 2 + 1))):
        _line(rng, img)  # thin lines over everything: more clutter, slight occlusion
    noise = rng.normal(0, 3, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return Scene(img=img, owner=owner, placed=placed)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def generate(out: str | Path, spec: SynthSpec = SynthSpec(), overwrite: bool = False) -> Path:
    """Write the dataset (layout in the module docstring) and return the path of ``data.yaml``.

    Written by the rules of :mod:`pst_yolo.data.writer`: an earlier ``generate`` output in ``out`` is
    replaced as a whole (an interrupted run leaves it intact); a folder with other files is refused unless
    ``overwrite=True``, and even then none of them is replaced.
    """
    check_memory(spec.imgsz, 3 * 8 * 6)  # float64 colour planes: background, blend and noise, a few at a time
    check_disk(out, spec.train + spec.val, spec.imgsz)
    with dataset_writer(out, "synth", overwrite=overwrite, derived=("labels/*.cache",)) as w:
        _write_dataset(w.tmp, spec)
    return Path(out) / "data.yaml"


def _write_dataset(out: Path, spec: SynthSpec) -> None:
    """Write every file of the dataset under ``out`` (a new, empty folder)."""
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASS_NAMES)]
    splits = {}
    for split, count in (("train", spec.train), ("val", spec.val)):
        img_dir, lbl_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        size = spec.imgsz
        for idx in progress(range(count), desc=f"synth {split}", total=count):
            rng = np.random.default_rng([spec.seed, _SPLIT_IDS[split], idx])
            img, boxes = draw_image(rng, spec)
            name = f"{split}_{idx:05d}.png"
            write_image(img_dir / name, img)
            lines = []
            for cls, x0, y0, x1, y1 in boxes:
                cx, cy, bw, bh = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
                lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": idx + 1,
                        "category_id": cls + 1,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": (x1 - x0) * (y1 - y0),
                        "iscrowd": 0,
                    }
                )
            write_text(lbl_dir / f"{split}_{idx:05d}.txt", "".join(line + "\n" for line in lines))
            images.append({"id": idx + 1, "file_name": name, "width": size, "height": size})
        (out / "annotations").mkdir(exist_ok=True)
        coco = {
            "info": {"description": "pst-yolo synthetic detection set", "spec": asdict(spec)},
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        ann_path = out / "annotations" / f"instances_{split}.json"
        write_json(ann_path, coco)
        splits[split] = [{"annotations": ann_path, "images": img_dir}]
    write_map(
        out / MAP_FILE, CLASS_NAMES, [c["id"] for c in categories], splits, source="pst-yolo synth", spec=asdict(spec)
    )
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    write_text(
        out / "data.yaml",
        "# pst-yolo synthetic detection set (pst-yolo synth); dataset root = this file's folder\n"
        f"train: images/train\nval: images/val\nnames:\n{names}",
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
