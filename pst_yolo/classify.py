"""Classification with PST: the synthetic ImageFolder set, the stock-vs-PST benchmark, the parameter table.

    from pst_yolo.classify import generate_classify, bench_classify, param_rows, param_table
    data = generate_classify("datasets/pst-synth-cls")      # ImageFolder: train/<class>/*.png, val/<class>/*.png
    result = bench_classify()                               # the embedded default: yolo11n-cls vs yolo11n-cls-pst
    print(result.table)                                     # top-1 / top-5 at k = 0 and 8 (also results.md/.csv)
    print(param_table(param_rows()))                        # params/GFLOPs of every shipped classifier vs its baseline

The shipped classifiers (``cfg/``): ``yolo11{n,s,m,l,x}-cls-pst.yaml`` against Ultralytics' stock
``yolo11{n,s,m,l,x}-cls.yaml``, and ``resnet{18,50,101}-cls-pst.yaml`` against the plain
``resnet{18,50,101}-cls.yaml`` shipped next to them (same backbone without PST). They train and evaluate
with the stock command, e.g. ``yolo classify train model=yolo11n-cls-pst.yaml data=path/to/imagefolder``.

Command-line entry points (wired into ``pst-yolo`` by ``pst_yolo.cli``): ``cli_synth_classify``
(``pst-yolo synth task=classify OUT ...``), ``cli_bench_classify`` (``pst-yolo bench task=classify ...``)
and ``cli_params_classify`` (the parameter table).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pst_yolo.cli import int_list as _int_list, str_list as _str_list, to_bool as _to_bool

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
            problems.append(f"train and val are images per class and must be >= 1 (got train={self.train}, "
                            f"val={self.val})")
        if self.imgsz < 32:
            problems.append(f"imgsz must be >= 32 (got {self.imgsz})")
        if not 2 <= self.classes <= len(CLASS_NAMES):
            problems.append(f"classes must be between 2 and {len(CLASS_NAMES)} (got {self.classes})")
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
        pts = (np.array([(-0.8 + t, -0.8 + t), (0.8 - t, -0.8 + t), (0.8 - t, 0.8 - t), (-0.8 + t, 0.8 - t)])
               @ rot.T) * R + c
        cv2.fillPoly(inner, [np.round(pts).astype(np.int32)], 255)
        big[inner > 0] = 0
    elif name == "triangle":  # pointing up (left-right flips keep it a triangle pointing up)
        poly([(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)])
    elif name == "diamond":  # a square standing on a corner
        poly([(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)])
    elif name in ("plus", "cross"):
        if name == "cross":  # the plus turned by 45 degrees
            rot = rot @ np.array([[math.cos(math.pi / 4), -math.sin(math.pi / 4)],
                                  [math.sin(math.pi / 4), math.cos(math.pi / 4)]])
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
    cx, cy = (imgsz / 2 + rng.uniform(-0.12, 0.12, 2) * imgsz)
    angle = math.radians(rng.uniform(-15, 15))
    thick = rng.uniform(0.28, 0.42) * r
    mask = _shape_mask(name, imgsz, cx, cy, r, angle, thick).astype(np.float32)[..., None] / 255.0
    img = img * (1 - mask) + fg * mask
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)[..., ::-1].copy()  # RGB -> BGR for cv2.imwrite


def generate_classify(out: str | Path, spec: ClassifySynthSpec = ClassifySynthSpec(), verbose: bool = False) -> Path:
    """Write the synthetic ImageFolder set under ``out``; return ``out`` (what ``data=`` takes).

    Layout: ``out/train/<class>/train_<class>_00000.png``, ``out/val/<class>/...``, and ``synth_classify.json``
    (the spec). Each image comes from a NumPy generator seeded with ``[seed, split, class, index]``, so the
    same arguments give the same files, and the val split does not change with the size of the train split.
    Files from an earlier run in ``out/{train,val}/<class>/`` named like ours are replaced, nothing else.
    """
    import cv2

    out = Path(out)
    counts = {"train": spec.train, "val": spec.val}
    for split, n in counts.items():
        for ci, name in enumerate(spec.names):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(f"{split}_{name}_*.png"):
                stale.unlink()
            for idx in range(n):
                rng = np.random.default_rng([spec.seed, _SPLIT_IDS[split], ci, idx])
                img = draw_classify_image(rng, name, spec.imgsz)
                cv2.imwrite(str(folder / f"{split}_{name}_{idx:05d}.png"), img)
        if verbose:
            print(f"  {split}: {n} images x {spec.classes} classes")
    doc = {"format": SPEC_FORMAT, "source": "pst-yolo synth task=classify", "names": list(spec.names),
           "spec": asdict(spec)}
    (out / SPEC_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    return out


def read_classify_spec(data: str | Path) -> dict | None:
    """The spec ``generate_classify`` recorded in ``data``, or None for another dataset."""
    path = Path(data) / SPEC_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return doc if doc.get("format") == SPEC_FORMAT else None


# ---------------------------------------------------------------------------------------------
# Parameter / FLOP table of the shipped classifiers
# ---------------------------------------------------------------------------------------------
YOLO11_SCALES = "nsmlx"
RESNET_DEPTHS = (18, 50, 101)


def classifier_pairs() -> list[tuple[str, str]]:
    """(PST config, its baseline) for every shipped classifier and scale, by the names users type."""
    pairs = [(f"yolo11{s}-cls-pst.yaml", f"yolo11{s}-cls.yaml") for s in YOLO11_SCALES]
    pairs += [(f"resnet{d}-cls-pst.yaml", f"resnet{d}-cls.yaml") for d in RESNET_DEPTHS]
    return pairs


def _count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _gflops(model, imgsz: int) -> float:
    """Ultralytics' thop GFLOPs at ``imgsz``, counted with the fine branch off (k = 0).

    thop counts convolutions and linear layers, not the attention matrix products, so for PST models
    this is a lower bound; the fine branch adds no convolution except its tiny gate, hence k = 0.
    """
    from copy import deepcopy

    from ultralytics.utils.torch_utils import get_flops

    from pst_yolo.toggle import pst_layers

    model = deepcopy(model).eval()
    for _, layer in pst_layers(model):
        layer.k = 0
    return float(get_flops(model, imgsz))


@contextlib.contextmanager
def _no_clamp_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PSAttn: topk=", category=UserWarning)
        yield


@contextlib.contextmanager
def _quiet():
    """No Ultralytics info lines, and no top-k clamp warning from the 32-px FLOP probe that
    ``ClassificationModel`` always runs (``model.info()``: one stride-32 token < k)."""
    import logging

    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        with _no_clamp_warning():
            yield
    finally:
        LOGGER.setLevel(level)


def build_classifier(name: str, nc: int = 1000, verbose: bool = False):
    """``ClassificationModel`` for a shipped (or stock) classifier YAML name, PST registered.

    ``verbose=False`` also silences the summary line Ultralytics prints for every classifier it builds."""
    from ultralytics.nn.tasks import ClassificationModel

    from pst_yolo.integration import register

    register()
    if verbose:
        return ClassificationModel(name, nc=nc, verbose=True)
    with _quiet():
        return ClassificationModel(name, nc=nc, verbose=False)


def param_rows(imgsz: int = 224, nc: int = 1000, pairs: Sequence[tuple[str, str]] | None = None) -> list[dict]:
    """One row per (PST classifier, baseline): parameters and GFLOPs of each, built for ``nc`` classes."""
    rows = []
    for pst_name, base_name in (pairs or classifier_pairs()):
        row: dict[str, Any] = {"config": pst_name, "baseline": base_name}
        for key, name in (("pst", pst_name), ("base", base_name)):
            model = build_classifier(name, nc=nc)
            row[f"{key}_params"] = _count_params(model)
            row[f"{key}_gflops"] = _gflops(model, imgsz)
        rows.append(row)
    return rows


def param_table(rows: Sequence[dict]) -> str:
    lines = ["| config | params | GFLOPs | baseline | baseline params | baseline GFLOPs | params vs baseline |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = r["pst_params"] / r["base_params"] - 1
        lines.append(f"| {r['config']} | {r['pst_params'] / 1e6:.2f} M | {r['pst_gflops']:.2f} | {r['baseline']} | "
                     f"{r['base_params'] / 1e6:.2f} M | {r['base_gflops']:.2f} | {ratio:+.1%} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The benchmark: train stock and PST classifiers, top-1/top-5 at each k
# ---------------------------------------------------------------------------------------------
DEFAULT_MODELS = ("yolo11n-cls.yaml", "yolo11n-cls-pst.yaml")
DEFAULT_TOPK = (0, 8)
# The embedded default (`pst-yolo bench task=classify` with no data=): 10 classes x 80 train / 20 val
# images at 96 px (3 x 3 = 9 stride-32 tokens, so k = 8 refines all but one), 20 epochs of batch 32.
MAIN_SYNTH = ClassifySynthSpec()  # train=80, val=20, imgsz=96, seed=0, all 10 classes
MAIN_EPOCHS = 20
MAIN_BATCH = 32
# Ultralytics train() overrides of the fast recipe (synthetic data); other datasets get Ultralytics' defaults.
# Measured on this set (yolo11n-cls, 200 steps at 64 px): Ultralytics' colour jitter (hsv_*) keeps the loss at
# chance level (2.2 vs 1.3 without it; colours are random in the data already), and AdamW at lr 0.003 or
# 0.01 does not leave chance level at all. The SGD-style bias warm-up (warmup_bias_lr 0.1), RandAugment and random
# erasing are off too; random-resized crops and left-right flips stay on.
FAST_RECIPE: dict[str, Any] = {
    "optimizer": "AdamW",
    "lr0": 0.001,
    "warmup_epochs": 1.0,
    "warmup_bias_lr": 0.0,
    "hsv_h": 0.0,
    "hsv_s": 0.0,
    "hsv_v": 0.0,
    "auto_augment": None,
    "erasing": 0.0,
    "val": False,  # validate only after the last epoch
    "amp": False,
}
RECIPES = ("fast", "stock")
COLUMNS = ("model", "k", "params", "GFLOPs", "top1", "top5", "ms/image")


@dataclass
class ClassifyBenchRow:
    model: str
    k: int | None  # None: a model without PST layers
    params: int
    gflops: float
    top1: float
    top5: float
    ms_per_image: float
    weights: str
    train_seconds: float | None = None

    def cells(self) -> list[str]:
        return [self.model, "-" if self.k is None else str(self.k), f"{self.params / 1e6:.2f} M", f"{self.gflops:.2f}",
                f"{self.top1:.3f}", f"{self.top5:.3f}", f"{self.ms_per_image:.2f}"]


@dataclass
class ClassifyBenchResult:
    rows: list[ClassifyBenchRow]
    run_dir: Path
    markdown: Path
    csv: Path
    table: str
    data: Path
    seconds: float
    settings: dict = field(default_factory=dict)


def bench_table(rows: Sequence[ClassifyBenchRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def _label(model: str) -> str:
    """Table name of a model: the file stem, or the run folder for ``<run>/weights/best.pt``."""
    p = Path(model)
    if p.suffix == ".pt" and p.parent.name == "weights" and p.stem in ("best", "last") and p.parent.parent.name:
        return p.parent.parent.name + ("" if p.stem == "best" else "-last")
    return p.stem


def _machine() -> str:
    import torch

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads{gpu}, torch {torch.__version__}"


def bench_classify(data: str | Path | None = None, models: Sequence[str | Path] = DEFAULT_MODELS,
                   topk: Sequence[int] = DEFAULT_TOPK, epochs: int | None = None, imgsz: int | None = None,
                   batch: int | None = None, workers: int = 0, seed: int = 0, device: str = "cpu",
                   project: str | Path = "runs/pst-bench", name: str = "classify", exist_ok: bool = False,
                   synth: ClassifySynthSpec | None = None, recipe: str | None = None, eval_batch: int | None = None,
                   split: str = "val", train_args: Mapping[str, Any] | None = None,
                   verbose: bool = True) -> ClassifyBenchResult:
    """Train/load each classifier, validate it at each k (top-1/top-5), write results.md/.csv.

    Args:
        data: an ImageFolder dataset root (``train/<class>/...``, ``val/<class>/...``), e.g. one written by
            ``generate_classify``. None: generate the synthetic set (``synth``, default ``MAIN_SYNTH``)
            into the run folder.
        models: ``.yaml`` configs (trained here with one recipe) and/or ``.pt`` weights (evaluated as they are).
        topk: the k values at which models with PST layers are validated (models without PST: once, k "-").
        epochs, imgsz, batch: default to the embedded job's (8, the dataset's size, 32) on synthetic data,
            else Ultralytics' (100, 224, 16) with the stock recipe.
        recipe: ``fast`` (``FAST_RECIPE``; default on synthetic data) or ``stock`` (Ultralytics' defaults).
        eval_batch: validation batch (default 1 on synthetic data, so ms/image is single-image latency; else
            ``batch``).
        split: the split validated (``val`` or ``test``).
        train_args: more Ultralytics train() overrides, applied last.
    """
    from ultralytics import YOLO
    from ultralytics.utils.files import increment_path

    from pst_yolo.toggle import pst_layers, set_topk

    t_start = time.perf_counter()
    from pst_yolo.bench import check_bench_inputs

    models, topk, labels = check_bench_inputs(models, topk, recipe, RECIPES, _label)

    if data is not None and not (Path(data) / "train").is_dir() and not (Path(data) / split).is_dir():
        raise FileNotFoundError(f"data={data}: expected an ImageFolder root with train/ and {split}/ folders "
                                "(one subfolder per class), e.g. one written by `pst-yolo synth task=classify`")

    run_dir = increment_path(Path(project) / name, exist_ok=exist_ok).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if data is None:
        spec = synth or MAIN_SYNTH
        if verbose:
            print(f"pst-yolo bench task=classify: generating the synthetic dataset ({spec.classes} classes x "
                  f"{spec.train} train / {spec.val} val images, {spec.imgsz} px) in {run_dir / 'data'}")
        data_dir = generate_classify(run_dir / "data", spec)
    else:
        data_dir = Path(data)
    recorded = read_classify_spec(data_dir)
    synthetic = recorded is not None
    recipe = recipe or ("fast" if synthetic else "stock")
    if imgsz is None:
        imgsz = int(recorded["spec"]["imgsz"]) if synthetic else 224
    epochs = epochs if epochs is not None else (MAIN_EPOCHS if recipe == "fast" else 100)
    batch = batch if batch is not None else (MAIN_BATCH if recipe == "fast" else 16)
    eval_batch = eval_batch if eval_batch is not None else (1 if synthetic else batch)
    train_kw: dict[str, Any] = dict(FAST_RECIPE) if recipe == "fast" else {}
    if recipe == "fast":
        train_kw["nbs"] = batch  # one optimizer step per batch
    train_kw.update(data=str(data_dir), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers, seed=seed,
                    deterministic=True, device=device, project=str(run_dir), exist_ok=True, plots=False,
                    verbose=verbose)
    train_kw.update(train_args or {})
    settings = {"data": str(data_dir), "models": models, "topk": topk, "epochs": epochs, "imgsz": imgsz,
                "batch": batch, "recipe": recipe, "eval_batch": eval_batch, "split": split, "device": device,
                "seed": seed, "train_args": {k: v for k, v in train_kw.items() if k not in ("data", "project")}}

    weights: dict[str, tuple[str, float | None]] = {}
    to_train = [m for m in models if Path(m).suffix in (".yaml", ".yml")]
    for i, m in enumerate(to_train, 1):
        if verbose:
            print(f"\n[train {i}/{len(to_train)}] {m}: {epochs} epochs, imgsz {imgsz}, batch {batch}, recipe {recipe}")
        t0 = time.perf_counter()
        with _no_clamp_warning():  # Ultralytics' FLOP probe at build time (32 px: one stride-32 token < k)
            model = YOLO(m, task="classify")
        model.train(name=_label(m), **train_kw)
        trainer = model.trainer
        best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
        weights[m] = (str(best), time.perf_counter() - t0)
    for m in models:
        if m not in weights:
            if not Path(m).is_file():
                raise FileNotFoundError(f"weights not found: {m}")
            weights[m] = (m, None)

    rows: list[ClassifyBenchRow] = []
    for m in models:
        path, train_s = weights[m]
        label = _label(m)
        yolo = YOLO(path, task="classify")
        has_pst = bool(pst_layers(yolo))
        ks: list[int | None] = list(topk) if (has_pst and topk) else [None]
        params = _count_params(yolo.model)
        gflops = _gflops(yolo.model, imgsz)
        for k in ks:
            if k is not None:
                set_topk(yolo, k)
            metrics = yolo.val(data=str(data_dir), imgsz=imgsz, batch=eval_batch, device=device, workers=workers,
                               split=split, plots=False, verbose=False, project=str(run_dir / "val"),
                               name=f"{label}{'' if k is None else f'_k{k}'}", exist_ok=True)
            row = ClassifyBenchRow(model=label, k=k, params=params, gflops=gflops, top1=float(metrics.top1),
                                   top5=float(metrics.top5), ms_per_image=float(metrics.speed.get("inference", math.nan)),
                                   weights=path, train_seconds=train_s)
            rows.append(row)
            if verbose:
                print(f"  {label}{'' if k is None else f' k={k}'}: top-1 {row.top1:.3f}, top-5 {row.top5:.3f}, "
                      f"{row.ms_per_image:.2f} ms/image")

    seconds = time.perf_counter() - t_start
    table = bench_table(rows)
    md, csv_path = run_dir / "results.md", run_dir / "results.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "k", "params", "GFLOPs", "top1", "top5", "ms_per_image", "train_seconds", "weights"])
        for r in rows:
            w.writerow([r.model, "" if r.k is None else r.k, r.params, f"{r.gflops:.4f}", f"{r.top1:.5f}",
                        f"{r.top5:.5f}", f"{r.ms_per_image:.3f}", "" if r.train_seconds is None else f"{r.train_seconds:.1f}",
                        r.weights])
    train_minutes = {r.model: r.train_seconds / 60 for r in rows if r.train_seconds is not None}
    trained = "; ".join(f"{m} {t:.1f} min" for m, t in train_minutes.items())
    md.write_text(
        f"# pst-yolo bench task=classify\n\n{table}\n\n"
        f"- data: `{data_dir}` (split `{split}`{', synthetic: ' + json.dumps(recorded['spec']) if synthetic else ''})\n"
        f"- training: {json.dumps(settings['train_args']) if to_train else '- (all models given as weights)'}\n"
        f"- validation: imgsz {imgsz}, batch {eval_batch}; ms/image is Ultralytics' inference time per image\n"
        f"- GFLOPs: Ultralytics/thop at imgsz {imgsz}, k = 0 (attention matrix products not counted)\n"
        f"- training time: {trained or '-'}; total {seconds / 60:.1f} min\n"
        f"- machine: {_machine()}\n")
    if verbose:
        print(f"\nResults ({run_dir}): results.md, results.csv; total {seconds / 60:.1f} min\n")
        print(table)
    return ClassifyBenchResult(rows=rows, run_dir=run_dir, markdown=md, csv=csv_path, table=table, data=data_dir,
                               seconds=seconds, settings=settings)


# ---------------------------------------------------------------------------------------------
# Command line (wired into `pst-yolo` by pst_yolo.cli)
# ---------------------------------------------------------------------------------------------
def _words(argv: Sequence[str], command: str, positional: str | None = None) -> list[str]:
    """Drop a ``task=classify`` word (the dispatcher's), refuse another task; a leading bare word becomes
    ``positional=word``."""
    from pst_yolo.cli import CLIError

    out = []
    for i, word in enumerate(argv):
        key, sep, value = word.partition("=")
        if sep and key == "task":
            if value != "classify":
                raise CLIError(f"`pst-yolo {command}` here is the classification variant; got task={value}")
            continue
        if i == 0 and positional and not sep:
            word = f"{positional}={word}"
        out.append(word)
    return out


SYNTH_KEYS = {f.name: int for f in fields(ClassifySynthSpec)}


def cli_synth_classify(argv: list[str]) -> int:
    """``pst-yolo synth task=classify OUT train=80 val=20 imgsz=96 seed=0 classes=10`` (train/val: per class)."""
    from pst_yolo.cli import CLIError, parse_kv

    opts = parse_kv(_words(argv, "synth task=classify", positional="out"), {"out": str, **SYNTH_KEYS},
                    "synth task=classify")
    out = opts.pop("out", "datasets/pst-synth-cls")
    try:
        spec = ClassifySynthSpec(**opts)
    except ValueError as e:
        raise CLIError(str(e)) from e
    path = generate_classify(out, spec)
    print(f"synthetic classification dataset written: {path} ({spec.classes} classes x {spec.train} train / "
          f"{spec.val} val images, {spec.imgsz} px); train with: yolo classify train model=yolo11n-cls-pst.yaml "
          f"data={path} imgsz={spec.imgsz}")
    return 0


def cli_bench_classify(argv: list[str]) -> int:
    """``pst-yolo bench task=classify`` (the embedded default) or with ``data=DIR models=a.yaml,b.pt topk=0,8
    epochs= imgsz= batch= ...``; ``train= val= synth_imgsz= synth_seed= classes=`` size the generated set."""
    from pst_yolo.cli import CLIError, parse_kv

    keys = {"data": str, "models": _str_list, "topk": _int_list, "epochs": int, "imgsz": int, "batch": int,
            "workers": int, "seed": int, "device": str, "project": str, "name": str, "exist_ok": _to_bool,
            "recipe": str, "eval_batch": int, "split": str,
            "train": int, "val": int, "synth_imgsz": int, "synth_seed": int, "classes": int}
    opts = parse_kv(_words(argv, "bench task=classify"), keys, "bench task=classify")
    synth_keys = {k: opts.pop(k) for k in ("train", "val", "synth_imgsz", "synth_seed", "classes") if k in opts}
    if synth_keys:
        if "data" in opts:
            raise CLIError(f"{', '.join(k + '=' for k in synth_keys)} describe the generated dataset; they do not "
                           "apply with data=")
        renamed = {"synth_imgsz": "imgsz", "synth_seed": "seed"}
        try:
            opts["synth"] = replace(MAIN_SYNTH, **{renamed.get(k, k): v for k, v in synth_keys.items()})
        except ValueError as e:
            raise CLIError(str(e)) from e
    try:
        bench_classify(**opts)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from e
    return 0


def cli_params_classify(argv: list[str]) -> int:
    """``imgsz=224 nc=1000``: the parameter/GFLOP table of the shipped classifiers next to their baselines."""
    from pst_yolo.cli import parse_kv

    opts = parse_kv(_words(argv, "configs task=classify"), {"imgsz": int, "nc": int}, "configs task=classify")
    print(param_table(param_rows(**opts)))
    return 0
