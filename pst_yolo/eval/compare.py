"""Validate the same weights at several top-k values: the "coarse vs fine" table of the paper."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def compare(
    model: str | Any,
    data: str,
    topk: Sequence[int] = (0, 4, 8, 16),
    imgsz: int | None = None,
    batch: int = 16,
    device: str | None = None,
    workers: int = 2,
    split: str = "val",
    save_dir: str | Path | None = None,
) -> list[dict]:
    """Run Ultralytics validation of ``model`` on ``data`` once per k; return one row per k.

    Detection rows hold ``mAP50-95``, ``mAP50``; classification rows ``top1``, ``top5``; every row
    has ``k``, ``imgsz`` and ``ms/image`` (Ultralytics' measured inference time per image). ``imgsz``
    defaults to the size the checkpoint was trained at, as ``yolo val`` does (640 for a config); a
    different explicit size is used with an ``ImageSizeWarning``. The model's own k
    is restored afterwards. Writes ``compare.md``/``compare.csv`` into ``save_dir`` when given.
    """
    from pst_yolo.data.writer import check_run_folder, run_folder, write_csv, write_text
    from pst_yolo.eval.inputs import check_dataset_arg, check_model_file, check_positive, load_model
    from pst_yolo.integration.runtime import choose_imgsz
    from pst_yolo.nn.topk import pst_layers, set_topk

    # Every input is checked before the first validation: settings, data, output folder, model.
    ks = [int(k) for k in topk]
    if not ks or any(k < 0 for k in ks):
        raise ValueError(f"topk must list non-negative integers, e.g. 0,4,8,16; got {list(topk)}")
    check_positive(imgsz=imgsz, batch=batch)
    if workers < 0:
        raise ValueError(f"workers={workers}: must be >= 0")
    check_dataset_arg(data)
    if save_dir is not None:
        check_run_folder(save_dir, [data])
    check_model_file(model)
    check_split(data, split)  # (reads every image: after the cheap checks)
    yolo = load_model(model)
    if not pst_layers(yolo):
        raise ValueError(f"{model} has no PST layers, so there is no top-k to compare; use a PST model")
    size, _why = choose_imgsz(yolo, imgsz, str(model))

    rows = []
    previous = set_topk(yolo, ks[0])
    try:
        for k in ks:
            set_topk(yolo, k)
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
            rows.append(row)
    finally:
        set_topk(yolo, previous)

    if save_dir is not None:
        save_dir = run_folder(save_dir, "compare", numbered=False, sources=[data])
        write_text(save_dir / "compare.md", markdown_table(rows) + "\n")
        write_csv(save_dir / "compare.csv", list(rows[0]), [list(r.values()) for r in rows])
    return rows


INTEGER_COLUMNS = ("k", "imgsz")


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
    rule = "|" + "|".join("---:" for _ in keys) + "|"
    body = [
        "| "
        + " | ".join(
            str(r[k]) if k in INTEGER_COLUMNS else (f"{r[k]:.1f}" if k == "ms/image" else f"{r[k]:.4f}") for k in keys
        )
        + " |"
        for r in rows
    ]
    return "\n".join([header, rule, *body])
