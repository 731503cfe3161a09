"""``pst-yolo bench``: train (or load) models, score each at each PST top-k, tabulate -- for every task.

    from pst_yolo.eval.bench import bench
    result = bench()                        # the main job: synthetic data, yolo11n vs yolo11n-pst, k = 0 and 8
    result = bench(task="classify")         # yolo11n-cls vs yolo11n-cls-pst on a synthetic ImageFolder set
    result = bench(task="segment")          # yolo11n-seg vs yolo11n-seg-pst (also task="pose", "obb")
    result = bench(data="datasets/coco/data.yaml", models=["best_n.pt", "best_n_pst.pt"], topk=[0, 8], imgsz=640)
    result = bench(data="datasets/coco/data.yaml", models=["best.pt", "best_openvino_model"], precision="fp32")
    print(result.table)                     # also in result.run_dir / results.md, results.csv, results.png

One runner for every task: every ``.yaml`` model is trained with the same recipe (PST models train
coarse-only, as the paper does); ``.pt`` models and exports (``.onnx``, ``*_openvino_model``, ...) are evaluated
as they are. A model with PST layers is evaluated once per k in ``topk``; a model without PST layers once (k "-");
an export once, at the k it was exported at. Detection is scored with
pycocotools (COCOeval bbox) on the val split's COCO JSON with the dataset's own ids; classification
with Ultralytics' top-1/top-5; segmentation, pose and oriented boxes with Ultralytics' validation mAP of
the task (box + mask, box + keypoint OKS, rotated box), segmentation also with pycocotools mask AP
(``segm``) where the dataset has a COCO JSON with masks. What differs between the tasks lives in one
``BenchTask`` each.

With no ``data`` (and no ``annotations``), the embedded synthetic dataset of the task is generated into the
run folder first: with all defaults this is the main job (``DETECT.main_synth``, ``main_epochs``, ``fast_recipe``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from pst_yolo.data.coco_map import MAP_FILE, read_map
from pst_yolo.data.synth import SynthSpec
from pst_yolo.data.synth_classify import ClassifySynthSpec
from pst_yolo.data.synth_tasks import dataset_task
from pst_yolo.data.writer import save_figure, write_csv, write_text
from pst_yolo.eval.flops import GFLOPS_NOTE
from pst_yolo.eval.tables import machine_description, model_label, model_size

DEFAULT_TOPK = (0, 8)
RECIPES = ("fast", "stock")


# --------------------------------------------------------------------------------------------------
# Rows and results
# --------------------------------------------------------------------------------------------------
@dataclass
class BenchRow:
    model: str  # name shown in the table (see tables.model_label)
    k: Optional[int]  # None: model without PST layers
    params: Optional[int]  # None: an export (its network is not a PyTorch module here)
    gflops: Optional[float]  # pst_yolo.eval.flops at the row's k and imgsz; None: an export
    stats: dict[str, float]  # detection: the 12 COCOeval numbers by name; classification: top1, top5
    ms_per_image: Optional[float]
    weights: str
    detections: Optional[str] = None  # detection: the detections JSON that was scored
    train_seconds: Optional[float] = None
    imgsz: Optional[int] = None  # the size it was evaluated at (a .pt: its training size unless imgsz= is given)
    runtime: str = "PyTorch"  # what it ran in (integration.precision.runtime_name) ...
    precision: str = "fp32"  # ... and at which precision


@dataclass
class BenchResult:
    rows: list[BenchRow]
    run_dir: Path
    markdown: Path
    csv: Path
    plot: Path
    table: str
    data: Optional[Path]
    seconds: float
    settings: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# What differs between tasks
# --------------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """A prepared dataset: what to train on and what to score against."""

    train: Optional[Path]  # data= for Ultralytics (None: nothing to train on)
    synthetic: bool  # written by pst-yolo synth: the fast recipe and the set's own image size apply
    imgsz: Optional[int]  # the set's own image size (synthetic sets), else None
    score_args: dict = field(default_factory=dict)  # task-specific, for BenchTask.score
    description: str = ""


@dataclass(frozen=True)
class BenchTask:
    """Everything task-specific about a benchmark."""

    name: str  # Ultralytics task
    default_models: tuple[str, ...]
    main_synth: Any  # the embedded dataset spec
    main_epochs: int
    main_batch: int
    fast_recipe: Mapping[str, Any]  # Ultralytics train() overrides for synthetic data
    columns: tuple[str, ...]  # the metric columns of the table (from BenchRow.stats)
    primary: str  # the metric the plot shows
    csv_stats: tuple[str, ...]  # every stat written to results.csv
    prepare: Callable[..., Dataset]
    score: Callable[..., tuple[dict[str, float], Optional[float], Optional[str]]]
    stock_imgsz: int = 640
    eval_batch: Optional[int] = None  # default evaluation batch; None: 1 on synthetic sets (latency), else batch
    check: Optional[Callable[..., None]] = None  # (data, annotations, images, split): refuse unusable data early


def _prepare_detect(data, run_dir: Path, synth, annotations, images, split: str, verbose: bool) -> Dataset:
    from pst_yolo.data.synth import generate

    if data is None and annotations is None:
        spec = synth or DETECT.main_synth
        if verbose:
            print(
                f"pst-yolo bench: generating the synthetic dataset ({spec.train} train / {spec.val} val images, "
                f"{spec.imgsz} px) in {run_dir / 'data'}"
            )
        data_yaml = generate(run_dir / "data", spec)
    else:
        data_yaml = _find_data_yaml(data) if data is not None else None
    ann_path, img_dir, class_map, source = _coco_source(data_yaml, annotations, images)
    synthetic = source == "pst-yolo synth"
    imgsz = read_map(data_yaml.parent / MAP_FILE).get("spec", {}).get("imgsz") if synthetic else None
    return Dataset(
        train=data_yaml,
        synthetic=synthetic,
        imgsz=imgsz,
        score_args={"annotations": ann_path, "images": img_dir, "class_map": class_map},
        description=f"`{data_yaml}`; scored against `{ann_path}` (pycocotools COCOeval, bbox, maxDets 100, conf 0.001)",
    )


def _score_detect(
    yolo,
    k,
    label: str,
    run_dir: Path,
    imgsz: int,
    eval_batch: int,
    device: str,
    workers: int,
    split: str,
    verbose: bool,
    annotations,
    images,
    class_map,
):
    from pst_yolo.eval.coco import evaluate

    det_path = run_dir / "detections" / f"{label}{'' if k is None else f'_k{k}'}.json"
    res = evaluate(
        yolo,
        images,
        annotations,
        topk=k,
        imgsz=imgsz,
        batch=eval_batch,
        device=device,
        class_map=class_map,
        save=det_path,
        verbose=False,
        progress=verbose,
    )
    return dict(res.stats), res.ms_per_image, str(det_path)


def _prepare_classify(data, run_dir: Path, synth, annotations, images, split: str, verbose: bool) -> Dataset:
    from pst_yolo.data.synth_classify import generate_classify, read_classify_spec

    if data is None:  # (bench checked data, annotations and images first: _check_classify_data)
        spec = synth or CLASSIFY.main_synth
        if verbose:
            print(
                f"pst-yolo bench task=classify: generating the synthetic dataset ({spec.classes} classes x "
                f"{spec.train} train / {spec.val} val images, {spec.imgsz} px) in {run_dir / 'data'}"
            )
        data_dir = generate_classify(run_dir / "data", spec)
    else:
        data_dir = Path(data)
    recorded = read_classify_spec(data_dir)
    return Dataset(
        train=data_dir,
        synthetic=recorded is not None,
        imgsz=int(recorded["spec"]["imgsz"]) if recorded else None,
        score_args={"data": data_dir},
        description=f"`{data_dir}` (split `{split}`"
        f"{', synthetic: ' + json.dumps(recorded['spec']) if recorded else ''}); "
        "Ultralytics' top-1/top-5",
    )


def _validate(yolo, k, label: str, run_dir: Path, imgsz: int, eval_batch: int, device: str, workers: int, split, data):
    """Ultralytics' own validation of ``yolo`` at top-k ``k`` (None: as it is) on ``data``; its metrics object."""
    from pst_yolo.nn.topk import set_topk

    if k is not None:
        set_topk(yolo, k)
    return yolo.val(
        data=str(data),
        imgsz=imgsz,
        batch=eval_batch,
        device=device,
        workers=workers,
        split=split,
        plots=False,
        verbose=False,
        project=str(run_dir / "val"),
        name=f"{label}{'' if k is None else f'_k{k}'}",
        exist_ok=True,
    )


