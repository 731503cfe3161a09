"""The synthetic classification set: an ImageFolder of outline shapes (``pst-yolo synth task=classify``).

    from pst_yolo.data.synth_classify import ClassifySynthSpec, generate_classify
    data = generate_classify("datasets/pst-synth-cls")      # train/<class>/*.png, val/<class>/*.png

It trains with the stock command (``yolo classify train model=yolo11n-cls-pst.yaml data=...``) and is the
embedded default of ``pst-yolo bench task=classify`` (``pst_yolo.eval.bench``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pst_yolo.data.writer import MAX_IMGSZ, check_disk, check_memory, dataset_writer, write_image, write_json

# ---------------------------------------------------------------------------------------------
# Synthetic ImageFolder dataset
# ---------------------------------------------------------------------------------------------
CLASS_NAMES = ("disk", "ring", "square", "frame", "triangle", "diamond", "plus", "cross", "hbars", "vbars")
SPEC_FILE = "synth_classify.json"  # written next to train/ and val/: what was generated, with which spec
SPEC_FORMAT = "pst-yolo/synth-classify/1"
_SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class ClassifySynthSpec:
    """What ``generate_classify`` writes: ``train``/``val`` images *per class*, ``imgsz`` pixels square.

    Classes are outline shapes (``CLASS_NAMES[:classes]``) in random colours, positions, sizes and small
    rotations over noisy gradient backgrounds. None is a mirror image of another (Ultralytics flips
    training images left-right), and a shape keeps most of its area under Ultralytics' default
    random-resized crop (``scale=0.5``: at least half the image area).
    """

    train: int = 80
    val: int = 20
    imgsz: int = 96
    seed: int = 0
    classes: int = len(CLASS_NAMES)

    def __post_init__(self):
        problems = []
        if self.train < 1 or self.val < 1:
            problems.append(
                f"train and val are images per class and must be >= 1 (got train={self.train}, val={self.val})"
            )
        if self.imgsz < 32:
            problems.append(f"imgsz must be >= 32 (got {self.imgsz})")
        if self.imgsz > MAX_IMGSZ:
            problems.append(f"imgsz must be <= {MAX_IMGSZ} pixels (got {self.imgsz})")
        if not 2 <= self.classes <= len(CLASS_NAMES):
            problems.append(f"classes must be between 2 and {len(CLASS_NAMES)} (got {self.classes})")
        if self.seed < 0:
            problems.append(f"seed must be >= 0 (got {self.seed})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def names(self) -> tuple[str, ...]:
        return CLASS_NAMES[: self.classes]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear colour gradient in a random direction, float32 HxWx3 in 0..255."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return (c0 * (1 - t) + c1 * t).astype(np.float32)


def _contrasting(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A colour at least 120 (Euclidean RGB distance) from the mean background colour."""
    mean = under.reshape(-1, 3).mean(0)
    for _ in range(100):
        c = rng.uniform(0, 255, 3)
        if np.linalg.norm(c - mean) >= 120:
            return c
    return 255.0 - mean  # always far enough from a mid-range mean after 100 misses (practically never)


