"""``pst-yolo bench``: train (or load) detectors, score each with pycocotools at each PST top-k, tabulate.

    from pst_yolo.bench import bench
    result = bench()                       # the main job: synthetic data, yolo11n vs yolo11n-pst, k = 0 and 8
    result = bench(data="datasets/coco/data.yaml", models=["best_n.pt", "best_n_pst.pt"], topk=[0, 8], imgsz=640)
    print(result.markdown)                 # also in result.run_dir / results.md, results.csv, results.png

Every ``.yaml`` model is trained with the same recipe (PST models train coarse-only, as the paper
does); ``.pt`` models are evaluated as they are. A model with PST layers is evaluated once per k in
``topk``; a model without PST layers once (k "-"). Scores are COCOeval bbox numbers on the val split's
COCO JSON, with the dataset's own image and category ids.

With no ``data`` (and no ``annotations``), the embedded synthetic dataset is generated into the run
folder first: with all defaults this is the main job (``MAIN_SYNTH``, ``MAIN_EPOCHS``, ``FAST_RECIPE``).
"""

from __future__ import annotations

import csv
import os
import platform
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from pst_yolo.cli import int_list as _int_list, str_list as _str_list
from pst_yolo.synth import MAP_FILE, SynthSpec, read_map

DEFAULT_MODELS = ("yolo11n.yaml", "yolo11n-pst.yaml")
DEFAULT_TOPK = (0, 8)

# The main job (`pst-yolo bench` with no arguments): dataset size, image size and training recipe tuned
# so that both nano models reach COCO AP50-95 >= 0.5 on the synthetic val split in <= 15 minutes on a
# 2-core CPU (measured runs: docs/benchmarks.md).
MAIN_SYNTH = SynthSpec(train=1000, val=100, imgsz=160, seed=0)
MAIN_EPOCHS = 8
MAIN_BATCH = 16
# Ultralytics train() overrides of the fast recipe, applied on top of its defaults. Used for the main
# job and for any dataset written by `pst-yolo synth`; other datasets get Ultralytics' stock recipe.
# Train and val images come from the same generator, so augmentation is light (no mosaic, small
# scale jitter) and every batch is an optimizer step: what converges fastest per CPU second.
FAST_RECIPE: dict[str, Any] = {
    "optimizer": "AdamW",
    "lr0": 0.003,
    "nbs": MAIN_BATCH,  # one optimizer step per batch (set to the batch size; the default 64 accumulates)
    "warmup_epochs": 1.0,
    "mosaic": 0.0,
    "scale": 0.25,
    "close_mosaic": 0,  # (no mosaic to close)
    "val": False,  # no validation between epochs (the final epoch is still validated)
    "amp": False,
}
RECIPES = ("fast", "stock")

COLUMNS = ("model", "k", "params", "GFLOPs", "AP", "AP50", "APs", "APm", "APl", "ms/image")


@dataclass
class BenchRow:
    model: str  # name shown in the table (file stem)
    k: int | None  # None: model without PST layers
    params: int
    gflops: float
    stats: dict[str, float]
    ms_per_image: float | None
    weights: str
    detections: str
    train_seconds: float | None = None

    def cells(self) -> list[str]:
        def ap(key):
            v = self.stats.get(key, -1.0)
            return "-" if v < 0 else f"{v:.3f}"

        return [self.model, "-" if self.k is None else str(self.k), f"{self.params / 1e6:.2f} M",
                f"{self.gflops:.2f}", ap("AP"), ap("AP50"), ap("APs"), ap("APm"), ap("APl"),
                "-" if self.ms_per_image is None else f"{self.ms_per_image:.1f}"]


@dataclass
class BenchResult:
    rows: list[BenchRow]
    run_dir: Path
    markdown: Path
    csv: Path
    plot: Path
    table: str
    data: Path | None
    seconds: float
    settings: dict = field(default_factory=dict)