def _score_classify(
    yolo,
    k,
    label: str,
    run_dir: Path,
    imgsz: int,
    eval_batch: int,
    device: str,
    workers: int,
    split: str,
    verbose: bool,
    data: Path,
):
    metrics = _validate(yolo, k, label, run_dir, imgsz, eval_batch, device, workers, split, data)
    return (
        {"top1": float(metrics.top1), "top5": float(metrics.top5)},
        float(metrics.speed.get("inference", math.nan)),
        None,
    )


# Segmentation, pose, oriented boxes: Ultralytics' validation metrics, (column, results_dict key) per task.
TASK_METRICS = {
    "segment": (
        ("box mAP50-95", "metrics/mAP50-95(B)"),
        ("mask mAP50-95", "metrics/mAP50-95(M)"),
        ("mask mAP50", "metrics/mAP50(M)"),
    ),
    "pose": (
        ("box mAP50-95", "metrics/mAP50-95(B)"),
        ("pose mAP50-95", "metrics/mAP50-95(P)"),
        ("pose mAP50", "metrics/mAP50(P)"),
    ),
    "obb": (("mAP50-95", "metrics/mAP50-95(B)"), ("mAP50", "metrics/mAP50(B)")),
}
COCO_SEGM = (("COCO segm AP", "AP"), ("COCO segm AP50", "AP50"))  # pycocotools mask AP (column, stat)


def _coco_masks(data_yaml: Path, annotations, images) -> Optional[tuple[Path, Path, Optional[Path]]]:
    """(annotations, images, mapping file) to score masks with pycocotools: ``annotations=``/``images=``, else the
    val split's COCO JSON named in the dataset's ``coco_map.json`` if every annotation in it has a mask."""
    map_path = data_yaml.parent / MAP_FILE
    check_scoring_pair(annotations, images)
    if annotations is not None:
        return Path(annotations), Path(images), map_path if map_path.is_file() else None
    if not map_path.is_file():
        return None
    val = read_map(map_path)["splits"].get("val") or []
    if len(val) != 1:
        return None
    anns = json.loads(Path(val[0]["annotations"]).read_text()).get("annotations", [])
    if not anns or not all(a.get("segmentation") for a in anns):
        return None
    return Path(val[0]["annotations"]), Path(val[0]["images"]), map_path


def _prepare_task(data, run_dir: Path, synth, annotations, images, split: str, verbose: bool, task: str) -> Dataset:
    """Segmentation, pose, oriented boxes: an Ultralytics dataset of the task (generated if ``data`` is None)."""
    from pst_yolo.data.synth_tasks import generate_task

    if data is None:  # (bench checked data, annotations and images first: _check_task_data)
        spec = synth or TASKS[task].main_synth
        if verbose:
            print(
                f"pst-yolo bench task={task}: generating the synthetic dataset ({spec.train} train / {spec.val} val "
                f"images, {spec.imgsz} px) in {run_dir / 'data'}"
            )
        data_yaml = generate_task(run_dir / "data", task, spec)
    else:
        data_yaml = _find_data_yaml(data)
    written_for = dataset_task(data_yaml)
    if written_for is not None and written_for != task:
        raise ValueError(
            f"data={data_yaml.parent} was generated for task={written_for}, not task={task}; generate one with "
            f"`pst-yolo synth task={task}`"
        )
    synthetic = written_for == task
    segm = _coco_masks(data_yaml, annotations, images) if task == "segment" else None
    recorded = read_map(data_yaml.parent / MAP_FILE)["spec"] if synthetic else None
    return Dataset(
        train=data_yaml,
        synthetic=synthetic,
        imgsz=int(recorded["imgsz"]) if recorded else None,
        score_args={"data": data_yaml, "task": task, "segm": segm},
        description=f"`{data_yaml}`{' (generated: ' + json.dumps(recorded) + ')' if recorded else ''}; "
        f"Ultralytics' {task} validation (split `{split}`)"
        + (
            f"; masks also scored against `{segm[0]}` (pycocotools COCOeval, segm, maxDets 100, conf 0.001)"
            if segm
            else ""
        ),
    )


