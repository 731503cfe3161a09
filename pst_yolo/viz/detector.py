"""A YOLO model behind Ultralytics' predictor, with PST's k and the selection hooks on the very module the
predictor runs; the one wrapper the demo and ``explain`` use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pst_yolo.integration.runtime import (
    backend_metadata,
    backend_network,
    check_model_kind,
    choose_imgsz,
    predictor_backend,
    predictor_imgsz,
)
from pst_yolo.nn.checks import check_topk
from pst_yolo.nn.topk import get_topk, pst_layers, set_topk
from pst_yolo.viz.attention_maps import SelectionRecorder
from pst_yolo.viz.common import DemoError, say

MODEL_FILE_SUFFIXES = {".pt", ".pth", ".onnx", ".torchscript", ".engine", ".mlpackage", ".tflite"}


def check_model_path(model: Any) -> None:
    """A model given by name or path that cannot be one: empty, or a file path that does not exist."""
    if model is None or (isinstance(model, str) and not model.strip()):
        raise DemoError(
            "model= is required: a .pt checkpoint, an exported .onnx, or e.g. yolo11n-pst.yaml (random weights)"
        )
    if not isinstance(model, (str, Path)):
        return
    path = Path(model).expanduser()
    if (path.suffix.lower() in MODEL_FILE_SUFFIXES or len(path.parts) > 1) and not path.exists():
        raise DemoError(f"model file not found: {model}")


def load_model(model: Any):
    """An Ultralytics YOLO object from a path (``.pt``, ``.onnx``, ``.yaml`` ...) or a YOLO object."""
    from ultralytics import YOLO

    check_model_path(model)
    if not isinstance(model, (str, Path)):
        if hasattr(model, "predict"):
            return model
        raise DemoError(f"model must be a path or an Ultralytics YOLO object, got {type(model).__name__}")
    path = Path(model).expanduser()
    try:
        yolo = YOLO(str(path) if path.exists() else str(model))
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DemoError(f"could not load model {model}: {first}") from e
    try:
        return check_model_kind(path, yolo)  # (a text file or an empty folder loads as a network-less YOLO)
    except ValueError as e:
        raise DemoError(str(e)) from None


def _parse_export_k(raw: Any) -> Any:
    """``pst_topk`` export metadata ({layer: k}, possibly as a string) -> an int if all agree, else the dict."""
    import ast

    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    if isinstance(raw, dict):
        values = set(raw.values())
        return values.pop() if len(values) == 1 else raw
    return raw if isinstance(raw, int) else None


@dataclass
class Detection:
    """One frame's result: boxes in original-image pixels, and what the fine branch selected."""

    boxes: np.ndarray  # [n, 4] xyxy
    classes: np.ndarray  # [n]
    confs: np.ndarray  # [n]
    latency_ms: float
    k: Any
    selections: list
    result: Any = None  # the Ultralytics Results object


