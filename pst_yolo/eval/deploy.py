"""``pst-yolo deploy``: what deploying a trained model costs in accuracy, per export format and precision.

    from pst_yolo.eval.deploy import deploy
    result = deploy(["runs/stock/weights/best.pt", "runs/pst/weights/best.pt"], data="datasets/synth", topk=[0, 8])
    print(result.table)        # COCO AP per model, k, format x precision, and its drop from PyTorch fp32

Each ``.pt`` is exported (``yolo export``, through pst-yolo's export guard) once per format and weight
precision, at the size it was trained at and at each k (a PST model; a stock model once), and every variant is
scored with ``pst_yolo.eval.coco.evaluate``, the function behind ``pst-yolo evaluate``: the same images, the same
COCOeval, the runtime's precision read back from the runtime (``integration.precision``). ΔAP is the variant's AP
minus PyTorch fp32's for the same model and k. Variants whose runtime is not installed are listed as skipped, with
the extra that installs them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from pst_yolo.data.writer import place_file, run_folder, write_csv, write_text

__all__ = ("VARIANTS", "DeployResult", "DeployRow", "Variant", "deploy", "markdown_table")


@dataclass(frozen=True)
class Variant:
    """One way to deploy a model: an Ultralytics format, the precision of its weights in the export (``fp16``:
    ``yolo export ... quantize=16``, or ``half=True`` before 8.4) and the precision asked of its runtime (None:
    the runtime's default, which ``integration.precision`` reads back)."""

    name: str  # the key of variants= and the row label
    fmt: str  # "pt" or an Ultralytics export format
    weights: str = "fp32"  # "fp32", "fp16" or "int8" (calibrated on the train split of data=): what the export stores
    precision: Optional[str] = None  # asked of the runtime (precision=); None: its default


VARIANTS = (
    Variant("pytorch", "pt"),  # the reference: PyTorch fp32, every ΔAP is against it
    Variant("onnx", "onnx"),
    Variant("onnx-fp16", "onnx", weights="fp16"),  # fp16 weights and compute (Ultralytics' float16 conversion)
    Variant("onnx-int8", "onnx", weights="int8"),  # ONNX Runtime static quantization, Ultralytics' own (quantize=8)
    Variant("openvino-fp32", "openvino", precision="fp32"),
    Variant("openvino", "openvino"),  # OpenVINO's default: bf16 on CPUs with AVX512-BF16 or AMX
    Variant("openvino-fp16-ir", "openvino", weights="fp16"),  # fp16 weights in the IR, the runtime's default
    Variant("openvino-int8", "openvino", weights="int8"),  # NNCF post-training quantization
    Variant("ncnn", "ncnn"),
    Variant("ncnn-fp16", "ncnn", weights="fp16"),  # fp16 weights (NCNN's fp16 arithmetic runs on ARM CPUs only)
    # LiteRT (TFLite) through litert-torch; Ultralytics writes no fp16 model (LiteRT runs fp32 models in fp16 on
    # the GPU delegate or ARM's XNNPACK), so fp32 and static INT8 only
    Variant("litert", "litert"),
    Variant("litert-int8", "litert", weights="int8"),  # ai-edge-quantizer, int8 weights and activations
)
REFERENCE = VARIANTS[0]


@dataclass
class DeployRow:
    model: str  # tables.model_label of the .pt
    k: Optional[int]  # PST top-k (None: no PST layers)
    variant: str
    runtime: str = ""  # what ran: "OpenVINO", ...
    precision: str = ""  # ... and in what (read back): "bf16", "fp32, fp16 weights", ...
    stats: dict = field(default_factory=dict)  # the 12 COCOeval numbers
    delta_ap: Optional[float] = None  # AP - PyTorch fp32's AP (same model and k)
    ms_per_image: Optional[float] = None
    artifact: str = ""
    error: str = ""  # why the variant did not run (a runtime not installed, an export that failed)


@dataclass
class DeployResult:
    rows: list[DeployRow]
    run_dir: Path
    markdown: Path
    csv: Path
    table: str
    seconds: float


def _variants(names: Optional[Sequence[str]]) -> list[Variant]:
    """The variants named (the reference first, always), or all of them."""
    known = {v.name: v for v in VARIANTS}
    if names is None:
        return list(VARIANTS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"variants={','.join(unknown)}: unknown; choose from {', '.join(known)}")
    return [REFERENCE, *(known[n] for n in dict.fromkeys(names) if n != REFERENCE.name)]


def _missing(v: Variant, calibration: Optional[Path]) -> str:
    """Why a variant cannot run here ("" when it can): its package and the extra that installs it, or what an
    INT8 export lacks (calibration images, an Ultralytics that quantizes this format, NNCF for OpenVINO)."""
    import importlib.util

    from pst_yolo.eval.export_matrix import available, install_hint
    from pst_yolo.integration.compat import has_quantize_arg

    if v.fmt != "pt" and not available(v.fmt):
        return install_hint(v.fmt)
    if v.weights != "int8":
        return ""
    if calibration is None:
        return "INT8 calibrates on a dataset's train split: give data= (a folder or data.yaml), not annotations="
    if v.fmt in ("onnx", "litert") and not has_quantize_arg():
        return f"INT8 format={v.fmt} export (quantize=8) needs Ultralytics 8.4 or later"
    if v.fmt == "litert" and importlib.util.find_spec("ai_edge_quantizer") is None:
        return 'LiteRT INT8 needs ai-edge-quantizer: pip install "pst-yolo[litert]" (versions: constraints/deploy.txt)'
    if v.fmt == "openvino" and importlib.util.find_spec("nncf") is None:
        return 'OpenVINO INT8 needs NNCF: pip install "pst-yolo[openvino]" (versions: constraints/deploy.txt)'
    return ""


def deploy(
    models: Sequence[str | Path],
    data: str | Path | None = None,
    annotations: str | Path | None = None,
    images: str | Path | None = None,
    topk: Sequence[int] = (0, 8),
    variants: Optional[Sequence[str]] = None,
    imgsz: Optional[int] = None,
    batch: int = 1,
    calibrate: str = "train",
    seed: int = 0,
    project: str | Path = "runs/pst-deploy",
    name: str = "deploy",
    verbose: bool = True,
) -> DeployResult:
    """Export each ``.pt`` model in each variant's format and score every variant with COCOeval.

    Args:
        models: trained ``.pt`` checkpoints (a stock and a PST model, say).
        data: a dataset folder or ``data.yaml`` written by ``pst-yolo synth`` / ``coco2yolo`` (its val COCO JSON
            is scored); or ``annotations`` (a COCO instances JSON) with ``images`` (the folder its file names are
            relative to).
        topk: the k values of PST models (each exported at each k; k is fixed in an export); a stock model once.
        variants: names from :data:`VARIANTS` (the PyTorch fp32 reference is always run); None: all.
        imgsz: export and inference size; None: each model's training size.
        batch: images per forward pass (1: per-image latency, as ``bench``).
        calibrate: the split of ``data`` whose images calibrate the INT8 variants: ``train`` (default), or ``val``
            (Ultralytics' default ``split``: the images that are then scored, so the AP reads optimistic).
        seed: seeds the order of the calibration images. Ultralytics shuffles them with torch's seed, and NNCF
            calibrates on the first 300, so an unseeded INT8 export changes from run to run; with one seed every
            model of the run calibrates on the same images (paired), and a rerun reproduces it.
    Returns:
        :class:`DeployResult`: one row per model, k and variant; ``results.md`` / ``results.csv`` in the run folder.
    """
    from ultralytics import YOLO

    from pst_yolo.eval.bench import _coco_source, _find_data_yaml
    from pst_yolo.eval.coco import evaluate, load_ground_truth
    from pst_yolo.eval.inputs import check_model_file, check_positive
    from pst_yolo.eval.tables import machine_description, model_label
    from pst_yolo.integration.registry import register
    from pst_yolo.integration.runtime import choose_imgsz
    from pst_yolo.nn.topk import pst_layers

    register()  # the export hook (k in the metadata, each format's fine branch) even with PST_YOLO_AUTOLOAD=0

    # Every input is checked before the first export: models, data, settings.
    t0 = time.perf_counter()
    models = [str(m) for m in models]
    if not models:
        raise ValueError("models= is empty: give trained .pt checkpoints")
    for m in models:
        if Path(m).suffix != ".pt":
            raise ValueError(f"model {m}: deploy exports trained .pt checkpoints; give one")
        check_model_file(m)
        if not Path(m).is_file():
            raise FileNotFoundError(f"weights not found: {m} (no such file)")
    labels = [model_label(m) for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(
            f"models {models} share a name ({', '.join(labels)}); rename them so the table tells them apart"
        )
    ks = [int(k) for k in topk]
    if not ks or any(k < 0 for k in ks):
        raise ValueError(f"topk must list non-negative integers, e.g. 0,8; got {list(topk)}")
    check_positive(imgsz=imgsz, batch=batch)
    if calibrate not in ("train", "val"):
        raise ValueError(f"calibrate={calibrate!r}: give train or val (the split of data= whose images calibrate INT8)")
    chosen = _variants(variants)
    data_yaml = _find_data_yaml(data) if data is not None else None
    ann, img_dir, class_map, _ = _coco_source(data_yaml, annotations, images)
    load_ground_truth(ann)
    run_dir = run_folder(Path(project) / name, "deploy", key="name")

    rows: list[DeployRow] = []
    for m, label in zip(models, labels):
        yolo = YOLO(m)
        size, _ = choose_imgsz(yolo, imgsz, label)
        for k in ks if pst_layers(yolo) else [None]:
            reference: Optional[float] = None
            artifacts: dict[tuple[str, str], Path] = {}
            for v in chosen:
                row = DeployRow(model=label, k=k, variant=v.name)
                rows.append(row)
                row.error = _missing(v, data_yaml)
                if row.error:
                    continue
                tag = f"{label}{'' if k is None else f'_k{k}'}"
                try:
                    path = _artifact(m, k, v, size, run_dir / "exports" / tag, artifacts, data_yaml, calibrate, seed)
                    res = evaluate(
                        str(path), img_dir, ann, topk=k, imgsz=size, batch=batch, class_map=class_map, precision=v.precision,
                        save=run_dir / "detections" / f"{tag}_{v.name}.json", verbose=False, progress=verbose,
                    )  # fmt: skip
                except Exception as e:  # one variant that fails is a row saying why, not a lost table
                    row.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                    continue
                row.runtime, row.precision, row.stats = _runtime(res.runtime), res.precision, dict(res.stats)
                row.ms_per_image, row.artifact = res.ms_per_image, str(path)
                if v is REFERENCE:
                    reference = res.stats["AP"]
                row.delta_ap = None if reference is None else res.stats["AP"] - reference
                if verbose:
                    print(
                        f"{label}{'' if k is None else f' k={k}'} {v.name}: AP {res.stats['AP']:.4f} ({row.precision})"
                    )

    table = markdown_table(rows)
    md, csv_path = run_dir / "results.md", run_dir / "results.csv"
    seconds = time.perf_counter() - t0
    write_text(md, _report(table, models, ann, ks, batch, machine_description(), seconds))
    write_csv(
        csv_path,
        ["model", "k", "variant", "runtime", "precision", "AP", "AP50", "dAP", "ms_per_image", "artifact", "error"],
        [
            [
                r.model, "" if r.k is None else r.k, r.variant, r.runtime, r.precision,
                *(f"{r.stats[s]:.5f}" if s in r.stats else "" for s in ("AP", "AP50")),
                "" if r.delta_ap is None else f"{r.delta_ap:+.5f}",
                "" if r.ms_per_image is None else f"{r.ms_per_image:.2f}", r.artifact, r.error,
            ]
            for r in rows
        ],
    )  # fmt: skip
    if verbose:
        print(f"\nResults ({run_dir}): results.md, results.csv\n\n{table}")
    return DeployResult(rows=rows, run_dir=run_dir, markdown=md, csv=csv_path, table=table, seconds=seconds)


def _runtime(fmt: str) -> str:
    from pst_yolo.integration.precision import runtime_name

    return runtime_name(fmt)


def _artifact(
    weights: str,
    k: Optional[int],
    v: Variant,
    imgsz: int,
    out_dir: Path,
    cache: dict,
    data: Optional[Path] = None,
    calibrate: str = "train",
    seed: int = 0,
) -> Path:
    """The model a variant runs: the checkpoint itself (PyTorch: evaluate sets its k), or its export in ``v.fmt``
    with ``v.weights``, exported at k, made once per (format, weights) for the model and k; INT8 calibrates on
    the ``calibrate`` split of ``data``."""
    from ultralytics import YOLO

    from pst_yolo.eval.exported import export
    from pst_yolo.integration.compat import fp16_export_args, int8_export_args
    from pst_yolo.nn.topk import set_topk

    if v.fmt == "pt":
        return Path(weights)
    key = (v.fmt, v.weights)
    if key not in cache:
        # Ultralytics writes an export beside the checkpoint it loaded: a link to it in the run folder keeps the
        # exports there, one folder per format and weight precision (their names would clash otherwise).
        folder = (out_dir / f"{v.fmt}-{v.weights}").resolve()
        link = folder / Path(weights).name
        place_file(weights, link, "symlink")
        yolo = YOLO(str(link))
        if k is not None:
            set_topk(yolo, k)  # k is fixed in the exported graph
        # (the export runs in its folder: a relative data= would name another place there)
        kwargs = {"fp16": fp16_export_args, "int8": lambda: int8_export_args(str(Path(data).resolve()), calibrate)}.get(
            v.weights, dict
        )()
        if v.weights == "int8":
            import torch

            torch.manual_seed(seed)  # the calibration images' order (Ultralytics seeds its shuffle from torch's seed)
        cache[key] = export(yolo, v.fmt, imgsz, folder, **kwargs)
    return cache[key]


def markdown_table(rows: Sequence[DeployRow]) -> str:
    """One row per model, k and variant: what ran, AP, AP50, ΔAP from PyTorch fp32, ms/image."""
    lines = [
        "| model | k | variant | runs in | AP | AP50 | ΔAP vs PyTorch fp32 | ms/image |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {'-' if r.k is None else r.k} | {r.variant} | not run: {r.error} | | | | |")
            continue
        ap, ap50 = r.stats.get("AP", math.nan), r.stats.get("AP50", math.nan)
        delta = "-" if r.delta_ap is None else f"{r.delta_ap:+.4f}"
        ms = "-" if r.ms_per_image is None else f"{r.ms_per_image:.1f}"
        k = "-" if r.k is None else str(r.k)
        lines.append(
            f"| {r.model} | {k} | {r.variant} | {r.runtime} {r.precision} | {ap:.4f} | {ap50:.4f} | {delta} | {ms} |"
        )
    return "\n".join(lines)


def _report(
    table: str, models: Sequence[str], ann: Path, ks: Sequence[int], batch: int, machine: str, seconds: float
) -> str:
    return "\n".join(
        [
            "# pst-yolo deploy",
            "",
            f"- models: {', '.join(models)}; PST top-k: {', '.join(map(str, ks))} (a stock model once)",
            f"- scored against `{ann}` (pycocotools COCOeval, bbox, maxDets 100, conf 0.001), batch {batch}",
            f"- machine: {machine}",
            f"- wall time: {seconds / 60:.1f} min",
            "",
            table,
            "",
            "runs in: the runtime and the precision it computed in, as the runtime reports it (OpenVINO's default: "
            'bf16 on CPUs with AVX512-BF16 or AMX); "fp16 weights": exported with fp16 weights. ΔAP: AP minus '
            "PyTorch fp32's for the same model and k. Exports run at the k they were exported at.",
            "",
        ]
    )