def _score_task(
    yolo,
    k,
    label: str,
    run_dir: Path,
    imgsz: int,
    eval_batch: int,
    device: str,
    workers: int,
    split: str,
    verbose: bool,
    data: Path,
    task: str,
    segm,
):
    from pst_yolo.eval.coco_segm import evaluate_segm

    metrics = _validate(yolo, k, label, run_dir, imgsz, eval_batch, device, workers, split, data)
    stats = {col: float(metrics.results_dict.get(key, math.nan)) for col, key in TASK_METRICS[task]}
    saved = None
    if segm is not None:
        annotations, images, class_map = segm
        saved = run_dir / "detections" / f"{label}{'' if k is None else f'_k{k}'}_segm.json"
        res = evaluate_segm(
            yolo,
            images,
            annotations,
            topk=k,
            imgsz=imgsz,
            device=device,
            class_map=class_map,
            save=saved,
            verbose=False,
            progress=verbose,
        )
        stats.update({col: res.stats[stat] for col, stat in COCO_SEGM})
    return stats, float(metrics.speed.get("inference", math.nan)), None if saved is None else str(saved)


def _check_detect_data(data, annotations, images, split: str) -> None:
    """A given dataset must have a readable val COCO JSON with objects, and every image it lists."""
    from pst_yolo.eval.coco import CocoDataError, image_paths, load_ground_truth

    check_scoring_pair(annotations, images)
    if data is None and annotations is None:
        return  # the embedded synthetic set is generated
    data_yaml = _find_data_yaml(data) if data is not None else None
    ann_path, img_dir, _, _ = _coco_source(data_yaml, annotations, images)
    gt = load_ground_truth(ann_path)
    if not gt["images"] or not gt["annotations"]:
        raise CocoDataError(f"{ann_path} lists no {'images' if not gt['images'] else 'annotations'}: nothing to score")
    image_paths(gt, img_dir)


def _check_classify_data(data, annotations, images, split: str) -> None:
    from pst_yolo.eval.compare import check_split

    if annotations is not None or images is not None:
        raise ValueError(
            "annotations= and images= are for detection (COCO scoring); task=classify validates the "
            "ImageFolder's own split"
        )
    if data is not None and not (Path(data) / "train").is_dir() and not (Path(data) / split).is_dir():
        raise FileNotFoundError(
            f"data={data}: expected an ImageFolder root with train/ and {split}/ folders "
            "(one subfolder per class), e.g. one written by `pst-yolo synth task=classify`"
        )
    if data is not None:
        check_split(data, split)  # the split validated after training: it must exist and every image decode


def _check_task_data(data, annotations, images, split: str, task: str) -> None:
    """Segment, pose, obb: COCO files only for segment's mask AP; a given data.yaml's split exists and is
    usable (Ultralytics would drop bad images and labels, after training)."""
    from pst_yolo.eval.compare import check_split

    if task != "segment" and (annotations is not None or images is not None):
        raise ValueError(
            f"annotations= and images= are for COCO scoring of boxes (detection) or masks (segment); task={task} "
            "is scored with Ultralytics' validation on data="
        )
    check_scoring_pair(annotations, images)
    if data is None and annotations is not None:
        raise ValueError(
            f"task={task} validates with Ultralytics on data= (a data.yaml); annotations= only adds COCO mask AP"
        )
    if data is not None:
        check_split(_find_data_yaml(data), split)


STAT_NAMES_DETECT = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

# The main job (`pst-yolo bench` with no arguments): dataset size, image size and training recipe tuned
# so that the nano models train in minutes on a 2-core CPU (measured runs: docs/benchmarks.md). Its models:
# stock yolo11n, the paper's layout (PST at P3 and P4) and PST at P4 only, the one setup of the accuracy
# study that matched stock (docs/accuracy.md, issue 20).
# Train and val images come from the same generator, so augmentation is light (no mosaic, small
# scale jitter) and every batch is an optimizer step: what converges fastest per CPU second.
DETECT = BenchTask(
    name="detect",
    default_models=("yolo11n.yaml", "yolo11n-pst.yaml", "yolo11n-pst-p4.yaml"),
    main_synth=SynthSpec(train=1000, val=100, imgsz=160, seed=0),
    main_epochs=8,
    main_batch=16,
    fast_recipe={
        "optimizer": "AdamW",
        "lr0": 0.003,
        "warmup_epochs": 1.0,
        "mosaic": 0.0,
        "scale": 0.25,
        "close_mosaic": 0,  # (no mosaic to close)
        "val": False,  # no validation between epochs (the final epoch is still validated)
        "amp": False,
    },
    columns=("AP", "AP50", "APs", "APm", "APl"),
    primary="AP",
    csv_stats=STAT_NAMES_DETECT,
    prepare=_prepare_detect,
    score=_score_detect,
    eval_batch=1,  # ms/image is single-image latency on every dataset
    check=_check_detect_data,
)

# The embedded classification default: 10 classes x 80 train / 20 val images at 96 px (3 x 3 = 9 stride-32
# tokens, so k = 8 refines all but one), 20 epochs of batch 32. Measured on this set (yolo11n-cls, 200 steps
# at 64 px): Ultralytics' colour jitter (hsv_*) keeps the loss at chance level (2.2 vs 1.3 without it;
# colours are random in the data already), and AdamW at lr 0.003 or 0.01 does not leave chance level at
# all. The SGD-style bias warm-up (warmup_bias_lr 0.1), RandAugment and random erasing are off too;
# random-resized crops and left-right flips stay on.
CLASSIFY = BenchTask(
    name="classify",
    default_models=("yolo11n-cls.yaml", "yolo11n-cls-pst.yaml"),
    main_synth=ClassifySynthSpec(),
    main_epochs=20,
    main_batch=32,
    fast_recipe={
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
    },
    columns=("top1", "top5"),
    primary="top1",
    csv_stats=("top1", "top5"),
    prepare=_prepare_classify,
    score=_score_classify,
    stock_imgsz=224,
    check=_check_classify_data,
)