class Detector:
    """A YOLO model behind Ultralytics' predictor, with PST's k and the selection hooks on the very
    module the predictor runs (Ultralytics' predictor works on its own copy of the model).

    Args:
        model: ``.pt``/``.onnx``/``.yaml`` path or a YOLO object.
        topk: k for every PST layer (None: keep the model's). Ignored, with a message, for exports.
        imgsz: inference size (None: the size the checkpoint was trained at, as ``yolo predict`` uses; an
            export's fixed size; 640 for a config). ``self.imgsz`` holds the size used.
    """

    def __init__(
        self,
        model: Any,
        imgsz: Optional[int] = None,
        conf: float = 0.25,
        iou: float = 0.7,
        device: str = "cpu",
        max_det: int = 300,
        topk: Optional[int] = None,
        verbose: bool = True,
    ) -> None:
        self.verbose = verbose
        if topk is not None:
            try:
                topk = check_topk(topk)
            except ValueError as e:
                raise DemoError(f"topk: {e}") from None
        self.yolo = load_model(model)
        if isinstance(model, (str, Path)):
            self.model_name = str(model)
        else:  # a YOLO object: name it by its checkpoint or config
            ref = getattr(model, "ckpt_path", None) or getattr(model, "cfg", None)
            self.model_name = Path(str(ref)).name if ref else type(model).__name__
        asked = imgsz
        imgsz, self.imgsz_source = choose_imgsz(self.yolo, imgsz, self.model_name)
        self.imgsz = imgsz
        self.args = dict(imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det, verbose=False)
        self.net = None
        self.layers: list = []
        self.recorder: Optional[SelectionRecorder] = None
        self.export_k: Any = None
        self.notes: list[str] = []
        self._backend = None
        self._k_at_start = None  # restored on close(): a caller's YOLO object is left as found
        own_layers = self._own_layers()
        if own_layers and topk is not None:
            # k before the predictor exists: its copy of the network, and the k it logs, are the k asked for
            self._k_at_start = get_topk(self.yolo)
            set_topk(self.yolo, int(topk))
        self._predict(np.zeros((max(int(imgsz), 32), max(int(imgsz), 32), 3), np.uint8))  # sets the predictor up
        self.pytorch = self.net is not None
        if self.layers and self._k_at_start is None:
            self._k_at_start = self.k
        if topk is not None:
            if self.layers:
                self.set_k(int(topk))
            elif not self.pytorch and self.export_k is not None:
                self._note(f"topk={topk} ignored: {self.model_name} is an export with k fixed at {self.k_label()}")
            else:
                self._note(f"topk={topk} ignored: {self.model_name} has no PST layers")
        if not self.pytorch:
            fixed = predictor_imgsz(self.yolo)
            if asked is not None and fixed != asked and fixed != [asked, asked]:
                self._note(f"{self.model_name} has a fixed input size {fixed}; imgsz={asked} ignored")
        elif self.imgsz_source != "given":
            self._note(f"imgsz {imgsz} ({self.imgsz_source})")

    def _own_layers(self) -> list:
        """The PST layers of the YOLO object's own PyTorch network ([] for an export or a stock model)."""
        try:
            return pst_layers(self.yolo)
        except Exception:  # an exported model: no PyTorch network to look into
            return []

    def _note(self, msg: str) -> None:
        self.notes.append(msg)
        say(f"pst-yolo demo: {msg}", self.verbose)

    def _attach(self) -> None:
        """Find the predictor's model; hook its PST layers (again, if the predictor was rebuilt)."""
        backend = predictor_backend(self.yolo)
        if backend is self._backend:
            return
        previous_k = self.k if self.layers else None
        self._backend = backend
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None
        self.net = backend_network(backend)
        self.layers = pst_layers(self.net) if self.net is not None else []
        if self.layers:
            self.recorder = SelectionRecorder(self.net, enabled=False)
            if previous_k is not None:
                self.set_k(previous_k)
        if self.net is None:
            self.export_k = _parse_export_k(backend_metadata(backend).get("pst_topk"))

    def _predict(self, image: np.ndarray):
        result = self.yolo.predict(image, **self.args)[0]
        self._attach()
        return result

    # -- k --------------------------------------------------------------------------------------
    @property
    def k_adjustable(self) -> bool:
        return bool(self.layers)

    @property
    def k(self) -> Any:
        """k in force: from the PST layers (PyTorch) or the export metadata; None without PST."""
        if self.layers:
            return get_topk(self.net)
        return self.export_k

    def k_label(self) -> str:
        k = self.k
        if not self.layers:
            if self.pytorch:
                return "no PST layers"
            return f"k={k}" if k is not None else "k=? (not recorded in the export)"
        return f"k={k}"

    def set_k(self, k: int) -> None:
        if self.layers:
            set_topk(self.net, int(k))

    # -- inference ------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray, capture: bool = False) -> Detection:
        if self.recorder is not None:
            self.recorder.enabled = bool(capture)
        t0 = time.perf_counter()
        result = self.yolo.predict(image, **self.args)[0]
        latency = (time.perf_counter() - t0) * 1000.0
        if predictor_backend(self.yolo) is not self._backend:  # predictor rebuilt: hooks were on the old copy
            self._attach()
            if self.recorder is not None:
                self.recorder.enabled = bool(capture)
            t0 = time.perf_counter()
            result = self.yolo.predict(image, **self.args)[0]
            latency = (time.perf_counter() - t0) * 1000.0
        selections = list(self.recorder.selections) if (self.recorder is not None and capture) else []
        boxes = getattr(result, "boxes", None)
        if boxes is not None and len(boxes):
            xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
            cls = boxes.cls.cpu().numpy().astype(np.int64)
            conf = boxes.conf.cpu().numpy().astype(np.float32)
        else:
            xyxy, cls, conf = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return Detection(xyxy, cls, conf, latency, self.k, selections, result)

    @property
    def names(self) -> Any:
        return getattr(self.yolo, "names", None)

    def close(self) -> None:
        """Remove the hooks and put back the k the model had (the run's k changes are not left behind)."""
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None
        if self.layers and self._k_at_start is not None:
            set_topk(self.net, self._k_at_start)
            if self._own_layers():
                set_topk(self.yolo, self._k_at_start)