def markdown_table(rows: Sequence[BenchRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def _find_data_yaml(data: str | Path) -> Path:
    p = Path(data)
    if p.is_dir():
        p = p / "data.yaml"
    if not p.is_file():
        raise FileNotFoundError(f"data={data}: no such data.yaml (give a folder written by `pst-yolo synth` or "
                                "`pst-yolo coco2yolo`, or its data.yaml)")
    return p


def _eval_source(data_yaml: Path | None, annotations, images) -> tuple[Path, Path, Any, str | None]:
    """(annotations JSON, images folder, class_map, dataset source) for scoring."""
    if annotations is not None:
        if images is None:
            raise ValueError("annotations= needs images= (the folder its file_name entries are relative to)")
        class_map = None
        if data_yaml is not None and (data_yaml.parent / MAP_FILE).is_file():
            class_map = data_yaml.parent / MAP_FILE
        return Path(annotations), Path(images), class_map, None
    if data_yaml is None:
        raise ValueError("give data= (a pst-yolo synth / coco2yolo dataset) or annotations= and images=")
    map_path = data_yaml.parent / MAP_FILE
    if not map_path.is_file():
        raise FileNotFoundError(
            f"no {MAP_FILE} next to {data_yaml}: COCO scoring needs the val split's COCO JSON. Make the dataset "
            "with `pst-yolo synth` or `pst-yolo coco2yolo`, or pass annotations=... images=...")
    doc = read_map(map_path)
    val = doc["splits"].get("val") or []
    if len(val) != 1:
        raise ValueError(f"{map_path} lists {len(val)} COCO JSON files for val; scoring needs exactly one "
                         "(pass annotations= and images=)")
    return val[0]["annotations"], val[0]["images"], map_path, doc.get("source")


def model_label(model: str | Path) -> str:
    """The name a model gets in the table: the file stem, or the run folder for ``<run>/weights/best.pt``."""
    p = Path(model)
    if p.suffix == ".pt" and p.parent.name == "weights" and p.stem in ("best", "last") and p.parent.parent.name:
        return p.parent.parent.name + ("" if p.stem == "best" else "-last")
    return p.stem


def _count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _gflops(module, imgsz: int) -> float:
    from copy import deepcopy

    from ultralytics.utils.torch_utils import get_flops

    with warnings.catch_warnings():  # thop's small proxy input makes PST clamp k, with a warning: not news here
        warnings.simplefilter("ignore")
        return float(get_flops(deepcopy(module), imgsz))


def _machine() -> str:
    import torch

    try:
        from ultralytics.utils.torch_utils import get_cpu_info

        cpu = get_cpu_info()
    except Exception:  # noqa: BLE001 - only cosmetic
        cpu = platform.processor() or "unknown CPU"
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} CPU threads{gpu}, torch {torch.__version__}, {platform.system()}"


def _plot(rows: Sequence[BenchRow], path: Path, title: str) -> Path:
    """AP vs ms/image, one point per row; the k settings of one PST model joined by a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    by_model: dict[str, list[BenchRow]] = {}
    for r in rows:
        by_model.setdefault(r.model, []).append(r)
    for name, group in by_model.items():
        pts = [(r.ms_per_image or 0.0, max(r.stats.get("AP", 0.0), 0.0), r) for r in group]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        style = "o-" if len(group) > 1 else "s"
        ax.plot(xs, ys, style, label=name)
        for x, y, r in pts:
            if r.k is not None:
                ax.annotate(f"k={r.k}", (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xlabel("ms / image (batch 1, preprocess + inference + NMS)")
    ax.set_ylabel("COCO AP50-95")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------
def check_bench_inputs(models, topk, recipe, recipes, label) -> tuple[list[str], list[int], list[str]]:
    """Validate a benchmark's models/topk/recipe (shared by detection and classification benches).

    Returns (models as strings, topk as ints, one table label per model via ``label``)."""
    models = [str(m) for m in models]
    if not models:
        raise ValueError("models= is empty: give at least one .yaml config or .pt weights file")
    for m in models:
        if Path(m).suffix not in (".yaml", ".yml", ".pt"):
            raise ValueError(f"model {m!r}: give a .yaml config (trained here) or .pt weights (evaluated as is)")
    topk = [int(k) for k in topk]
    if any(k < 0 for k in topk):
        raise ValueError(f"topk values must be >= 0, got {topk}")
    if recipe is not None and recipe not in recipes:
        raise ValueError(f"recipe must be one of {', '.join(recipes)}, got {recipe!r}")
    labels = [label(m) for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"models {models} share a name ({', '.join(labels)}); rename them so the table can tell "
                         "them apart")
    return models, topk, labels


def bench(data: str | Path | None = None, models: Sequence[str | Path] = DEFAULT_MODELS,
          topk: Sequence[int] = DEFAULT_TOPK, epochs: int | None = None, imgsz: int | None = None,
          batch: int | None = None, workers: int = 0, seed: int = 0, device: str = "cpu",
          project: str | Path = "runs/pst-bench", name: str = "bench", exist_ok: bool = False,
          annotations: str | Path | None = None, images: str | Path | None = None,
          synth: SynthSpec | None = None, recipe: str | None = None, eval_batch: int = 1,
          train_args: Mapping[str, Any] | None = None, verbose: bool = True) -> BenchResult:
    """Train/load each model, evaluate it with pycocotools at each k, write results.md/.csv/.png.

    Args:
        data: a dataset folder or ``data.yaml`` written by ``pst-yolo synth`` or ``pst-yolo coco2yolo``
            (its ``coco_map.json`` names the val COCO JSON). None: generate the synthetic set (``synth``,
            default ``MAIN_SYNTH``) into the run folder.
        models: ``.yaml`` configs (trained here, same recipe for all) and/or ``.pt`` weights (used as is).
        topk: the k values at which models with PST layers are evaluated.
        epochs, imgsz, batch: training/evaluation settings (default: the main job's, or Ultralytics'
            epochs=100 / imgsz=640 / batch=16 with the stock recipe).
        annotations, images: score against this COCO JSON and images folder instead of the dataset's.
        recipe: ``fast`` (``FAST_RECIPE``; default for synthetic data) or ``stock`` (Ultralytics defaults).
        eval_batch: images per forward pass when evaluating (1 = latency per image).
        train_args: more Ultralytics train() overrides (e.g. ``{"lr0": 0.01}``), applied last.
    """
    from ultralytics import YOLO
    from ultralytics.utils.files import increment_path

    import pst_yolo
    from pst_yolo.coco import evaluate
    from pst_yolo.synth import generate

    t_start = time.perf_counter()
    models, topk, stems = check_bench_inputs(models, topk, recipe, RECIPES, model_label)
    to_train = [m for m in models if Path(m).suffix in (".yaml", ".yml")]

    run_dir = increment_path(Path(project) / name, exist_ok=exist_ok).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)

    synthetic = data is None and annotations is None
    if synthetic:
        spec = synth or MAIN_SYNTH
        if verbose:
            print(f"pst-yolo bench: generating the synthetic dataset ({spec.train} train / {spec.val} val images, "
                  f"{spec.imgsz} px) in {run_dir / 'data'}")
        data_yaml = generate(run_dir / "data", spec)
    else:
        data_yaml = _find_data_yaml(data) if data is not None else None
    ann_path, img_dir, class_map, source = _eval_source(data_yaml, annotations, images)
    synth_imgsz = (synth or MAIN_SYNTH).imgsz if synthetic else None
    if source == "pst-yolo synth":  # a dataset from `pst-yolo synth`: its own image size, the fast recipe
        synthetic = True
        synth_imgsz = read_map(data_yaml.parent / MAP_FILE).get("spec", {}).get("imgsz")
    if recipe is None:
        recipe = "fast" if synthetic else "stock"
    if to_train and data_yaml is None:
        raise ValueError(f"{', '.join(to_train)} must be trained, which needs data= (a data.yaml with a train split)")
    if imgsz is None:
        imgsz = synth_imgsz or 640
    epochs = epochs if epochs is not None else (MAIN_EPOCHS if recipe == "fast" else 100)
    batch = batch if batch is not None else (MAIN_BATCH if recipe == "fast" else 16)
    train_kw: dict[str, Any] = dict(FAST_RECIPE) if recipe == "fast" else {}
    if recipe == "fast":
        train_kw["nbs"] = batch
    train_kw.update(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers, seed=seed,
                    deterministic=True, device=device, project=str(run_dir), exist_ok=True, plots=False,
                    verbose=verbose)
    train_kw.update(train_args or {})
    settings = {"data": str(data_yaml) if data_yaml else None, "annotations": str(ann_path), "images": str(img_dir),
                "models": models, "topk": topk, "epochs": epochs, "imgsz": imgsz, "batch": batch,
                "recipe": recipe, "train_args": {k: v for k, v in train_kw.items() if k not in ("data", "project")},
                "eval_batch": eval_batch, "device": device, "seed": seed}

    n_steps = len(to_train) + sum(1 for m in models)  # train steps + evaluation steps (per model)
    step = 0
    weights: dict[str, tuple[str, float | None]] = {}
    for m in models:
        stem = model_label(m)
        if m in to_train:
            step += 1
            if verbose:
                print(f"\n[{step}/{n_steps}] training {m}: {epochs} epochs, imgsz {imgsz}, batch {batch}, "
                      f"recipe {recipe}")
            t0 = time.perf_counter()
            model = YOLO(m)
            model.train(name=stem, **train_kw)
            trainer = model.trainer
            best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
            weights[m] = (str(best), time.perf_counter() - t0)
        else:
            if not Path(m).is_file():
                raise FileNotFoundError(f"weights not found: {m}")
            weights[m] = (m, None)

    rows: list[BenchRow] = []
    for m in models:
        step += 1
        path, train_s = weights[m]
        stem = model_label(m)
        yolo = YOLO(path)
        has_pst = bool(pst_yolo.pst_layers(yolo))
        if has_pst:  # the given k values, or (topk=[]) the k the checkpoint carries
            current = pst_yolo.get_topk(yolo)
            ks: list[int | None] = list(topk) if topk else [current if isinstance(current, int) else None]
        else:
            ks = [None]
        if verbose:
            print(f"\n[{step}/{n_steps}] evaluating {stem} ({path}) on {ann_path.name}"
                  f"{' at k = ' + ', '.join(map(str, ks)) if has_pst else ''}")
        params = _count_params(yolo.model)  # before evaluation fuses Conv+BN in place
        gflops = {}
        for k in ks:
            if k is not None:
                pst_yolo.set_topk(yolo, k)
            gflops[k] = _gflops(yolo.model, imgsz)
        for k in ks:
            det_path = run_dir / "detections" / f"{stem}{'' if k is None else f'_k{k}'}.json"
            res = evaluate(yolo, img_dir, ann_path, topk=k, imgsz=imgsz, batch=eval_batch, device=device,
                           class_map=class_map, save=det_path, verbose=False, progress=verbose)
            rows.append(BenchRow(model=stem, k=k, params=params, gflops=gflops[k], stats=res.stats,
                                 ms_per_image=res.ms_per_image, weights=path, detections=str(det_path),
                                 train_seconds=train_s))
            if verbose:
                print(f"  {stem}{'' if k is None else f' k={k}'}: AP {res.stats['AP']:.3f}, "
                      f"AP50 {res.stats['AP50']:.3f}, {res.ms_per_image:.1f} ms/image")

    seconds = time.perf_counter() - t_start
    table = markdown_table(rows)
    md, csv_path, png = run_dir / "results.md", run_dir / "results.csv", run_dir / "results.png"
    _write_csv(rows, csv_path)
    title = f"{Path(ann_path).name}: {len(rows)} settings, imgsz {imgsz}"
    _plot(rows, png, title)
    md.write_text(_markdown_report(table, settings, seconds, rows))
    if verbose:
        print(f"\nResults ({run_dir}): results.md, results.csv, results.png; total {seconds / 60:.1f} min\n")
        print(table)
    return BenchResult(rows=rows, run_dir=run_dir, markdown=md, csv=csv_path, plot=png, table=table,
                       data=data_yaml, seconds=seconds, settings=settings)


def _write_csv(rows: Sequence[BenchRow], path: Path) -> None:
    from pst_yolo.coco import STAT_NAMES

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "k", "params", "GFLOPs", *STAT_NAMES, "ms_per_image", "train_seconds", "weights",
                    "detections"])
        for r in rows:
            w.writerow([r.model, "" if r.k is None else r.k, r.params, f"{r.gflops:.4f}",
                        *(f"{r.stats[s]:.5f}" for s in STAT_NAMES),
                        "" if r.ms_per_image is None else f"{r.ms_per_image:.3f}",
                        "" if r.train_seconds is None else f"{r.train_seconds:.1f}", r.weights, r.detections])


def _markdown_report(table: str, settings: dict, seconds: float, rows: Sequence[BenchRow]) -> str:
    trained = [f"{r.model} {r.train_seconds / 60:.1f} min" for r in rows if r.train_seconds is not None]
    trained = list(dict.fromkeys(trained))
    lines = [
        "# pst-yolo bench", "",
        f"- data: `{settings['data']}`; scored against `{settings['annotations']}` (pycocotools COCOeval, bbox, "
        "maxDets 100, conf 0.001)",
        f"- models: {', '.join(settings['models'])}; PST top-k: {', '.join(map(str, settings['topk'])) or '-'}",
        f"- imgsz {settings['imgsz']}, epochs {settings['epochs']}, batch {settings['batch']}, recipe "
        f"{settings['recipe']}, seed {settings['seed']}, device {settings['device']}",
        f"- machine: {_machine()}",
        f"- wall time: {seconds / 60:.1f} min" + (f" (training: {', '.join(trained)})" if trained else ""),
        "",
        table,
        "",
        "k = fine-branch top-k of the PST layers (0 = coarse attention only; \"-\" = no PST layers). GFLOPs: "
        f"Ultralytics' thop count at imgsz {settings['imgsz']} (attention matrix products not counted, so PST's "
        "are a lower bound). ms/image: wall time of preprocess + inference + NMS at batch "
        f"{settings['eval_batch']} on {settings['device']}, measured during the evaluation.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def cli_bench(argv: list[str]) -> int:
    """``pst-yolo bench`` (no arguments: the main job) or ``pst-yolo bench data=... models=a.yaml,b.pt topk=0,8
    epochs=... imgsz=...`` (``--key value`` works too): pst_yolo.bench.bench()."""
    from pst_yolo.cli import CLIError, parse_kv
    from pst_yolo.synth import normalize_argv, to_bool

    keys = {"data": str, "models": _str_list, "topk": _int_list, "epochs": int, "imgsz": int, "batch": int,
            "workers": int, "seed": int, "device": str, "project": str, "name": str, "exist_ok": to_bool,
            "annotations": str, "images": str, "recipe": str, "eval_batch": int,
            # the generated dataset when data= is not given
            "train": int, "val": int, "synth_imgsz": int, "synth_seed": int}
    opts = parse_kv(normalize_argv(argv), keys, "bench")
    synth_keys = {k: opts.pop(k) for k in ("train", "val", "synth_imgsz", "synth_seed") if k in opts}
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
        bench(**opts)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from e
    return 0


if __name__ == "__main__":  # python -m pst_yolo.bench ... (the same as `pst-yolo bench ...`)
    import sys

    from pst_yolo.cli import CLIError

    try:
        sys.exit(cli_bench(sys.argv[1:]))
    except CLIError as e:
        print(f"pst-yolo bench: error: {e}", file=sys.stderr)
        sys.exit(2)
