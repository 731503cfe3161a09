"""Pictures of what PST's fine branch looks at: ``pst-yolo explain image=... model=...``.

For every image, one PNG with a panel per PST layer: the image under a heat map of that layer's
coarse selection score (mean over queries of ``q·kᵀ/√d``, averaged over heads), the 2×2 fine patches
under the top-k coarse tokens its fine branch attended to (green), and the detections. Everything
comes from the single forward pass that made the detections (forward hooks on the PST blocks; see
``pst_yolo.attention_maps``), not from a second model or a second pass.

Python::

    from pst_yolo.viz.explain import explain
    results = explain("bus.jpg", "best.pt", imgsz=640)
    print(results[0].path, [p.layer for p in results[0].panels])
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from pst_yolo.data.writer import WriterError, write_image
from pst_yolo.viz.attention_maps import PANEL_GAP, hstack_panels, layer_panel
from pst_yolo.viz.common import IMAGE_SUFFIXES, DemoError, check_save_dir, run_folder, say
from pst_yolo.viz.detector import Detector

__all__ = ("ExplainResult", "PanelInfo", "explain", "render_explanation")


@dataclass
class PanelInfo:
    """What one panel shows: one PST layer."""

    layer: str
    blocks: int
    k: int
    heads: int
    fine_hw: tuple
    coarse_hw: tuple
    patches: int  # distinct 2x2 fine patches drawn (union over heads and blocks)


@dataclass
class ExplainResult:
    image: str  # the source image
    path: Path  # the PNG written
    panels: list = field(default_factory=list)  # [PanelInfo], one per PST layer, in model order
    detections: int = 0
    panel_width: int = 0  # pixels; the PNG is len(panels) * panel_width + (len(panels) - 1) * gap wide
    gap: int = PANEL_GAP


def _images(source: Any) -> list[tuple[str, np.ndarray]]:
    """(name, BGR image) for an image path, a folder, an array, or a list of those."""
    if isinstance(source, np.ndarray):
        return [("image.png", source)]
    if isinstance(source, (list, tuple)):
        return [item for s in source for item in _images(s)]
    if source is None or not str(source).strip():
        raise DemoError("image= is required: an image file or a folder of images")
    path = Path(str(source)).expanduser()
    if not path.exists():
        raise DemoError(f"image not found: {source}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DemoError(f"no images in folder {path}")
    else:
        files = [path]
    out = []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            if len(files) == 1:
                raise DemoError(f"cannot read image {p} (corrupt or not an image)")
            print(f"pst-yolo explain: skipped unreadable image {p}", file=sys.stderr)
            continue
        out.append((p.name, img))
    if not out:
        raise DemoError(f"none of the images in {path} could be read")
    return out


def render_explanation(
    image: np.ndarray, detection, names=None, max_side: int = 640, expected_layers: Optional[Sequence[str]] = None
) -> tuple[np.ndarray, list[PanelInfo], int]:
    """The figure for one image from a ``Detector`` result with selections: (BGR image, panels, panel width)."""
    grouped: dict = {}
    for s in detection.selections:
        grouped.setdefault(s.layer, []).append(s)
    if expected_layers is not None and list(grouped) != list(expected_layers):
        raise DemoError(
            f"recorded selections for PST layers {list(grouped)}, expected {list(expected_layers)}: "
            "a PST layer did not run in this forward pass"
        )
    panels, infos = [], []
    for layer, sels in grouped.items():
        panel = layer_panel(image, sels, (detection.boxes, detection.classes, detection.confs), names, max_side)
        panels.append(panel)
        patches = {tuple(c) for s in sels for c in s.fine_patches().tolist()}
        s0 = sels[0]
        infos.append(PanelInfo(layer, len(sels), s0.k, s0.heads, s0.fine_hw, s0.coarse_hw, len(patches)))
    if not panels:
        raise DemoError("no PST selection was recorded: does this model have PST layers?")
    return hstack_panels(panels), infos, panels[0].shape[1]


def explain(
    image: Any,
    model: Any,
    *,
    imgsz: Optional[int] = None,
    conf: float = 0.25,
    iou: float = 0.7,
    topk: Optional[int] = None,
    device: str = "cpu",
    max_det: int = 300,
    project: str | Path = "runs/pst",
    name: str = "explain",
    save_dir: Optional[str | Path] = None,
    out: Optional[str | Path] = None,
    max_side: int = 640,
    seed: Optional[int] = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> list[ExplainResult]:
    """Write one PNG per image (a panel per PST layer) and return what each shows.

    Args:
        image: image file, folder of images, BGR array, or a list of those.
        model: ``.pt`` or ``.yaml`` path, or a YOLO object (PyTorch: the selection is recorded with hooks).
        topk: k for every PST layer (None: the model's own).
        out: exact PNG path (single image only); default ``<run folder>/<image stem>_explain.png``. It may
            not be an input, and an existing file is replaced only with ``overwrite=True``.
        save_dir: exact output folder: new, empty or an earlier pst-yolo run folder (not an input).
        max_side: longest side of each panel in pixels.
        seed: seed torch's generator before the model is built, so a random-weights ``.yaml`` model
            (and its picture) is the same every run; no effect on trained weights.

    Raises:
        DemoError: missing/unreadable image, an exported model, or a model without PST layers.
    """
    images = _images(image)
    if out is not None and len(images) != 1:
        raise DemoError(f"out= names one file, but {len(images)} images were given; use save_dir= instead")
    listed = image if isinstance(image, (list, tuple)) else [image]
    inputs = [i for i in listed if isinstance(i, (str, Path))]  # (the outputs must not replace these)
    check_save_dir(save_dir, inputs, project, name)
    if out is not None:
        from pst_yolo.data.writer import check_output_file

        try:
            check_output_file(out, inputs, overwrite=overwrite)
        except WriterError as e:
            raise DemoError(str(e)) from None
    if isinstance(model, (str, Path)) and Path(str(model)).suffix.lower() not in (".pt", ".pth", ".yaml", ".yml"):
        if Path(str(model)).suffix:  # e.g. .onnx: no hooks in an exported graph
            raise DemoError(
                f"explain needs a PyTorch model (.pt or .yaml): the selection is recorded with hooks in the "
                f"PyTorch forward pass, and {model} is an exported graph"
            )
    if seed is not None:
        import torch

        torch.manual_seed(int(seed))
    detector = Detector(
        model, imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det, topk=topk, verbose=verbose
    )
    try:
        if not detector.pytorch:
            raise DemoError(f"explain needs a PyTorch model (.pt or .yaml); {detector.model_name} is an export")
        if not detector.layers:
            raise DemoError(f"{detector.model_name} has no PST layers: nothing to explain")
        expected = [str(getattr(m, "i", "")) or n for n, m in detector.layers]
        results = []
        folder = None
        for img_name, img in images:
            det = detector(img, capture=True)
            figure, infos, panel_w = render_explanation(img, det, detector.names, max_side, expected)
            if out is not None:
                path = Path(out)
                path.parent.mkdir(parents=True, exist_ok=True)
            else:
                folder = folder or run_folder(project, name, save_dir, "explain", inputs)
                path = folder / f"{Path(img_name).stem}_explain.png"
            try:
                write_image(path, figure, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            except (OSError, WriterError) as e:
                raise DemoError(f"could not write {path}: {e}") from e
            res = ExplainResult(img_name, path, infos, len(det.boxes), panel_w)
            results.append(res)
            layers = "; ".join(f"layer {p.layer} k={p.k}, {p.patches} patches" for p in infos)
            say(
                f"pst-yolo explain: {img_name} -> {path} ({len(infos)} panels: {layers}; "
                f"{res.detections} detections at conf {conf})",
                verbose,
            )
        return results
    finally:
        detector.close()
