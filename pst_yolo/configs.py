"""Parameter and FLOP table of the shipped PST configs next to their stock Ultralytics counterparts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def _pairs(path: Path) -> list[tuple[str, str]]:
    """(PST config name, stock/baseline config name) for each scale of a shipped ``*-pst.yaml``."""
    scales = yaml.safe_load(path.read_text()).get("scales") or {"": None}
    family = re.match(r"(yolo\d+)(.*)-pst$", path.stem)  # yolo11-cls-pst -> ("yolo11", "-cls")
    if family is None:  # e.g. resnet50-cls-pst.yaml next to its baseline resnet50-cls.yaml
        return [(path.name, path.stem.removesuffix("-pst") + ".yaml")]
    stem, suffix = family.groups()
    return [(f"{stem}{scale}{suffix}-pst.yaml", f"{stem}{scale}{suffix}.yaml") for scale in scales]


def config_rows(imgsz: int | None = None) -> list[dict]:
    """One row per (shipped PST config, scale): params and GFLOPs of the PST model and its stock twin.

    GFLOPs come from Ultralytics' ``get_flops`` (thop), which counts convolutions and linear layers
    but not the attention matrix products, so the PST figures are a lower bound. ``imgsz`` defaults
    to 640 for detectors and 224 for classifiers.
    """
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel, guess_model_task, yaml_model_load
    from ultralytics.utils.torch_utils import get_flops

    from pst_yolo.integration import register, shipped_configs

    register()
    rows = []
    for path in shipped_configs():
        if not path.stem.endswith("-pst"):
            continue  # a plain baseline, listed as the stock twin of its PST config
        for pst_name, stock_name in _pairs(path):
            task = guess_model_task(yaml_model_load(pst_name))
            builder = ClassificationModel if task == "classify" else DetectionModel
            size = imgsz or (224 if task == "classify" else 640)
            row = {"config": pst_name, "stock": stock_name, "task": task, "imgsz": size}
            for key, name in (("pst", pst_name), ("stock", stock_name)):
                model = builder(name, verbose=False)
                row[f"{key}_params"] = sum(p.numel() for p in model.parameters())
                row[f"{key}_gflops"] = get_flops(model, size)
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| config | imgsz | params | GFLOPs | stock config | stock params | stock GFLOPs | params vs stock |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["pst_params"] / r["stock_params"] - 1
        lines.append(
            f"| {r['config']} | {r['imgsz']} | {r['pst_params'] / 1e6:.2f} M | {r['pst_gflops']:.1f} | {r['stock']} | "
            f"{r['stock_params'] / 1e6:.2f} M | {r['stock_gflops']:.1f} | {ratio:+.1%} |"
        )
    return "\n".join(lines)
