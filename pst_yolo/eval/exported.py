"""Exported models on this machine: export a ``YOLO`` object to an Ultralytics format, load the artifact
with Ultralytics' ``AutoBackend`` (what ``predict`` and ``val`` run) and read its raw output.

Shared by ``eval.speed`` (the ``openvino``, ``ncnn``, ... runtimes) and ``eval.export_matrix`` (parity
per format).

    from pst_yolo.eval.exported import export, load_backend, backend_output
    path = export(yolo, "openvino", 128, "runs/ov")
    y = backend_output(load_backend(path), x)      # [1, 4 + nc, anchors] float32
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pst_yolo.data.writer import save_array
from pst_yolo.integration.runtime import backend_precision, openvino_in_fp32

__all__ = ("TF_FORMATS", "backend_output", "default_precision", "export", "fp32_backend", "load_backend")

TF_FORMATS = ("saved_model", "pb", "edgetpu")  # Ultralytics' TensorFlow path: ONNX -> onnx2tf


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the block in ``path`` (exporters write next to the working directory), then return."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def export(yolo: Any, fmt: str, imgsz: int, out_dir: str | Path, **kwargs: Any) -> Path:
    """``yolo.export(format=fmt, imgsz=imgsz, **kwargs)`` into ``out_dir`` (a YAML-built model exports into
    the working directory, so the export runs there); returns the artifact's path."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt in TF_FORMATS:
        # Ultralytics downloads onnx2tf's INT8 calibration sample into the working directory even for float
        # exports; offline, a local file of the same name and shape (our own random images) stands in.
        sample = out_dir / "calibration_image_sample_data_20x128x128x3_float32.npy"
        if not sample.exists():
            save_array(sample, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    with working_directory(out_dir):
        return Path(yolo.export(format=fmt, imgsz=imgsz, **kwargs)).resolve()


def load_backend(path: str | Path) -> Any:
    """Ultralytics' AutoBackend for an exported artifact, on CPU."""
    import torch
    from ultralytics.nn.autobackend import AutoBackend

    return AutoBackend(str(path), device=torch.device("cpu"), verbose=False)


def default_precision(backend: Any) -> str:
    """The precision the runtime picked by default ("fp32", or e.g. "bf16" for OpenVINO on AVX512-BF16)."""
    return backend_precision(backend)


def fp32_backend(path: str | Path, backend: Any = None) -> Any:
    """An AutoBackend that computes in float32 (the same object when it already does).

    OpenVINO's CPU plugin infers in bfloat16 by default on CPUs with AVX512-BF16 or AMX (Ultralytics
    forces f32 only on ARM64), which is not an fp32 comparison; it is recompiled with
    ``INFERENCE_PRECISION_HINT=f32``.
    """
    backend = backend if backend is not None else load_backend(path)
    if default_precision(backend) != "fp32":
        p = Path(path)
        openvino_in_fp32(backend, p if p.is_file() else next(p.glob("*.xml")))
    return backend


def backend_output(backend: Any, x: Any) -> np.ndarray:
    """An AutoBackend's raw output for x, as float32 numpy [B, 4 + nc, anchors]."""
    import torch

    y = backend(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    return y.float().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y, dtype=np.float32)
