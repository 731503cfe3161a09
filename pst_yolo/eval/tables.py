"""What every pst-yolo table shares: model labels, the machine line, parameter and GFLOPs counts.

One rule each: ``model_label`` names a model in every table; ``machine_description`` describes the machine
in every report; ``model_size`` counts parameters and GFLOPs (``pst_yolo.eval.flops``: attention
included, at the k set on the model) wherever a table shows them; ``config_rows`` lists every shipped
config next to its stock twin.
"""

from __future__ import annotations

import os
import platform
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from pst_yolo.eval.flops import GFLOPS_NOTE, count_flops


# --------------------------------------------------------------------------------------------------
# Labels and machine
# --------------------------------------------------------------------------------------------------
def model_label(model: str | Path) -> str:
    """The name a model gets in a table: the file stem, or the run folder for ``<run>/weights/best.pt``; an
    export adds its format (``<run>/weights/best_openvino_model`` -> ``<run>-openvino``, ``x.onnx`` -> ``x-onnx``)."""
    from pst_yolo.integration.runtime import export_folder_suffixes, export_format

    p = Path(model)
    fmt = export_format(p) if p.suffix not in (".pt", ".yaml", ".yml") else None
    if fmt not in (None, "pt"):
        stem = next((p.name[: -len(s)] for s in export_folder_suffixes() if p.name.endswith(s)), p.stem)
        return f"{model_label(p.with_name(stem + '.pt'))}-{fmt}"
    if p.suffix == ".pt" and p.parent.name == "weights" and p.stem in ("best", "last") and p.parent.parent.name:
        return p.parent.parent.name + ("" if p.stem == "best" else "-last")
    return p.stem


def machine_description() -> str:
    """CPU, thread count, GPU, torch and Ultralytics versions: the machine line of every report."""
    import torch
    import ultralytics

    from pst_yolo.integration.runtime import cpu_name

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{cpu_name()}, {os.cpu_count()} CPU threads ({torch.get_num_threads()} used by torch){gpu}, "
        f"{platform.system()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"ultralytics {ultralytics.__version__}"
    )


# --------------------------------------------------------------------------------------------------
# Parameters and GFLOPs
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSize:
    params: int
    gflops: float  # pst_yolo.eval.flops: one batch-1 forward at imgsz, attention included, k as set


def model_size(model: Any, imgsz: int) -> ModelSize:
    """Parameters and GFLOPs of an ``nn.Module`` or a ``YOLO`` object, at the k its PST layers have now."""
    from pst_yolo.nn.topk import as_module

    module = as_module(model)
    with warnings.catch_warnings():  # a tiny probe size makes PST clamp k, with a warning: not news here
        warnings.simplefilter("ignore")
        gflops = count_flops(module, imgsz).gflops
    return ModelSize(params=sum(p.numel() for p in module.parameters()), gflops=gflops)


def _twins(path: Path) -> list[tuple[str, str]]:
    """(PST config name, stock/baseline config name) for each scale of a shipped ``*-pst.yaml``."""
    scales = yaml.safe_load(path.read_text()).get("scales") or {"": None}
    family = re.match(r"(yolo\d+)(.*?)-pst(-p\d)?$", path.stem)  # yolo11-cls-pst -> ("yolo11", "-cls", None)
    if family is None:  # e.g. resnet50-cls-pst.yaml next to its baseline resnet50-cls.yaml
        baseline = path.stem.removesuffix("-pst")
        if not (path.parent / f"{baseline}.yaml").is_file():  # detectors: resnet50-pst.yaml -> resnet50-det.yaml
            baseline += "-det"
        return [(path.name, baseline + ".yaml")]
    stem, suffix, level = family.groups()  # level: "-p4" for PST at one level only (yolo11-pst-p4)
    return [(f"{stem}{scale}{suffix}-pst{level or ''}.yaml", f"{stem}{scale}{suffix}.yaml") for scale in scales]


