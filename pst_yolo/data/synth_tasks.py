"""Synthetic segmentation, pose and oriented-box datasets: the detection generator's shapes, other labels.

    from pst_yolo.data.synth import SynthSpec
    from pst_yolo.data.synth_tasks import generate_task
    data_yaml = generate_task("datasets/synth-seg", "segment", SynthSpec(train=64, val=16, imgsz=128))

The images come from ``pst_yolo.data.synth.draw_scene``, so ``segment`` and ``pose`` sets are pixel for pixel the
detection set of the same spec; ``obb`` draws each shape rotated by a random angle (so its images differ).
Labels, for every object whose visible pixels span at least 3 x 3 px (the detection generator's rule):

- ``segment``: the object's *visible* pixels (occlusion cut out, the ring's hole kept). YOLO labels hold one
  polygon per object (outer outlines and holes joined by zero-width bridges, so a filled polygon has the
  hole); the COCO JSON holds the exact visible mask as RLE (``segmentation``, ``area`` = its pixel count).
- ``pose``: 4 keypoints per object, named top, right, bottom, left: the shape's topmost point, rightmost,
  bottommost, leftmost (square: edge midpoints; triangle: apex, bottom-right corner, base midpoint,
  bottom-left corner). A left-right flip swaps right and left, so ``flip_idx`` is ``[0, 3, 2, 1]``.
  Visibility 2 where the object shows within a pixel of the point, 1 where a later object hides it. The box
  is the visible-pixel box, as in detection.
- ``obb``: the shape's rotated w x h rectangle (the whole shape, also where another object hides part of
  it), as 4 corners; the COCO JSON has the visible-pixel ``bbox`` plus ``obb`` (corners) and ``angle``.

Coordinates are continuous pixel coordinates (pixel (i, j) covers [j, j+1) x [i, i+1)), normalised by the
image size in YOLO labels. Layout under ``out`` as for detection (``data.yaml``, ``coco_map.json``,
``images/``, ``labels/``, ``annotations/instances_{train,val}.json``); ``coco_map.json`` records the task.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from pst_yolo.data.coco_map import MAP_FILE, write_map
from pst_yolo.data.synth import _SPLIT_IDS, CLASS_NAMES, Scene, SynthSpec, draw_scene, visible_boxes
from pst_yolo.data.writer import check_disk, check_memory, dataset_writer, write_image, write_json, write_text
from pst_yolo.integration.runtime import progress

TASKS = ("segment", "pose", "obb")
KPT_NAMES = ("top", "right", "bottom", "left")
FLIP_IDX = (0, 3, 2, 1)  # a left-right flip swaps "right" and "left"
# Keypoints as fractions (u, v) of the shape's w x h box, per class (index into CLASS_NAMES).
_EDGE_MIDPOINTS = ((0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5))
KPT_UV = {
    0: _EDGE_MIDPOINTS,  # disc: the ellipse touches its box at the edge midpoints
    1: _EDGE_MIDPOINTS,  # square
    2: ((0.5, 0.0), (1.0, 1.0), (0.5, 1.0), (0.0, 1.0)),  # triangle: apex, bottom-right, base midpoint, bottom-left
    3: _EDGE_MIDPOINTS,  # ring
    4: _EDGE_MIDPOINTS,  # cross: the ends of its arms
}


# ---------------------------------------------------------------------------------------------
# Labels of one scene
# ---------------------------------------------------------------------------------------------
def mask_polygon(mask: np.ndarray) -> np.ndarray:
    """One polygon [n, 2] (continuous pixel coordinates) whose filling is ``mask`` [H, W] bool.

    Every outline (outer boundaries of separate pieces, and holes) is traced along pixel centres; the
    outlines are joined into one polygon by zero-width bridges between their closest points (largest first),
    so a filled polygon has the holes (the bridges add at most their own pixels)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outlines = sorted(
        (c.reshape(-1, 2).astype(np.float64) for c in contours),
        key=lambda c: -cv2.contourArea(c.astype(np.float32)) if len(c) > 2 else 0.0,
    )
    if not outlines:
        raise ValueError("empty mask: nothing to outline")
    poly = outlines[0]
    for c in outlines[1:]:
        d = ((poly[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        i, k = np.unravel_index(int(d.argmin()), d.shape)
        poly = np.concatenate([poly[: i + 1], c[k:], c[: k + 1], poly[i:]])
    return poly + 0.5  # pixel centres, in continuous coordinates


def mask_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of ``mask`` [H, W] bool, JSON-ready (``counts`` as text)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def keypoints(scene: Scene, j: int) -> np.ndarray:
    """[4, 3] (x, y, visibility) of object j; visibility 2 if the object shows within 1 px of the point, else 1."""
    cls, x0, y0, w, h, _ = scene.placed[j]
    size_y, size_x = scene.owner.shape
    out = np.zeros((len(KPT_NAMES), 3))
    for n, (u, v) in enumerate(KPT_UV[cls]):
        x, y = x0 + u * w, y0 + v * h
        px, py = min(max(int(math.floor(x)), x0), x0 + w - 1), min(max(int(math.floor(y)), y0), y0 + h - 1)
        near = scene.owner[max(py - 1, 0) : min(py + 2, size_y), max(px - 1, 0) : min(px + 2, size_x)]
        out[n] = (x, y, 2 if (near == j).any() else 1)
    return out


def rotate_shape(rng: np.random.Generator, cls: int, mask: np.ndarray):
    """Shape hook of ``draw_scene``: the shape turned by a random angle in [0, pi) about its centre.

    Returns the rotated mask (in a patch just large enough), the same warp for the texture, and
    ``(angle, w, h)``: the rotated rectangle is the w x h box turned by ``angle`` (image axes, y down)."""
    h, w = mask.shape
    angle = float(rng.uniform(0.0, math.pi))
    cos, sin = math.cos(angle), math.sin(angle)
    pw = int(math.ceil(w * abs(cos) + h * abs(sin) - 1e-9))
    ph = int(math.ceil(w * abs(sin) + h * abs(cos) - 1e-9))
    rot = np.array([[cos, -sin], [sin, cos]])
    src_c, dst_c = np.array([(w - 1) / 2, (h - 1) / 2]), np.array([(pw - 1) / 2, (ph - 1) / 2])  # pixel-index centres
    matrix = np.hstack([rot, (dst_c - rot @ src_c)[:, None]])

    def warp(a: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        return cv2.warpAffine(a.astype(np.float32), matrix, (pw, ph), flags=cv2.INTER_LINEAR, borderMode=border)

    return warp(mask, cv2.BORDER_CONSTANT) >= 0.5, warp, (angle, w, h)


def obb_corners(scene: Scene, j: int) -> np.ndarray:
    """[4, 2] corners (continuous pixels) of object j's rotated rectangle (a scene drawn with ``rotate_shape``)."""
    _, x0, y0, pw, ph, (angle, w, h) = scene.placed[j]
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return np.array([x0 + pw / 2, y0 + ph / 2]) + half @ rot.T


def task_scene(rng: np.random.Generator, spec: SynthSpec, task: str) -> Scene:
    """The scene of one image for ``task`` (rotated shapes for obb, the detection drawing otherwise)."""
    return draw_scene(rng, spec, shape=rotate_shape if task == "obb" else None)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def _fmt(values) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)


def _labels(scene: Scene, task: str, image_id: int, first_id: int) -> tuple[list[str], list[dict]]:
    """YOLO label lines and COCO annotations of one image."""
    size = scene.owner.shape[1]
    lines, anns = [], []
    for j, (cls, x0, y0, x1, y1) in visible_boxes(scene):
        visible = scene.owner == j
        ann = {
            "id": first_id + len(anns),
            "image_id": image_id,
            "category_id": cls + 1,
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": int(visible.sum()),
            "iscrowd": 0,
        }
        box = _fmt([(x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size])
        if task == "segment":
            poly = np.clip(mask_polygon(visible) / size, 0.0, 1.0)
            lines.append(f"{cls} {_fmt(poly.reshape(-1))}")
            ann["segmentation"] = mask_rle(visible)
        elif task == "pose":
            kpts = keypoints(scene, j)
            norm = np.concatenate([np.clip(kpts[:, :2] / size, 0.0, 1.0), kpts[:, 2:]], 1)
            lines.append(f"{cls} {box} " + " ".join(f"{x:.6f} {y:.6f} {int(v)}" for x, y, v in norm))
            ann["keypoints"] = [round(float(v), 3) if i % 3 < 2 else int(v) for i, v in enumerate(kpts.reshape(-1))]
            ann["num_keypoints"] = len(KPT_NAMES)
        else:  # obb
            corners = obb_corners(scene, j)
            lines.append(f"{cls} {_fmt(np.clip(corners / size, 0.0, 1.0).reshape(-1))}")
            ann["obb"] = [round(float(v), 3) for v in corners.reshape(-1)]
            ann["angle"] = round(float(scene.placed[j][5][0]), 6)
        anns.append(ann)
    return lines, anns


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(
            f"task must be one of {', '.join(TASKS)} (detection: pst_yolo.data.synth.generate; "
            f"classification: pst_yolo.data.synth_classify.generate_classify), got {task!r}"
        )
    return task


def generate_task(out: str | Path, task: str, spec: Optional[SynthSpec] = None, overwrite: bool = False) -> Path:
    """Write the ``task`` dataset (layout in the module docstring) and return the path of ``data.yaml``;
    ``spec`` defaults to ``SynthSpec()``, as for detection. Written by the rules of :mod:`pst_yolo.data.writer`,
    as ``generate`` writes the detection set (``overwrite`` as there)."""
    _check_task(task)
    spec = spec or SynthSpec()
    check_memory(spec.imgsz, 3 * 8 * 6)  # the same drawing as the detection set
    check_disk(out, spec.train + spec.val, spec.imgsz)
    with dataset_writer(out, "synth", overwrite=overwrite, derived=("labels/*.cache",)) as w:
        _write_task_dataset(w.tmp, task, spec)
    return Path(out) / "data.yaml"


def _write_task_dataset(out: Path, task: str, spec: SynthSpec) -> None:
    """Write every file of the ``task`` dataset under ``out`` (a new, empty folder)."""
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASS_NAMES)]
    if task == "pose":
        for c in categories:
            c.update(keypoints=list(KPT_NAMES), skeleton=[[1, 2], [2, 3], [3, 4], [4, 1]])
    splits = {}
    for split, count in (("train", spec.train), ("val", spec.val)):
        img_dir, lbl_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for idx in progress(range(count), desc=f"synth {task} {split}", total=count):
            rng = np.random.default_rng([spec.seed, _SPLIT_IDS[split], idx])  # as the detection set: same images
            scene = task_scene(rng, spec, task)
            name = f"{split}_{idx:05d}.png"
            write_image(img_dir / name, scene.img)
            lines, anns = _labels(scene, task, idx + 1, len(annotations) + 1)
            write_text(lbl_dir / f"{split}_{idx:05d}.txt", "".join(line + "\n" for line in lines))
            annotations += anns
            images.append({"id": idx + 1, "file_name": name, "width": spec.imgsz, "height": spec.imgsz})
        (out / "annotations").mkdir(exist_ok=True)
        coco = {
            "info": {"description": f"pst-yolo synthetic {task} set", "task": task, "spec": asdict(spec)},
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        ann_path = out / "annotations" / f"instances_{split}.json"
        write_json(ann_path, coco)
        splits[split] = [{"annotations": ann_path, "images": img_dir}]
    write_map(
        out / MAP_FILE,
        CLASS_NAMES,
        [c["id"] for c in categories],
        splits,
        source="pst-yolo synth",
        spec=asdict(spec),
        task=task,
    )
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    extra = ""
    if task == "pose":
        extra = (
            f"kpt_shape: [{len(KPT_NAMES)}, 3]\nflip_idx: {list(FLIP_IDX)}  # keep flipud=0: Ultralytics "
            "would apply this left-right swap to vertical flips too\n"
            f"kpt_names:\n" + "".join(f"  {i}: [{', '.join(KPT_NAMES)}]\n" for i in range(len(CLASS_NAMES)))
        )
    write_text(
        out / "data.yaml",
        f"# pst-yolo synthetic {task} set (pst-yolo synth task={task}); dataset root = this file's folder\n"
        f"train: images/train\nval: images/val\n{extra}names:\n{names}",
    )


def dataset_task(data: str | Path) -> str | None:
    """The task a ``pst-yolo synth`` dataset folder (or its data.yaml) was written for; None if not recorded."""
    p = Path(data)
    path = (p if p.is_dir() else p.parent) / MAP_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return doc.get("task", "detect") if doc.get("source") == "pst-yolo synth" else None