def _task(name: str, models: tuple[str, str]) -> BenchTask:
    """Segmentation, pose, oriented boxes: the detection generator's shapes with the task's labels, 400 train /
    50 val images at 128 px, 10 epochs of batch 16 with detection's fast recipe (a 2-core CPU trains both nano
    models in minutes)."""
    columns = tuple(c for c, _ in TASK_METRICS[name]) + (tuple(c for c, _ in COCO_SEGM) if name == "segment" else ())
    return BenchTask(
        name=name,
        default_models=models,
        main_synth=SynthSpec(train=400, val=50, imgsz=128, seed=0),
        main_epochs=10,
        main_batch=16,
        fast_recipe=DETECT.fast_recipe,
        columns=columns,
        primary=TASK_METRICS[name][0 if name == "obb" else 1][0],  # mask / pose / rotated-box mAP50-95
        csv_stats=columns,
        prepare=partial(_prepare_task, task=name),
        score=_score_task,
        check=partial(_check_task_data, task=name),
    )


SEGMENT = _task("segment", ("yolo11n-seg.yaml", "yolo11n-seg-pst.yaml"))
POSE = _task("pose", ("yolo11n-pose.yaml", "yolo11n-pose-pst.yaml"))
OBB = _task("obb", ("yolo11n-obb.yaml", "yolo11n-obb-pst.yaml"))

TASKS = {t.name: t for t in (DETECT, CLASSIFY, SEGMENT, POSE, OBB)}


# --------------------------------------------------------------------------------------------------
# Detection data
# --------------------------------------------------------------------------------------------------
def check_scoring_pair(annotations, images) -> None:
    """``annotations=`` and ``images=`` go together: one alone would be ignored or could not be read."""
    if annotations is not None and images is None:
        raise ValueError("annotations= needs images= (the folder its file_name entries are relative to)")
    if images is not None and annotations is None:
        raise ValueError(
            "images= goes with annotations= (the COCO JSON whose file names it holds); give both, or neither to "
            "score the dataset's own val split"
        )


def _find_data_yaml(data: str | Path) -> Path:
    p = Path(data)
    if p.is_dir():
        p = p / "data.yaml"
    if not p.is_file():
        raise FileNotFoundError(
            f"data={data}: no such data.yaml (give a folder written by `pst-yolo synth` or "
            "`pst-yolo coco2yolo`, or its data.yaml)"
        )
    return p