def _ships(name: str) -> bool:
    """Whether this config resolves (Ultralytics' own or pst-yolo's): YOLO26 arrived with Ultralytics 8.4."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
    except FileNotFoundError:
        return False
    return True


def config_twins() -> list[tuple[str, str]]:
    """(PST config, its stock twin or baseline) for every shipped PST config and scale, by the names users type;
    configs whose stock twin the installed Ultralytics does not have (YOLO26 before 8.4) are left out."""
    from pst_yolo.integration.model_parsing import shipped_configs
    from pst_yolo.integration.registry import register

    register()  # (resolves the baselines shipped in cfg/)
    twins = [pair for path in shipped_configs() if re.search(r"-pst(-p\d)?$", path.stem) for pair in _twins(path)]
    return [(pst, stock) for pst, stock in twins if _ships(stock)]


# The Ultralytics model class of each task (``ultralytics.nn.tasks``).
MODEL_CLASSES = {
    "detect": "DetectionModel",
    "segment": "SegmentationModel",
    "pose": "PoseModel",
    "obb": "OBBModel",
    "classify": "ClassificationModel",
}


def build_model(name: str, nc: Optional[int] = None):
    """The Ultralytics model of the config's task (``DetectionModel``, ``SegmentationModel``, ``PoseModel``,
    ``OBBModel``, ``ClassificationModel``) for a config name, quietly."""
    from ultralytics.nn import tasks

    from pst_yolo.integration.registry import register
    from pst_yolo.integration.runtime import quiet_ultralytics

    register()
    task = tasks.guess_model_task(tasks.yaml_model_load(name))
    builder = getattr(tasks, MODEL_CLASSES.get(task, "DetectionModel"))
    with quiet_ultralytics(), warnings.catch_warnings():  # (Ultralytics' own tiny FLOP probe clamps k)
        warnings.simplefilter("ignore")
        return builder(name, nc=nc, verbose=False) if nc else builder(name, verbose=False)


MAX_CLASSES = 100_000  # more than any dataset has (ImageNet-21k: 21,841); a classifier head that wide is 0.5 GB


def config_rows(
    imgsz: Optional[int] = None,
    nc: Optional[int] = None,
    twins: Optional[Sequence[tuple[str, str]]] = None,
    topk: Sequence[int] = (0, 8),
) -> list[dict]:
    """One row per (PST config, scale): params and GFLOPs of the PST model at each k in ``topk`` and of
    its stock twin. ``imgsz`` defaults to 640 for detection, segmentation, pose and oriented-box models and
    224 for classifiers; ``nc`` to the YAML's."""
    from pst_yolo.eval.inputs import check_positive
    from pst_yolo.nn.topk import set_topk

    check_positive(imgsz=imgsz, nc=nc)
    if nc is not None and nc > MAX_CLASSES:
        raise ValueError(f"nc={nc}: at most {MAX_CLASSES} (more classes than any dataset has; the head would not fit)")
    rows = []
    for pst_name, stock_name in twins or config_twins():
        pst, stock = build_model(pst_name, nc), build_model(stock_name, nc)
        task = next(t for t, cls in MODEL_CLASSES.items() if type(pst).__name__ == cls)
        size = imgsz or (224 if task == "classify" else 640)
        row: dict[str, Any] = {"config": pst_name, "stock": stock_name, "imgsz": size, "task": task}
        for k in topk:
            set_topk(pst, k)
            s = model_size(pst, size)
            row["pst_params"], row[f"pst_gflops_k{k}"] = s.params, s.gflops
        s = model_size(stock, size)
        row["stock_params"], row["stock_gflops"] = s.params, s.gflops
        rows.append(row)
    return rows


def config_table(rows: Sequence[dict], topk: Sequence[int] = (0, 8)) -> str:
    """Markdown: the rows of ``config_rows``."""
    ks = " | ".join(f"GFLOPs k={k}" for k in topk)
    lines = [
        f"| config | imgsz | params | {ks} | stock config | stock params | stock GFLOPs | params vs stock |",
        "|---|---:|---:|" + "---:|" * len(topk) + "---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["pst_params"] / r["stock_params"] - 1
        gf = " | ".join(f"{r[f'pst_gflops_k{k}']:.2f}" for k in topk)
        lines.append(
            f"| {r['config']} | {r['imgsz']} | {r['pst_params'] / 1e6:.2f} M | {gf} | {r['stock']} | "
            f"{r['stock_params'] / 1e6:.2f} M | {r['stock_gflops']:.2f} | {ratio:+.1%} |"
        )
    return "\n".join(lines) + f"\n\n{GFLOPS_NOTE}."
