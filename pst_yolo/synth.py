"""Deterministic synthetic detection dataset, written in both YOLO and COCO formats.

Objects of a few classes that differ in shape and texture, over varied backgrounds with clutter and
partial occlusion, sizes from a few pixels to a large part of the image. Everything is drawn with
OpenCV from a seeded NumPy generator, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ("disc", "square", "triangle", "ring", "cross")


@dataclass(frozen=True)
class SynthSpec:
    train: int = 64
    val: int = 16
    imgsz: int = 128
    seed: int = 0
    max_objects: int = 6


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour gradient plus noise, sometimes stripes: no two images look alike."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    grad = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    img = c0 * (1 - grad) + c1 * grad + rng.normal(0, 12, (size, size, 3))
    if rng.random() < 0.3:
        period = int(rng.integers(6, 24))
        stripes = ((np.arange(size) // period) % 2).astype(np.float32) * 30
        img += stripes[None, :, None] if rng.random() < 0.5 else stripes[:, None, None]
    return np.clip(np.broadcast_to(img, (size, size, 3)), 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Class-specific texture so classes differ in appearance as well as outline."""
    base = np.array(rng.integers(40, 256, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if cls == 0:
        pattern = np.ones((h, w), np.float32)
    elif cls == 1:
        pattern = 0.6 + 0.4 * (((xx // 4) + (yy // 4)) % 2)  # checker
    elif cls == 2:
        pattern = 0.6 + 0.4 * ((yy // 3) % 2)  # horizontal bars
    elif cls == 3:
        pattern = 0.7 + 0.3 * np.sin(xx / 2.0)
    else:
        pattern = 0.6 + 0.4 * (((xx + yy) // 4) % 2)  # diagonal
    return np.clip(pattern[..., None] * base[None, None], 0, 255).astype(np.uint8)


def _mask(cls: int, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    if cls == 0:
        cv2.ellipse(m, (w // 2, h // 2), (max(w // 2 - 1, 1), max(h // 2 - 1, 1)), 0, 0, 360, 255, -1)
    elif cls == 1:
        m[:] = 255
    elif cls == 2:
        pts = np.array([[w // 2, 0], [w - 1, h - 1], [0, h - 1]], np.int32)
        cv2.fillPoly(m, [pts], 255)
    elif cls == 3:
        cv2.ellipse(m, (w // 2, h // 2), (max(w // 2 - 1, 1), max(h // 2 - 1, 1)), 0, 0, 360, 255, -1)
        cv2.ellipse(m, (w // 2, h // 2), (max(w // 4, 1), max(h // 4, 1)), 0, 0, 360, 0, -1)
    else:
        tw, th = max(w // 3, 1), max(h // 3, 1)
        m[:, (w - tw) // 2 : (w + tw) // 2 + 1] = 255
        m[(h - th) // 2 : (h + th) // 2 + 1, :] = 255
    return m


def _draw_image(rng: np.random.Generator, spec: SynthSpec):
    size = spec.imgsz
    img = _background(rng, size)
    for _ in range(int(rng.integers(0, 6))):  # clutter: thin lines and blobs that are not objects
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), tuple(int(v) for v in rng.integers(0, 256, 3)), 1)
    boxes = []
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        cls = int(rng.integers(0, len(CLASS_NAMES)))
        # Log-uniform sizes: from ~6% of the image (COCO "small" at 640) to ~60% ("large").
        side = float(np.exp(rng.uniform(np.log(0.06), np.log(0.6)))) * size
        w = max(int(side * rng.uniform(0.75, 1.3)), 4)
        h = max(int(side * rng.uniform(0.75, 1.3)), 4)
        w, h = min(w, size - 1), min(h, size - 1)
        x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        mask = _mask(cls, h, w) > 0
        if not mask.any():
            continue
        region = img[y0 : y0 + h, x0 : x0 + w]
        region[mask] = _texture(rng, cls, h, w)[mask]
        ys, xs = np.nonzero(mask)
        boxes.append([cls, x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1])
    return img, boxes


def _visible(boxes: list, img_shape) -> list:
    """Drop objects mostly covered by later ones (drawn on top): partial occlusion stays, hidden ones go."""
    kept = []
    for i, (cls, x0, y0, x1, y1) in enumerate(boxes):
        cover = np.zeros((y1 - y0, x1 - x0), bool)
        for _, a0, b0, a1, b1 in boxes[i + 1 :]:
            cover[max(b0 - y0, 0) : max(b1 - y0, 0), max(a0 - x0, 0) : max(a1 - x0, 0)] = True
        if cover.mean() < 0.6:
            kept.append([cls, x0, y0, x1, y1])
    return kept


def generate(out: str | Path, spec: SynthSpec = SynthSpec()) -> Path:
    """Write ``out/images/{train,val}``, ``out/labels/{train,val}``, ``out/annotations/instances_{split}.json``
    and ``out/data.yaml``. Returns the path of ``data.yaml``."""
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASS_NAMES)]
    for split, count in (("train", spec.train), ("val", spec.val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for idx in range(count):
            img, boxes = _draw_image(rng, spec)
            boxes = _visible(boxes, img.shape)
            name = f"{split}_{idx:05d}.png"
            cv2.imwrite(str(out / "images" / split / name), img)
            size = spec.imgsz
            lines = []
            for cls, x0, y0, x1, y1 in boxes:
                cx, cy, bw, bh = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
                lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                annotations.append({
                    "id": len(annotations) + 1, "image_id": idx + 1, "category_id": cls + 1,
                    "bbox": [int(x0), int(y0), int(x1 - x0), int(y1 - y0)],
                    "area": int((x1 - x0) * (y1 - y0)), "iscrowd": 0,
                })
            (out / "labels" / split / f"{split}_{idx:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            images.append({"id": idx + 1, "file_name": name, "width": spec.imgsz, "height": spec.imgsz})
        (out / "annotations").mkdir(exist_ok=True)
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    data_yaml = out / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    data_yaml.write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data_yaml