def _shape_mask(name: str, size: int, cx: float, cy: float, r: float, angle: float, thick: float) -> np.ndarray:
    """uint8 mask (0/255) of one class shape, anti-aliased, centred at (cx, cy) with half-extent r."""
    import cv2

    sub = 4  # draw at 4x and area-downsample: smooth edges, sub-pixel positions
    big = np.zeros((size * sub, size * sub), np.uint8)
    c = np.array([cx, cy]) * sub
    R, T = r * sub, max(thick * sub, sub)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def poly(points):
        pts = (np.asarray(points, np.float64) @ rot.T) * R + c
        cv2.fillPoly(big, [np.round(pts).astype(np.int32)], 255)

    def bar(x0, y0, x1, y1):  # axis-aligned rectangle in shape units, then rotated
        poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    t = T / R  # thickness in shape units
    if name == "disk":
        cv2.circle(big, tuple(np.round(c).astype(int)), int(R), 255, -1)
    elif name == "ring":
        cv2.circle(big, tuple(np.round(c).astype(int)), int(R), 255, -1)
        cv2.circle(big, tuple(np.round(c).astype(int)), max(int(R - T), 1), 0, -1)
    elif name == "square":
        bar(-0.8, -0.8, 0.8, 0.8)
    elif name == "frame":
        bar(-0.8, -0.8, 0.8, 0.8)
        inner = np.zeros_like(big)
        pts = (
            np.array([(-0.8 + t, -0.8 + t), (0.8 - t, -0.8 + t), (0.8 - t, 0.8 - t), (-0.8 + t, 0.8 - t)]) @ rot.T
        ) * R + c
        cv2.fillPoly(inner, [np.round(pts).astype(np.int32)], 255)
        big[inner > 0] = 0
    elif name == "triangle":  # pointing up (left-right flips keep it a triangle pointing up)
        poly([(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)])
    elif name == "diamond":  # a square standing on a corner
        poly([(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)])
    elif name in ("plus", "cross"):
        if name == "cross":  # the plus turned by 45 degrees
            rot = rot @ np.array(
                [[math.cos(math.pi / 4), -math.sin(math.pi / 4)], [math.sin(math.pi / 4), math.cos(math.pi / 4)]]
            )
        h = t / 2
        bar(-1.0, -h, 1.0, h)
        bar(-h, -1.0, h, 1.0)
    elif name in ("hbars", "vbars"):
        n = 3
        gap = (2.0 - n * t) / (n - 1)
        for i in range(n):
            a = -1.0 + i * (t + gap)
            if name == "hbars":
                bar(-0.9, a, 0.9, a + t)
            else:
                bar(a, -0.9, a + t, 0.9)
    else:  # pragma: no cover - CLASS_NAMES and this function are kept in step
        raise ValueError(f"unknown class {name!r}")
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def draw_classify_image(rng: np.random.Generator, name: str, imgsz: int) -> np.ndarray:
    """One BGR uint8 image of class ``name``."""
    img = _background(rng, imgsz)
    fg = _contrasting(rng, img)
    r = rng.uniform(0.24, 0.38) * imgsz
    cx, cy = imgsz / 2 + rng.uniform(-0.12, 0.12, 2) * imgsz
    angle = math.radians(rng.uniform(-15, 15))
    thick = rng.uniform(0.28, 0.42) * r
    mask = _shape_mask(name, imgsz, cx, cy, r, angle, thick).astype(np.float32)[..., None] / 255.0
    img = img * (1 - mask) + fg * mask
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)[..., ::-1].copy()  # RGB -> BGR for OpenCV's encoder


def generate_classify(
    out: str | Path, spec: ClassifySynthSpec = ClassifySynthSpec(), verbose: bool = False, overwrite: bool = False
) -> Path:
    """Write the synthetic ImageFolder set under ``out``; return ``out`` (what ``data=`` takes).

    Layout: ``out/train/<class>/train_<class>_00000.png``, ``out/val/<class>/...``, and ``synth_classify.json``
    (the spec). Each image comes from a NumPy generator seeded with ``[seed, split, class, index]``, so the
    same arguments give the same files, and the val split does not change with the size of the train split.
    Written by the rules of :mod:`pst_yolo.data.writer`: an earlier set written here is replaced as a whole
    (an interrupted run leaves it intact); a folder with other files is refused unless ``overwrite=True``.
    """

    check_memory(spec.imgsz, 64)  # a 4x supersampled mask and float32 colour planes
    check_disk(out, (spec.train + spec.val) * spec.classes, spec.imgsz)
    counts = {"train": spec.train, "val": spec.val}
    with dataset_writer(out, "synth task=classify", overwrite=overwrite) as w:
        for split, n in counts.items():
            for ci, name in enumerate(spec.names):
                folder = w.tmp / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for idx in range(n):
                    rng = np.random.default_rng([spec.seed, _SPLIT_IDS[split], ci, idx])
                    img = draw_classify_image(rng, name, spec.imgsz)
                    write_image(folder / f"{split}_{name}_{idx:05d}.png", img)
            if verbose:
                print(f"  {split}: {n} images x {spec.classes} classes")
        doc = {
            "format": SPEC_FORMAT,
            "source": "pst-yolo synth task=classify",
            "names": list(spec.names),
            "spec": asdict(spec),
        }
        write_json(w.tmp / SPEC_FILE, doc, indent=1)
    return Path(out)


def read_classify_spec(data: str | Path) -> dict | None:
    """The spec ``generate_classify`` recorded in ``data``, or None for another dataset."""
    path = Path(data) / SPEC_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return doc if doc.get("format") == SPEC_FORMAT else None