def _coco_source(data_yaml: Optional[Path], annotations, images) -> tuple[Path, Path, Any, Optional[str]]:
    """(annotations JSON, images folder, class_map, dataset source) for scoring."""
    check_scoring_pair(annotations, images)
    if annotations is not None:
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
            "with `pst-yolo synth` or `pst-yolo coco2yolo`, or pass annotations=... images=..."
        )
    doc = read_map(map_path)
    val = doc["splits"].get("val") or []
    if len(val) != 1:
        raise ValueError(
            f"{map_path} lists {len(val)} COCO JSON files for val; scoring needs exactly one "
            "(pass annotations= and images=)"
        )
    return val[0]["annotations"], val[0]["images"], map_path, doc.get("source")


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------
def check_bench_inputs(
    models: Sequence[Any], topk: Sequence[Any], recipe: Optional[str]
) -> tuple[list[str], list[int]]:
    """Validate a benchmark's models / topk / recipe; returns (models as strings, topk as ints)."""
    from pst_yolo.eval.inputs import check_model_file, runtime_format

    models = [str(m) for m in models]
    if not models:
        raise ValueError("models= is empty: give at least one .yaml config or .pt weights file")
    for i, m in enumerate(models):
        if Path(m).suffix in (".yaml", ".yml"):
            continue
        models[i] = str(check_model_file(m))  # an export folder must hold one; an OpenVINO .xml: its folder
        if Path(m).suffix != ".pt" and runtime_format(models[i]) in (None, "pt"):
            raise ValueError(
                f"model {m!r}: give a .yaml config (trained here), .pt weights or an export (evaluated as is)"
            )
    topk = [int(k) for k in topk]
    if any(k < 0 for k in topk):
        raise ValueError(f"topk values must be >= 0, got {topk}")
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    labels = [model_label(m) for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(
            f"models {models} share a name ({', '.join(labels)}); rename them so the table can tell them apart"
        )
    return models, topk


def check_generated_set(synth: Any, split: str, to_train: Sequence[str]) -> None:
    """A generated set has a train and a val split: training needs train images, scoring val images."""
    if split != "val":
        raise ValueError(f"split={split}: the generated set has train and val only; split= applies with data=")
    if to_train and synth.train < 1:
        raise ValueError(f"train={synth.train}: {', '.join(to_train)} must be trained, which needs train images")
    if synth.val < 1:
        raise ValueError(f"val={synth.val}: the models are scored on the val images; give at least 1")


def _check_model_tasks(configs: Sequence[str], spec: BenchTask) -> None:
    """Each config builds a model of the benchmark's task (else Ultralytics would build a mismatched one)."""
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    from pst_yolo.integration.registry import register

    register()  # bare names of shipped PST configs
    for m in configs:
        found = guess_model_task(yaml_model_load(m))
        if found != spec.name:
            raise ValueError(
                f"{m} is a {found} model, not {spec.name}; give {spec.name} models (e.g. {', '.join(spec.default_models)})"
            )


def bench(
    data: str | Path | None = None,
    models: Optional[Sequence[str | Path]] = None,
    topk: Sequence[int] = DEFAULT_TOPK,
    epochs: Optional[int] = None,
    imgsz: Optional[int] = None,
    batch: Optional[int] = None,
    workers: int = 0,
    seed: int = 0,
    device: str = "cpu",
    project: str | Path = "runs/pst-bench",
    name: Optional[str] = None,
    exist_ok: bool = False,
    annotations: str | Path | None = None,
    images: str | Path | None = None,
    synth: Any = None,
    recipe: Optional[str] = None,
    eval_batch: Optional[int] = None,
    split: str = "val",
    train_args: Optional[Mapping[str, Any]] = None,
    task: str = "detect",
    fine_train: Any = None,
    jobs: Optional[int] = None,
    precise_bn: int = 0,
    verbose: bool = True,
    precision: Optional[str] = None,
) -> BenchResult:
    """Train/load each model, evaluate it at each k, write results.md/.csv/.png into the run folder.

    Args:
        data: detection: a dataset folder or ``data.yaml`` written by ``pst-yolo synth`` or ``pst-yolo
            coco2yolo`` (its ``coco_map.json`` names the val COCO JSON); classification: an ImageFolder root
            (``train/<class>/...``, ``val/<class>/...``); segment / pose / obb: a ``data.yaml`` of that task
            (e.g. from ``pst-yolo synth task=...``). None: generate the task's synthetic set (``synth``,
            default ``TASKS[task].main_synth``) into the run folder.
        models: ``.yaml`` configs (trained here, same recipe for all) and/or ``.pt`` weights and exports (``.onnx``,
            ``*_openvino_model``, ... as ``yolo export`` writes them; used as is, an export at the k it was exported
            at); default: the task's stock nano model and its PST twin.
        topk: the k values at which models with PST layers are evaluated ([] = the k each checkpoint carries).
        epochs, imgsz, batch: default to the embedded job's on synthetic data (imgsz: the set's own), else
            Ultralytics' (100 epochs, 640 / 224 px, batch 16) with the stock recipe. A ``.pt`` model is
            evaluated at the size it was trained at unless ``imgsz`` is given (as ``yolo val`` does; a given
            size that differs is used, with an ``ImageSizeWarning``); the table's imgsz column says which.
        annotations, images: detection: score against this COCO JSON and images folder; segment: score masks
            against it with pycocotools (default: the val COCO JSON of the dataset's ``coco_map.json``, if it
            has masks).
        recipe: ``fast`` (the task's ``fast_recipe``; default for synthetic data) or ``stock`` (Ultralytics').
        eval_batch: images per evaluation batch (default 1 on synthetic data: latency per image; else batch).
        split: the split Ultralytics validates (classify, segment, pose, obb: ``val`` or ``test``).
        train_args: more Ultralytics train() overrides (e.g. ``{"lr0": 0.01}``), applied last.
        task: ``detect``, ``classify``, ``segment``, ``pose`` or ``obb``.
        fine_train: fine-aware training of the PST models trained here: ``"N"`` (fine branch on in the last N
            epochs), ``"P"`` in (0, 1] (that share of batches) or ``"0"`` (coarse only, the paper's recipe);
            None: as ``PST_FINE_TRAIN`` says (unset: coarse only). Stock models train as they are.
        jobs: models trained at once, each in its own worker process (bit-identical to training them one after
            the other: Ultralytics trains at its own thread count either way, ``runtime.training_threads``);
            None: as many as the cores hold at that count; 1: one after the other in this process. Evaluation stays sequential,
            so its ms/image is measured on an otherwise idle process.
        precise_bn: if > 0, also evaluate each model trained here with its BatchNorm statistics re-estimated on
            that many un-augmented train images (``nn.precise_bn``; rows ``<model>+preciseBN``, weights
            ``best-precise-bn.pt`` beside ``best.pt``).
        precision: what every model runs in, where its runtime has a switch: OpenVINO ``fp32`` / ``bf16`` / ``fp16``
            (``integration.precision``); runtimes without one (PyTorch for the models trained here) take only
            ``fp32``. None: each runtime's default. The table then says what ran (its "runs in" column).
    """
    from ultralytics import YOLO

    from pst_yolo.data.writer import run_folder
    from pst_yolo.eval.inputs import (
        check_non_negative,
        check_positive,
        check_seed,
        export_k,
        export_path_of,
        load_model,
        runtime_format,
    )
    from pst_yolo.integration.precision import check_precision, parse_precision, runtime_name, runtime_precision
    from pst_yolo.integration.runtime import choose_imgsz, export_quantization
    from pst_yolo.nn.fine_train import FineTrainSchedule
    from pst_yolo.nn.topk import get_topk, pst_layers, set_topk

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    spec = TASKS[task]
    t_start = time.perf_counter()
    # Every input is checked before anything is trained: settings, data, and that each model loads.
    models, topk = check_bench_inputs(models or spec.default_models, topk, recipe)
    check_positive(epochs=epochs, imgsz=imgsz, batch=batch, eval_batch=eval_batch)
    check_non_negative(workers=workers, precise_bn=precise_bn)
    check_seed(seed=seed)
    resolve_jobs(jobs, 0)  # a bad jobs= is refused before any work
    schedule = None if fine_train is None else FineTrainSchedule.parse(fine_train)
    to_train = [m for m in models if Path(m).suffix in (".yaml", ".yml")]
    _check_model_tasks(to_train, spec)
    if data is None and annotations is None:  # the set is generated: it must hold what the run needs
        check_generated_set(synth or spec.main_synth, split, to_train)
    if spec.check is not None:
        spec.check(data, annotations, images, split)
    for m in models:
        load_model(m, task=task, quiet=True)
    if precision is not None:
        parse_precision(precision)
        for m in models:  # a config is trained here and runs in PyTorch
            check_precision(runtime_format(m) or "pt", precision)

    # A new numbered folder, or with exist_ok the named one if it is empty or an earlier pst-yolo run folder.
    run_dir = run_folder(
        Path(project) / (name or ("bench" if task == "detect" else task)), "bench", numbered=not exist_ok, key="name"
    )
    dataset = spec.prepare(data, run_dir, synth, annotations, images, split, verbose)
    if to_train and dataset.train is None:
        raise ValueError(f"{', '.join(to_train)} must be trained, which needs data= (a data.yaml with a train split)")
    recipe = recipe or ("fast" if dataset.synthetic else "stock")
    given_imgsz = imgsz  # a .pt model is evaluated at its own training size unless this is set
    imgsz = imgsz or dataset.imgsz or spec.stock_imgsz
    epochs = epochs if epochs is not None else (spec.main_epochs if recipe == "fast" else 100)
    batch = batch if batch is not None else (spec.main_batch if recipe == "fast" else 16)
    if eval_batch is None:
        eval_batch = spec.eval_batch or (1 if dataset.synthetic else batch)
    train_kw: dict[str, Any] = dict(spec.fast_recipe) if recipe == "fast" else {}
    if recipe == "fast":
        train_kw["nbs"] = batch  # one optimizer step per batch (the default 64 accumulates)
    train_kw.update(
        data=str(dataset.train),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        workers=workers,
        seed=seed,
        deterministic=True,
        device=device,
        project=str(run_dir),
        exist_ok=True,
        plots=False,
        verbose=verbose,
    )
    train_kw.update(train_args or {})
    settings = {
        "task": task,
        "data": str(dataset.train) if dataset.train else None,
        "dataset": dataset.description,
        "models": models,
        "topk": topk,
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "recipe": recipe,
        "train_args": {k: v for k, v in train_kw.items() if k not in ("data", "project")},
        "eval_batch": eval_batch,
        "device": device,
        "seed": seed,
        "split": split,
        "fine_train": schedule.describe() if schedule else None,
        "precise_bn": precise_bn,
        "precision": precision,
    }

    n_steps, step = len(to_train) + len(models), 0
    weights: dict[str, tuple[str, Optional[float]]] = {}
    for m in models:
        if m not in to_train and not Path(m).exists():
            raise FileNotFoundError(f"weights not found: {m}")
    jobs = resolve_jobs(jobs, len(to_train))
    settings["jobs"] = jobs
    if jobs > 1:
        from pst_yolo.eval.parallel import Job, describe_epochs, run_jobs
        from pst_yolo.integration.runtime import cache_dataset_labels, training_threads

        # Trainings started together on one dataset would each write its label cache (one of them then fails to
        # find the file the other replaced): scan the splits once here, so every job reads the same cache.
        cache_dataset_labels(str(dataset.train), task, imgsz)
        if verbose:
            print(
                f"\n[1-{len(to_train)}/{n_steps}] training {', '.join(to_train)} in {jobs} parallel jobs: {epochs} "
                f"epochs, imgsz {imgsz}, batch {batch}, recipe {recipe}; logs in {run_dir}/<model>.log"
            )
        trained = run_jobs(
            threads=training_threads(),
            jobs_to_run=[
                Job(
                    model_label(m),
                    train_model,
                    dict(model=m, task=task, train_kw=train_kw, fine_train=fine_train),
                    log=run_dir / f"{model_label(m)}.log",
                )
                for m in to_train
            ],
            jobs=jobs,
            verbose=verbose,
            describe=describe_epochs,
        )
        step += len(to_train)
    for m in models:
        if m in to_train and jobs > 1:
            weights[m] = trained[model_label(m)]
        elif m in to_train:
            step += 1
            if verbose:
                print(
                    f"\n[{step}/{n_steps}] training {m}: {epochs} epochs, imgsz {imgsz}, batch {batch}, recipe {recipe}"
                )
            weights[m] = train_model(m, task, train_kw, fine_train)
        else:
            weights[m] = (m, None)

    # (label, weights, training seconds) of every model to evaluate: each model, and after each trained one its
    # copy with re-estimated BatchNorm statistics (precise_bn=N).
    evaluations = []
    for m in models:
        evaluations.append((model_label(m), *weights[m], m in to_train))
        if precise_bn and m in to_train:
            path = precise_bn_checkpoint(weights[m][0], str(dataset.train), task, imgsz, precise_bn, batch)
            evaluations.append((model_label(m) + PRECISE_BN_SUFFIX, str(path), weights[m][1], True))
    n_steps += len(evaluations) - len(models)
    rows: list[BenchRow] = []
    for label, path, train_s, trained_here in evaluations:
        step += 1
        yolo = YOLO(path, task=task)
        if yolo.task != task:
            raise ValueError(f"{path} is a {yolo.task} model, not {task}; give {task} models")
        size, why = choose_imgsz(yolo, imgsz if trained_here else given_imgsz, label)
        if why == "default":  # a checkpoint that records no size: the set's own, as for the trained models
            size = imgsz
        fmt = runtime_format(yolo)
        ks: list[Optional[int]] = [None]
        if pst_layers(yolo):  # the given k values, or (topk=[]) the k the checkpoint carries
            current = get_topk(yolo)
            ks = list(topk) if topk else [current if isinstance(current, int) else None]
        if verbose:
            fixed = "" if fmt == "pt" or export_k(yolo) is None else f" at k = {export_k(yolo)} (fixed in the export)"
            print(
                f"\n[{step}/{n_steps}] evaluating {label} ({path}) at imgsz {size} ({why})"
                f"{' at k = ' + ', '.join(map(str, ks)) if ks != [None] else fixed}"
            )
        sizes = {}
        for k in ks:  # before evaluation fuses Conv+BN in place
            if k is not None:
                set_topk(yolo, k)
            sizes[k] = model_size(yolo, size) if fmt == "pt" else None
        quantized = export_quantization(export_path_of(yolo)) if fmt != "pt" else None
        for k in ks:
            with runtime_precision(fmt, precision, quantized) as ran:
                stats, ms, detections = spec.score(
                    yolo, k, label, run_dir, size, eval_batch, device, workers, split, verbose, **dataset.score_args
                )
            row = BenchRow(
                model=label,
                k=k if fmt == "pt" else export_k(yolo),
                params=None if sizes[k] is None else sizes[k].params,
                gflops=None if sizes[k] is None else sizes[k].gflops,
                stats=stats,
                ms_per_image=ms,
                weights=path,
                detections=detections,
                train_seconds=train_s,
                imgsz=size,
                runtime=runtime_name(fmt),
                precision=ran.label(),
            )
            rows.append(row)
            if verbose:
                shown = ", ".join(f"{c} {stats[c]:.3f}" for c in spec.columns[:2])
                print(f"  {label}{'' if k is None else f' k={k}'}: {shown}, {ms:.1f} ms/image")

    seconds = time.perf_counter() - t_start
    used = sorted({r.imgsz for r in rows if r.imgsz is not None})
    if not to_train:  # nothing was trained here: the report describes only the evaluation
        settings.update(trained=False, imgsz=used[0] if len(used) == 1 else used)
    table = markdown_table(rows, spec)
    md, csv_path, png = run_dir / "results.md", run_dir / "results.csv", run_dir / "results.png"
    _write_csv(rows, csv_path, spec)
    shown_sizes = "/".join(map(str, used)) or str(imgsz)
    _plot(rows, png, plot_title(rows, data_name(data, dataset, annotations), shown_sizes), spec)
    write_text(md, _markdown_report(table, settings, seconds, rows))
    if verbose:
        print(f"\nResults ({run_dir}): results.md, results.csv, results.png; total {seconds / 60:.1f} min\n")
        print(table)
    return BenchResult(
        rows=rows,
        run_dir=run_dir,
        markdown=md,
        csv=csv_path,
        plot=png,
        table=table,
        data=dataset.train,
        seconds=seconds,
        settings=settings,
    )


def resolve_jobs(jobs: Optional[int], n_train: int) -> int:
    """Parallel training jobs: ``jobs`` if given (>= 1), else as many as the cores hold at Ultralytics' training
    thread count (``runtime.training_threads``: 2 jobs on a 2-core CPU); never more than there are models."""
    from pst_yolo.eval.parallel import default_jobs
    from pst_yolo.integration.runtime import training_threads

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1 (1 trains the models one after the other, in this process)")
    if n_train <= 1:
        return 1
    return min(jobs, n_train) if jobs is not None else default_jobs(n_train, threads=training_threads())


def train_model(model: str, task: str, train_kw: Mapping[str, Any], fine_train: Any = None) -> tuple[str, float]:
    """Train one config with Ultralytics (``name`` = its label) and return (best weights, seconds). The same call
    runs in this process (``jobs=1``) or in a worker process (``jobs>1``), so both give the same bits."""
    from ultralytics import YOLO

    from pst_yolo.eval.parallel import report
    from pst_yolo.integration.callbacks import fine_training
    from pst_yolo.integration.runtime import trainer_progress
    from pst_yolo.nn.fine_train import FineTrainSchedule
    from pst_yolo.nn.topk import pst_layers

    t0 = time.perf_counter()
    yolo = YOLO(model, task=task)
    schedule = None if fine_train is None else FineTrainSchedule.parse(fine_train)
    if schedule is not None and pst_layers(yolo):  # pinned: wins over PST_FINE_TRAIN for this model
        fine_training(yolo, schedule)

    def on_epoch_end(trainer) -> None:  # progress for the parallel display (a no-op in this process)
        _, epoch, epochs = trainer_progress(trainer)
        report(epoch=f"{epoch + 1}/{epochs}")

    yolo.add_callback("on_train_epoch_end", on_epoch_end)
    yolo.train(name=model_label(model), **train_kw)
    best = Path(yolo.trainer.best) if Path(yolo.trainer.best).is_file() else Path(yolo.trainer.last)
    return str(best), time.perf_counter() - t0


PRECISE_BN_SUFFIX = "+preciseBN"  # table label of a model whose BatchNorm statistics were re-estimated


def precise_bn_checkpoint(weights: str, data: str, task: str, imgsz: int, images: int, batch: int) -> Path:
    """``weights`` with every BatchNorm layer's statistics re-estimated (``nn.precise_bn``) on the first ``images``
    un-augmented train images, saved beside it as ``<stem>-precise-bn.pt``; returns that path."""
    from ultralytics import YOLO

    from pst_yolo.data.writer import replace_file
    from pst_yolo.integration.runtime import dataset_batches
    from pst_yolo.nn.precise_bn import precise_bn

    yolo = YOLO(weights, task=task)
    precise_bn(yolo.model, dataset_batches(data, task, imgsz, images, batch))
    out = Path(weights).with_name(f"{Path(weights).stem}-precise-bn.pt")
    return replace_file(out, lambda tmp: yolo.save(tmp))  # Ultralytics' checkpoint format, written as a whole


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------
def columns(spec: BenchTask, runs_in: bool = False) -> tuple[str, ...]:
    """The table's columns; imgsz last: the size each row was evaluated at. ``runs_in``: a column saying what each
    row ran in ("OpenVINO bf16"), for tables with exports or a precision= (:func:`shows_runtime`)."""
    return ("model", "k", "params", "GFLOPs", *spec.columns, "ms/image", *(("runs in",) if runs_in else ()), "imgsz")


def shows_runtime(rows: Sequence[BenchRow]) -> bool:
    """Whether a table needs its "runs in" column: some row ran outside PyTorch or not in fp32."""
    return any((r.runtime, r.precision) != ("PyTorch", "fp32") for r in rows)


def markdown_table(rows: Sequence[BenchRow], spec: BenchTask = DETECT) -> str:
    def stat(r: BenchRow, c: str) -> str:
        v = r.stats.get(c, -1.0)
        return "-" if v is None or v < 0 or math.isnan(v) else f"{v:.3f}"  # -1: COCO has nothing to score; nan

    runs_in = shows_runtime(rows)
    cols = columns(spec, runs_in)
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    for r in rows:
        cells = [
            r.model,
            "-" if r.k is None else str(r.k),
            "-" if r.params is None else f"{r.params / 1e6:.2f} M",
            "-" if r.gflops is None else f"{r.gflops:.2f}",
            *(stat(r, c) for c in spec.columns),
            "-" if r.ms_per_image is None else f"{r.ms_per_image:.1f}",
            *((f"{r.runtime} {r.precision}",) if runs_in else ()),
            "-" if r.imgsz is None else str(r.imgsz),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_csv(rows: Sequence[BenchRow], path: Path, spec: BenchTask) -> None:
    header = ["model", "k", "params", "GFLOPs", *spec.csv_stats, "ms_per_image", "train_seconds", "weights"]
    header += ["detections", "imgsz", "runtime", "precision"]
    body = [
        [
            r.model,
            "" if r.k is None else r.k,
            "" if r.params is None else r.params,
            "" if r.gflops is None else f"{r.gflops:.4f}",
            *(f"{r.stats.get(s, math.nan):.5f}" for s in spec.csv_stats),
            "" if r.ms_per_image is None else f"{r.ms_per_image:.3f}",
            "" if r.train_seconds is None else f"{r.train_seconds:.1f}",
            r.weights,
            r.detections or "",
            "" if r.imgsz is None else r.imgsz,
            r.runtime,
            r.precision,
        ]
        for r in rows
    ]
    write_csv(path, header, body)


def data_name(data: Any, dataset: Dataset, annotations: Any = None) -> str:
    """A short name for the data a benchmark ran on (its folder's name), for titles."""
    if data is None and annotations is None:
        return "the generated set"
    if dataset.train is not None:
        train = Path(dataset.train)
        return train.parent.name if train.suffix in (".yaml", ".yml") else train.name
    return Path(str(annotations)).stem


def plot_title(rows: Sequence[BenchRow], data: str, imgsz: Optional[int]) -> str:
    """``yolo11n vs yolo11n-pst on synth, 160 px``: the models and the data, never a path."""
    models = " vs ".join(dict.fromkeys(r.model for r in rows))
    return f"{models} on {data}" + (f", {imgsz} px" if imgsz else "")


def _figure(rows: Sequence[BenchRow], title: str, spec: BenchTask):
    """The primary metric vs ms/image, one point per row; the k settings of one PST model joined by a line.

    The metric axis runs from 0 to 1 (AP and accuracy are fractions), so a difference of a few thousandths
    looks as small as it is; the margins keep every k label inside the axes.
    """
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    by_model: dict[str, list[BenchRow]] = {}
    for r in rows:
        by_model.setdefault(r.model, []).append(r)
    for label, group in by_model.items():
        pts = [(r.ms_per_image or 0.0, min(max(r.stats.get(spec.primary, 0.0), 0.0), 1.0), r) for r in group]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if len(group) > 1 else "s", label=label)
        for i, (x, y, r) in enumerate(p for p in pts if p[2].k is not None):
            # alternate above / below the line so neighbouring k labels do not overlap; never off the axes
            slots = (-12, -24) if y > 0.9 else (5, 17) if y < 0.1 else (5, -12)
            dy = slots[i % 2]
            ax.annotate(f"k={r.k}", (x, y), textcoords="offset points", xytext=(5, dy), fontsize=8)
    ms = [r.ms_per_image or 0.0 for r in rows]
    ax.set_xlim(0, max(max(ms, default=0.0), 1e-3) * 1.3)  # room on the right for the k labels
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("ms / image (batch 1)" if spec.name == "detect" else "ms / image (inference)")
    ax.set_ylabel("COCO AP50-95" if spec.primary == "AP" else spec.primary)
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _plot(rows: Sequence[BenchRow], path: Path, title: str, spec: BenchTask) -> Path:
    save_figure(path, _figure(rows, title, spec))
    return path


def _markdown_report(table: str, settings: dict, seconds: float, rows: Sequence[BenchRow]) -> str:
    trained = list(
        dict.fromkeys(
            f"{r.model} {r.train_seconds / 60:.1f} min"
            for r in rows
            if r.train_seconds is not None and not r.model.endswith(PRECISE_BN_SUFFIX)
        )
    )
    timing = (
        "ms/image: wall time of preprocess + inference + NMS per image during the COCO evaluation"
        if settings["task"] == "detect"
        else "ms/image: Ultralytics' inference time per image during validation"
    )
    if settings.get("trained", True):
        done = [
            f"- imgsz {settings['imgsz']}, epochs {settings['epochs']}, batch {settings['batch']}, recipe "
            f"{settings['recipe']}, seed {settings['seed']}, device {settings['device']}",
            f"- training settings: {json.dumps(settings['train_args'])}",
            *([f"- PST fine-aware training: {settings['fine_train']}"] if settings.get("fine_train") else []),
            *(
                [
                    f"- {PRECISE_BN_SUFFIX} rows: BatchNorm statistics re-estimated after training on the first "
                    f"{settings['precise_bn']} un-augmented train images (pst_yolo.nn.precise_bn)"
                ]
                if settings.get("precise_bn")
                else []
            ),
        ]
    else:  # evaluation only: no epochs, recipe or training settings, since nothing was trained
        done = [
            f"- evaluation only (no model was trained): imgsz {settings['imgsz']} (see the imgsz column), "
            f"device {settings['device']}"
        ]
    lines = [
        f"# pst-yolo bench{'' if settings['task'] == 'detect' else ' task=' + settings['task']}",
        "",
        f"- data: {settings['dataset']}",
        f"- models: {', '.join(settings['models'])}; PST top-k: {', '.join(map(str, settings['topk'])) or '-'}",
        *done,
        f"- machine: {machine_description()}",
        f"- wall time: {seconds / 60:.1f} min" + (f" (training: {', '.join(trained)})" if trained else ""),
        "",
        table,
        "",
        f'k = fine-branch top-k of the PST layers (0 = coarse attention only; "-" = no PST layers). '
        f"{GFLOPS_NOTE}, at the row's k and imgsz. {timing}, batch {settings['eval_batch']} "
        f"on {settings['device']}.",
        *(
            [
                "",
                'Exports run at the k they were exported at; their params and GFLOPs are "-" (no PyTorch network to '
                'count). "runs in": the runtime and the precision it computed in (OpenVINO: as its compiled model '
                f"reports; precision= {settings.get('precision') or 'not given: each runtime at its default'}).",
            ]
            if shows_runtime(rows)
            else []
        ),
        "",
    ]
    return "\n".join(lines)
