"""Export PST models to every CPU format Ultralytics has, run them, and compare with PyTorch.

    from pst_yolo.eval.export_matrix import check_format, parity_model
    row = check_format("openvino", k=8, imgsz=128, out_dir="runs/export_matrix")
    row.works, row.parity, row.latency_ratio

``scripts/export_matrix.py`` runs :func:`check_format` for every format in :data:`FORMATS` at k = 0
and k = 8 and writes the table in ``docs/export.md``; ``tests/eval/test_export_matrix.py`` runs the same
checks for every format whose package is installed. Which formulation each format gets is decided in
``pst_yolo.integration.export_formats``.

What one check does (format ``fmt``, top-k ``k``):

1. build :func:`parity_model` (yolo11n-pst, seeded random weights, PST layers re-drawn at unit scale so
   that the fine branch moves the boxes: k = 8 and k = 0 differ by tens of pixels at 128 px, while an
   export matches PyTorch to about 1e-7 of the output scale) and export it with Ultralytics'
   ``YOLO.export(format=fmt)``, through the same ``on_export_start`` guard users get;
2. load the artifact with Ultralytics' ``AutoBackend`` (what ``predict``/``val`` use), check its
   ``pst_topk``/``pst_fine_branch`` metadata, and run it on a fixed input;
3. **parity**: the largest of max|export - torch| / max|torch| over the box rows and over the class
   rows of Detect's ``[1, 4 + nc, anchors]`` output (each part relative to its own scale), against
   the eager PyTorch model at the same k; it must stay below :data:`TOLERANCE` (fp32 runtimes);
4. ``YOLO(artifact).predict`` on an image must return the same boxes as PyTorch's predict;
5. **latency**: median of interleaved AutoBackend calls, PST at k over stock yolo11n exported the
   same way (same runtime, same input).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pst_yolo.eval.exported import TF_FORMATS, backend_output, default_precision, export, fp32_backend, load_backend
from pst_yolo.integration.runtime import exported_metadata

# Ultralytics' export formats that run (or at least export) on a CPU-only x86-64 Linux machine, in
# the order of the matrix. The Python module each needs, None where the base install suffices.
FORMATS: dict[str, str | None] = {
    "torchscript": None,
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "ncnn": "ncnn",
    "mnn": "MNN",
    "executorch": "executorch",
    "litert": "litert_torch",
    "saved_model": "onnx2tf",
    "pb": "onnx2tf",
    "coreml": "coremltools",
}
# The pyproject.toml extra that installs each format's package (constraints/deploy.txt has the versions).
EXTRAS: dict[str, str | None] = {
    "torchscript": None,
    "onnx": "export",
    "openvino": "openvino",
    "ncnn": "ncnn",
    "mnn": "mnn",
    "executorch": "executorch",
    "litert": "litert",
    "saved_model": "tensorflow",
    "pb": "tensorflow",
    "coreml": "coreml",
}
# Formats Ultralytics lists that are not checked here, and why.
NOT_CHECKED: dict[str, str] = {
    "edgetpu": "needs Google's edgetpu_compiler (a Debian package from Google's own repository, not reachable here)",
    "paddle": "PaddlePaddle + x2paddle not installed here",
    "engine": "TensorRT needs an NVIDIA GPU",
    "coreai": "coreai-core is not on PyPI",
    "imx": "Sony IMX toolchain, INT8 NPU",
    "rknn": "Rockchip NPU toolchain",
    "axelera": "Axelera NPU toolchain",
    "deepx": "DEEPX NPU toolchain",
    "qnn": "Qualcomm QNN SDK",
    "hailo": "Hailo Dataflow Compiler",
    "ascend": "Huawei CANN toolkit",
    "xilinx": "AMD Vitis AI toolchain",
}
TOLERANCE = 1e-4  # fp32 runtimes: max |export - torch| relative to the output part's scale (measured: ~1e-7)
BOX_TOLERANCE_PX = 0.05  # predict: boxes of exported and PyTorch predictions, pixels at the original image


def available(fmt: str) -> bool:
    """Whether the Python package an export format needs is importable here (and usable: Ultralytics'
    CoreML export asks for numpy <= 2.3.5, which coremltools 9 needs)."""
    module = FORMATS.get(fmt)
    if module is not None and importlib.util.find_spec(module) is None:
        return False
    if fmt == "coreml":
        major, minor = (int(v) for v in np.__version__.split(".")[:2])
        return (major, minor) <= (2, 3)
    return True


def install_hint(fmt: str) -> str:
    """What to install for ``fmt`` (for skip messages): its Python module and the extra that brings it."""
    extra = EXTRAS.get(fmt)
    needs = FORMATS.get(fmt) or "nothing extra"
    if fmt == "coreml":
        needs += " with numpy<=2.3.5"
    where = f'pip install "pst-yolo[{extra}]"' if extra else "the base install"
    return f"format={fmt} needs {needs}: {where} (versions: constraints/deploy.txt)"


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
def parity_model(model: str = "yolo11n-pst.yaml", seed: int = 0, k: int = 8):
    """An Ultralytics YOLO object with seeded random weights in which PST's fine branch matters.

    A freshly initialised PST layer contributes nothing or almost nothing (an identity start; or, with the
    authors' init, conv weights with std 0.02 and a zero gate),
    so k = 0 and k = 8 would give outputs equal to 1e-5 and a parity check could not tell them apart.
    Here every conv weight inside the PST layers is redrawn with std 2/sqrt(fan-in), biases and the gate
    with std 0.5, BatchNorm statistics at random and scales 1 (the authors' start, whatever the default); Detect's class biases are set to -1.5 so some
    detections clear conf 0.25. Without touching the caller's random state.
    """
    import torch

    from pst_yolo.integration.registry import register
    from pst_yolo.nn.pst import PST
    from pst_yolo.nn.topk import set_topk

    register()
    from ultralytics import YOLO

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yolo = YOLO(model, task="detect")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in yolo.model.modules():
            if isinstance(layer, PST):
                for m in layer.modules():
                    if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv1d)):
                        m.weight.copy_(
                            torch.randn(m.weight.shape, generator=g) * (2.0 / math.sqrt(m.weight[0].numel()))
                        )
                        if m.bias is not None:
                            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
                    elif isinstance(m, torch.nn.BatchNorm2d):
                        m.weight.fill_(1.0)  # (an identity start zeroes the branches' closing scales: open them)
                        m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                        m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        head = yolo.model.model[-1]
        for seq in getattr(head, "cv3", []):
            seq[-1].bias.fill_(-1.5)
    set_topk(yolo, k)
    return yolo


def sample_input(imgsz: int, seed: int = 0):
    """[1, 3, imgsz, imgsz] float32 in [0, 1): the input of every parity and latency measurement."""
    import torch

    return torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(seed))


def sample_image(imgsz: int) -> np.ndarray:
    """A BGR uint8 imgsz x imgsz image (Ultralytics' bus.jpg, resized). Square, because PyTorch predict
    pads to a multiple of the stride and a fixed-size export to imgsz: other sizes see other inputs."""
    import cv2
    from ultralytics.utils import ASSETS

    return cv2.resize(cv2.imread(str(ASSETS / "bus.jpg")), (imgsz, imgsz))


def torch_output(yolo, x) -> np.ndarray:
    """The eager model's raw Detect output for x, at the k set on it: [1, 4 + nc, anchors]."""
    import torch

    m = yolo.model.eval()
    with torch.inference_mode():
        y = m(x)
    return (y[0] if isinstance(y, (list, tuple)) else y).float().numpy()


# --------------------------------------------------------------------------------------------------
# Export, load, compare
# --------------------------------------------------------------------------------------------------
def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest of max|out - ref| / max|ref| over the box rows (0:4) and the class rows (4:) of a Detect
    output [B, 4 + nc, anchors]; each part against its own scale (boxes are pixels, classes [0, 1])."""
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from PyTorch's {ref.shape}")
    errs = []
    for part in (slice(0, 4), slice(4, None)):
        r, o = ref[:, part], out[:, part]
        errs.append(float(np.abs(o - r).max() / max(float(np.abs(r).max()), 1e-12)))
    return max(errs)


def parse_pst_topk(metadata: Any) -> dict[str, int] | None:
    """``pst_topk`` from export metadata as {layer: k} (ONNX and MNN keep it as a string)."""
    import ast

    raw = metadata.get("pst_topk") if isinstance(metadata, dict) else None
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    return {str(name): int(k) for name, k in raw.items()} if isinstance(raw, dict) else None


def predict_boxes(model: Any, image: np.ndarray, imgsz: int) -> np.ndarray:
    """``YOLO(model).predict(image)`` boxes as [n, 6] (xyxy, conf, class), sorted by confidence."""
    from ultralytics import YOLO

    yolo = model if hasattr(model, "predict") else YOLO(str(model), task="detect")
    r = yolo.predict(image, imgsz=imgsz, conf=0.25, verbose=False, device="cpu")[0]
    data = r.boxes.data.cpu().numpy()
    return data[np.argsort(-data[:, 4], kind="stable")]


def boxes_match(a: np.ndarray, b: np.ndarray, tol_px: float = BOX_TOLERANCE_PX) -> bool:
    """Same detections: equal count, and each box of ``a`` has its own box in ``b`` of the same class
    with every coordinate within ``tol_px`` (matched greedily, nearest first: boxes of nearly equal
    confidence may come in another order)."""
    if a.shape != b.shape:
        return False
    free = np.ones(len(b), dtype=bool)
    for box in a:
        dist = np.abs(b[:, :4] - box[:4]).max(axis=1)
        dist[~free | (b[:, 5] != box[5])] = np.inf
        j = int(np.argmin(dist)) if len(dist) else -1
        if j < 0 or dist[j] > tol_px:
            return False
        free[j] = False
    return True


def median_latency(runners: dict[str, Callable[[], Any]], runs: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each runner, timed interleaved (one call of each per round)."""
    from pst_yolo.eval.speed import time_interleaved

    times = time_interleaved(runners, runs, warmup)
    return {key: statistics.median(v) for key, v in times.items()}


# --------------------------------------------------------------------------------------------------
# One cell of the matrix
# --------------------------------------------------------------------------------------------------
@dataclass
class FormatCheck:
    """The result of exporting one format at one k (see the module doc for each measurement)."""

    fmt: str
    k: int
    exported: bool = False
    ran: bool = False
    parity: float | None = None  # relative error vs PyTorch at the same k, runtime in fp32
    precision: str | None = None  # what the runtime computes in by default (Ultralytics' AutoBackend settings)
    default_parity: float | None = None  # relative error at that default precision
    fine_effect: float | None = None  # relative difference PyTorch k vs k=0 (what parity must be far below)
    predict_match: bool | None = None
    metadata_topk: dict | None = None
    fine_branch: str | None = None  # pst_fine_branch metadata: off / native / portable
    latency_ms: float | None = None
    stock_latency_ms: float | None = None
    export_s: float | None = None
    artifact: Path | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def latency_ratio(self) -> float | None:
        if self.latency_ms is None or not self.stock_latency_ms:
            return None
        return self.latency_ms / self.stock_latency_ms

    @property
    def works(self) -> bool:
        """Exported, ran through AutoBackend, matched PyTorch in fp32 (and predict's boxes where the
        runtime's default is fp32), kept pst_topk."""
        expected = {"13": self.k, "16": self.k}
        return (
            self.ran
            and self.parity is not None
            and self.parity < TOLERANCE
            and (bool(self.predict_match) or self.precision != "fp32")
            and self.metadata_topk == expected
        )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def check_format(
    fmt: str,
    k: int,
    imgsz: int = 128,
    out_dir: str | Path = "runs/export_matrix",
    latency: bool = True,
    runs: int = 20,
    warmup: int = 3,
    stock: Any = None,
) -> FormatCheck:
    """Export yolo11n-pst (:func:`parity_model`) to ``fmt`` at ``k`` and check it; never raises for a
    failing export or run (the error goes into the result). ``stock``: a loaded AutoBackend of stock
    yolo11n in the same format, to reuse across k (exported here when None and ``latency``)."""
    from pst_yolo.integration.export_formats import FORMAT_SUPPORT

    res = FormatCheck(fmt, k)
    _import_order(fmt)
    work = Path(out_dir).resolve() / f"{fmt}_k{k}"
    shutil.rmtree(work, ignore_errors=True)
    yolo = parity_model(k=k)
    x = sample_input(imgsz)
    ref = torch_output(yolo, x)
    from pst_yolo.nn.topk import set_topk

    set_topk(yolo, 0)
    coarse = torch_output(yolo, x)
    set_topk(yolo, k)
    res.fine_effect = relative_error(coarse, ref)
    t0 = time.perf_counter()
    try:
        res.artifact = export(yolo, fmt, imgsz, work)
        res.exported = True
    except Exception as e:
        res.error = _first_line(e)
        return res
    finally:
        res.export_s = time.perf_counter() - t0
    support = FORMAT_SUPPORT.get(fmt)
    if support is not None and not support.runs_here:  # metadata read from the files, without a runtime
        meta = exported_metadata(res.artifact)
        res.metadata_topk = parse_pst_topk(meta)
        res.fine_branch = meta.get("pst_fine_branch")
        res.notes.append("export only: running it needs macOS")
        return res
    try:
        backend = load_backend(res.artifact)
        res.metadata_topk = parse_pst_topk(backend.metadata)
        res.fine_branch = (backend.metadata or {}).get("pst_fine_branch")
        res.precision = default_precision(backend)
        res.default_parity = relative_error(backend_output(backend, x), ref)
        image = sample_image(imgsz)
        res.predict_match = boxes_match(predict_boxes(res.artifact, image, imgsz), predict_boxes(yolo, image, imgsz))
        if latency:  # as Ultralytics runs it (default precision), both models alike
            if stock is None:
                stock = stock_backend(fmt, imgsz, out_dir)
            med = median_latency({"pst": lambda: backend(x), "stock": lambda: stock(x)}, runs, warmup)
            res.latency_ms, res.stock_latency_ms = med["pst"] * 1e3, med["stock"] * 1e3
        if res.precision != "fp32":
            backend = fp32_backend(res.artifact, backend)
        res.parity = relative_error(backend_output(backend, x), ref)
        res.ran = True
    except Exception as e:
        res.error = _first_line(e)
        if os.environ.get("PST_EXPORT_MATRIX_DEBUG"):
            traceback.print_exc()
    return res


def _import_order(fmt: str) -> None:
    """Before a TensorFlow format: torchvision (imported by predict's NMS) imports triton, which crashes
    the process (SIGSEGV in its C extension) once TensorFlow 2.19 is loaded; imported first, both work."""
    if fmt in TF_FORMATS:
        import torchvision  # noqa: F401


def stock_backend(fmt: str, imgsz: int, out_dir: str | Path):
    """Stock yolo11n (seeded random weights) exported to ``fmt`` and loaded: the latency baseline."""
    _import_order(fmt)
    import torch
    from ultralytics import YOLO

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yolo = YOLO("yolo11n.yaml", task="detect")
    work = Path(out_dir).resolve() / f"{fmt}_stock"
    shutil.rmtree(work, ignore_errors=True)
    return load_backend(export(yolo, fmt, imgsz, work))


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def _cell(r: FormatCheck | None) -> tuple[str, str, str]:
    """(result, parity, latency ratio) cells for one check."""
    if r is None:
        return "not run", "", ""
    if not r.exported:
        return f"**export fails**: {r.error}", "", ""
    topk_ok = r.metadata_topk == {"13": r.k, "16": r.k}
    if not r.ran and r.error is None:
        return (
            f"exports ({'; '.join(r.notes)}; {'pst_topk kept' if topk_ok else '**pst_topk missing**'})",
            "not run",
            "",
        )
    if not r.ran:
        return f"**exports, does not run**: {r.error}", "", ""
    result = "works" if r.works else "**differs**"
    if not topk_ok:
        result += " (**pst_topk missing**)"
    parity = f"{r.parity:.1e}"
    if r.k:
        parity += f" (k=0 vs k={r.k}: {r.fine_effect:.1e})"
    if r.precision != "fp32":
        parity += (
            f"; default {r.precision}: {r.default_parity:.1e}, predict boxes {'match' if r.predict_match else 'differ'}"
        )
    elif not r.predict_match:
        result += " (predict boxes differ)"
    ratio = (
        "" if r.latency_ratio is None else f"{r.latency_ratio:.2f}x ({r.latency_ms:.1f} / {r.stock_latency_ms:.1f} ms)"
    )
    return result, parity, ratio


def markdown(results: list[FormatCheck], versions: dict[str, str]) -> str:
    """The matrix: one row per format and k."""
    from pst_yolo.integration.export_formats import FORMAT_SUPPORT, fine_branch_mode

    lines = [
        "| format | k | result | parity (max rel. error vs PyTorch) | latency PST / stock yolo11n | fine branch | version |",
        "|---|---:|---|---|---|---|---|",
    ]
    for r in results:
        works, parity, ratio = _cell(r)
        if r.k == 0:
            how = "off (coarse only)"
        else:
            mode, note = fine_branch_mode(r.fmt)
            how = f"{mode}: {note}"
        support = FORMAT_SUPPORT.get(r.fmt)
        if support is not None and support.sliced_kv:
            how += " (keys/values sliced before the transpose)" if r.k == 0 else ""
        lines.append(f"| {r.fmt} | {r.k} | {works} | {parity} | {ratio} | {how} | {versions.get(r.fmt, '')} |")
    return "\n".join(lines)
