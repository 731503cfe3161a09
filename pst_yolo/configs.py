"""Parameter and FLOP table of the shipped PST configs next to their stock Ultralytics counterparts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def config_rows(imgsz: int = 640) -> list[dict]:
    """One row per (shipped config, scale): params and GFLOPs of the PST model and the stock model.

    GFLOPs come from Ultralytics' ``get_flops`` (thop), which counts convolutions and linear layers
    but not the attention matrix products, so the PST figures are a lower bound.
    """
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    from pst_yolo.integration import register, shipped_configs

    register()
    rows = []
    for path in shipped_configs():
        scales = yaml.safe_load(path.read_text()).get("scales") or {"": None}
        family = re.match(r"(yolo\d+)", path.stem).group(1)  # yolo11-pst -> yolo11
        for scale in scales:
            pst_name, stock_name = f"{family}{scale}-pst.yaml", f"{family}{scale}.yaml"
            row = {"config": pst_name, "stock": stock_name}
            for key, name in (("pst", pst_name), ("stock", stock_name)):
                model = DetectionModel(name, verbose=False)
                row[f"{key}_params"] = sum(p.numel() for p in model.parameters())
                row[f"{key}_gflops"] = get_flops(model, imgsz)
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| config | params | GFLOPs | stock config | stock params | stock GFLOPs | params vs stock |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["pst_params"] / r["stock_params"] - 1
        lines.append(
            f"| {r['config']} | {r['pst_params'] / 1e6:.2f} M | {r['pst_gflops']:.1f} | {r['stock']} | "
            f"{r['stock_params'] / 1e6:.2f} M | {r['stock_gflops']:.1f} | {ratio:+.1%} |"
        )
    return "\n".join(lines)
