"""Validate the same weights at several top-k values: the "coarse vs fine" table of the paper."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

DEFAULT_TOPK = (0, 4, 8, 16)


def compare(
    model: str | Any,
    data: str,
    topk: Sequence[int] | None = None,
    imgsz: int | None = None,
    batch: int = 16,
    device: str | None = None,
    workers: int = 2,
    split: str = "val",
    save_dir: str | Path | None = None,
    precision: str | None = None,
) -> list[dict]:
    """Run Ultralytics validation of ``model`` on ``data`` once per k; return one row per k.

    Detection rows hold ``mAP50-95``, ``mAP50``; classification rows ``top1``, ``top5``; every row
    has ``k``, ``imgsz``, ``ms/image`` (Ultralytics' measured inference time per image), ``runtime`` and
    ``precision`` (what ran: ``PyTorch`` ``fp32``, ``OpenVINO`` ``bf16``, ...). ``topk`` defaults to 0, 4, 8, 16;
    an export (``.onnx``, ``*_openvino_model``, ...) runs only at the k it was exported at, which is its
    default. ``imgsz`` defaults to the size the checkpoint was trained at, as ``yolo val`` does (640 for a
    config; an export: its fixed size); a different explicit size is used with an ``ImageSizeWarning``.
    ``precision``: OpenVINO's ``fp32`` / ``bf16`` / ``fp16`` (see ``pst_yolo.eval.coco.evaluate``). The model's own
    k is restored afterwards. Writes ``compare.md``/``compare.csv`` into ``save_dir`` when given.
    """
    from pst_yolo.data.writer import check_run_folder, run_folder, write_csv, write_text
    from pst_yolo.eval.inputs import (
        check_dataset_arg,
        check_export_topk,
        check_model_file,
        check_positive,
        export_k,
        export_path_of,
        load_model,
        runtime_format,
    )
    from pst_yolo.integration.precision import check_precision, parse_precision, runtime_name, runtime_precision
    from pst_yolo.integration.runtime import choose_imgsz, export_quantization
    from pst_yolo.nn.topk import pst_layers, set_topk

    # Every input is checked before the first validation: settings, data, output folder, model.
    ks = None if topk is None else [int(k) for k in topk]
    if ks is not None and (not ks or any(k < 0 for k in ks)):
        raise ValueError(f"topk must list non-negative integers, e.g. 0,4,8,16; got {list(topk)}")
    check_positive(imgsz=imgsz, batch=batch)
    if workers < 0:
        raise ValueError(f"workers={workers}: must be >= 0")
    if precision is not None:
        parse_precision(precision)
    check_dataset_arg(data)
    if save_dir is not None:
        check_run_folder(save_dir, [data])
    model = check_model_file(model)
    check_split(data, split)  # (reads every image: after the cheap checks)
    yolo = load_model(model)
    fmt = runtime_format(yolo)
    check_precision(fmt, precision)
    if fmt == "pt":
        if not pst_layers(yolo):
            raise ValueError(f"{model} has no PST layers, so there is no top-k to compare; use a PST model")
        ks = ks or list(DEFAULT_TOPK)
    else:  # an export: its k is fixed in the graph
        if export_k(yolo) is None:
            raise ValueError(
                f"{model} is an export without PST layers at one k (no pst_topk in its metadata): nothing to compare"
            )
        for k in ks or ():
            check_export_topk(yolo, k)
        ks = [export_k(yolo)]
    size, _why = choose_imgsz(yolo, imgsz, str(model))
    quantized = export_quantization(export_path_of(yolo)) if fmt != "pt" else None

    rows = []
    previous = set_topk(yolo, ks[0]) if fmt == "pt" else None
    try:
        for k in ks:
            if fmt == "pt":
                set_topk(yolo, k)
            with runtime_precision(fmt, precision, quantized) as ran:
                metrics = yolo.val(
                    data=data,
                    imgsz=size,
                    batch=batch,
                    device=device,
                    workers=workers,
                    split=split,
                    plots=False,
                    verbose=False,
                )
            row: dict[str, Any] = {"k": k, "imgsz": size}
            if hasattr(metrics, "box"):
                row["mAP50-95"], row["mAP50"] = float(metrics.box.map), float(metrics.box.map50)
            else:  # classification
                row["top1"], row["top5"] = float(metrics.top1), float(metrics.top5)
            row["ms/image"] = float(metrics.speed.get("inference", float("nan")))
            row["runtime"], row["precision"] = runtime_name(fmt), ran.label()
            rows.append(row)
    finally:
        if fmt == "pt":
            set_topk(yolo, previous)

    if save_dir is not None:
        save_dir = run_folder(save_dir, "compare", numbered=False, sources=[data])
        write_text(save_dir / "compare.md", markdown_table(rows) + "\n")
        write_csv(save_dir / "compare.csv", list(rows[0]), [list(r.values()) for r in rows])
    return rows


INTEGER_COLUMNS = ("k", "imgsz")
TEXT_COLUMNS = ("runtime", "precision")


def check_split(data: str | Path, split: str) -> None:
    """Refuse a local split with a corrupt image or a label Ultralytics would drop (it would score the rest and
    say so only in its log), as ``bench`` and ``evaluate`` refuse such data."""
    from pst_yolo.data.yolo_check import DatasetError, check_classification_split, check_detection_split

    path = Path(str(data))
    if path.is_file():
        check_detection_split(path, split)
    elif path.is_dir() and (path / "data.yaml").is_file():
        check_detection_split(path / "data.yaml", split)
    elif path.is_dir() and ((path / split).is_dir() or (path / "train").is_dir()):
        check_classification_split(path, split)
    elif path.is_dir():
        raise DatasetError(
            f"data={data} is a folder without a data.yaml and without {split}/ or train/ class folders; give a "
            "data.yaml (or its folder) or an ImageFolder root"
        )


def markdown_table(rows: list[dict]) -> str:
    """One markdown table: a row per k; metrics to 4 decimals, ms/image to one."""
    keys = list(rows[0])
    header = "| " + " | ".join(keys) + " |"
    rule = "|" + "|".join("---" if k in TEXT_COLUMNS else "---:" for k in keys) + "|"

    def cell(r: dict, k: str) -> str:
        if k in INTEGER_COLUMNS or k in TEXT_COLUMNS:
            return str(r[k])
        return f"{r[k]:.1f}" if k == "ms/image" else f"{r[k]:.4f}"

    body = ["| " + " | ".join(cell(r, k) for k in keys) + " |" for r in rows]
    return "\n".join([header, rule, *body])
