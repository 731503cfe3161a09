"""What PST's fine branch looks at: record it with forward hooks, draw it with OpenCV.

``SelectionRecorder`` puts a forward hook on the ``attn`` module (a ``PSAttn``) of every block of
every PST layer. The hook sees the block's inputs ``(x, upper)`` of the very forward pass that makes
the detections and recomputes, from the module's own ``q``/``kv`` projections, the fine branch's
selection: the score of each coarse token (mean over all queries of ``q·kᵀ/√d``, per image and
head) and its top-k. Nothing private of ``PSAttn`` is called, so its internals may change freely;
the tests check that the recomputed top-k is the one the layer uses.

Coarse token ``m = (r, c)`` (``r = m // Wu``) covers the 2×2 fine patch rows ``2r..2r+1``, columns
``2c..2c+1`` of the fine map; the drawing functions map those patches, and the score heat map, from
the network input (letterboxed) back onto the original image. Everything is drawn with ``cv2``
(Hershey fonts built into OpenCV): no font files, no downloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from torch import nn

from pst_yolo.nn.topk import pst_layers

__all__ = (
    "PANEL_GAP",
    "LayerSelection",
    "SelectionRecorder",
    "draw_detections",
    "draw_label",
    "draw_selection",
    "heat_image",
    "hstack_panels",
    "layer_panel",
    "letterbox_geometry",
    "patch_boxes",
    "text_style",
)

PANEL_GAP = 8  # pixels between panels of an explain figure


# ------------------------------------------------------------------------------------------------
# Recording
# ------------------------------------------------------------------------------------------------
@dataclass
class LayerSelection:
    """The fine-branch selection of one PST block in one forward pass (image 0 of the batch unless noted).

    Attributes:
        layer: name of the PST layer, e.g. ``"16"`` (Ultralytics layer index) or the module path.
        block: index of the PSAttn block inside the layer (``attnlayer_{block}``).
        k: top-k the block used (0: fine branch off; clamped to the number of coarse tokens).
        fine_hw, coarse_hw: sizes of the fine map ``x`` and the coarse map ``upper``.
        input_hw: size of the network input (letterboxed image), or None when unknown.
        score: [B, heads, Hu, Wu] selection score of every coarse token (None if only shapes were recorded).
        indices: [B, heads, k] flat indices (``r * Wu + c``) of the chosen coarse tokens.
    """

    layer: str
    block: int
    k: int
    fine_hw: tuple[int, int]
    coarse_hw: tuple[int, int]
    heads: int
    input_hw: Optional[tuple[int, int]] = None
    score: Optional[np.ndarray] = None
    indices: Optional[np.ndarray] = None

    @property
    def stride(self) -> Optional[float]:
        """Input pixels per fine-map cell (8 for P3, 16 for P4 ...), or None without ``input_hw``."""
        if self.input_hw is None:
            return None
        return self.input_hw[0] / self.fine_hw[0]

    def tokens(self, image: int = 0) -> np.ndarray:
        """Distinct chosen coarse tokens of one image, union over heads, sorted: [T] flat indices."""
        if self.indices is None or self.indices.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.unique(self.indices[image].reshape(-1))

    def fine_patches(self, image: int = 0) -> np.ndarray:
        """[T, 4] fine-map cells (row0, col0, row1, col1), end exclusive, of the 2×2 patch under each
        chosen token, cut at the fine map's border."""
        Wu = self.coarse_hw[1]
        H, W = self.fine_hw
        t = self.tokens(image)
        r, c = t // Wu, t % Wu
        return np.stack([2 * r, 2 * c, np.minimum(2 * r + 2, H), np.minimum(2 * c + 2, W)], axis=1).astype(np.int64)


def _effective_k(module: Any, num_coarse: int) -> int:
    """The k the PSAttn module runs with: its ``topk`` in eval mode (or in training with
    ``fine_in_training``), clamped to the number of coarse tokens."""
    k = int(getattr(module, "topk", 0) or 0)
    if module.training and not getattr(module, "fine_in_training", False):
        k = 0
    return max(0, min(k, num_coarse))


def selection_scores(module: Any, x: Any, upper: Any):
    """Recompute the fine branch's coarse-token score from a PSAttn's projections.

    Returns a torch tensor [B, heads, M]: mean over the N queries of ``q·kᵀ/√d`` for each coarse
    token, i.e. ``(mean q)·kᵀ/√d``. The kv projection groups channels per head as ``[k_h, v_h]``
    (the layout of the authors' checkpoints).
    """
    import torch

    with torch.no_grad():
        B, C = x.shape[:2]
        heads = int(getattr(module, "num_heads", max(C // 32, 1)))
        d = C // heads
        q_mean = module.q(x).reshape(B, heads, d, -1).float().mean(dim=-1)  # [B, h, d]
        k_up = module.kv(upper).reshape(B, heads, 2 * d, -1)[:, :, :d].float()  # [B, h, d, M]
        return torch.einsum("bhd,bhdm->bhm", q_mean, k_up) * (d**-0.5)


class SelectionRecorder:
    """Forward hooks that record every PST block's fine-branch selection.

    ``selections`` holds the records of the latest forward pass, in execution order. While
    ``enabled`` is False only shapes and k are recorded (no extra computation).

    Example::

        with SelectionRecorder(yolo_or_module) as rec:
            model.predict(img)
            for s in rec.selections: print(s.layer, s.k, s.tokens())
    """

    def __init__(self, model: Any, enabled: bool = True) -> None:
        self.enabled = enabled
        self.selections: list[LayerSelection] = []
        self._input_hw: Optional[tuple[int, int]] = None
        self._handles: list[Any] = []
        self.layers = pst_layers(model)
        root = model if isinstance(model, nn.Module) else getattr(model, "model", None)  # YOLO object -> module
        if not isinstance(root, nn.Module):
            raise TypeError(f"expected a torch nn.Module or an Ultralytics YOLO object, got {type(model).__name__}")
        rec = self  # closures, not bound methods: a deep-copied module must not copy the recorder

        def pre_hook(module, args):  # a new forward pass of the whole model: start afresh
            x = args[0] if args else None
            rec.selections = []
            rec._input_hw = (int(x.shape[-2]), int(x.shape[-1])) if hasattr(x, "shape") and len(x.shape) == 4 else None

        self._handles.append(root.register_forward_pre_hook(pre_hook))
        for name, layer in self.layers:
            label = str(getattr(layer, "i", "")) or name
            for b in range(int(getattr(layer, "n", 0))):
                block = getattr(layer, f"attnlayer_{b}", None)
                attn = getattr(block, "attn", None)
                if attn is None:
                    continue
                self._handles.append(attn.register_forward_hook(_make_hook(rec, label, b)))

    def clear(self) -> None:
        self.selections = []
        self._input_hw = None

    @property
    def input_hw(self) -> Optional[tuple[int, int]]:
        return self._input_hw

    def by_layer(self) -> dict[str, list[LayerSelection]]:
        """Latest selections grouped by PST layer (blocks in order), in model order."""
        out: dict[str, list[LayerSelection]] = {}
        for s in self.selections:
            out.setdefault(s.layer, []).append(s)
        return out

    def min_coarse_tokens(self) -> Optional[int]:
        """Smallest coarse map (tokens) seen in the latest pass: the largest k every layer can use."""
        if not self.selections:
            return None
        return min(s.coarse_hw[0] * s.coarse_hw[1] for s in self.selections)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> SelectionRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _make_hook(rec: SelectionRecorder, label: str, block: int):
    def hook(module, args, output):
        if len(args) < 2:
            return
        x, upper = args[0], args[1]
        H, W = (int(v) for v in x.shape[-2:])
        Hu, Wu = (int(v) for v in upper.shape[-2:])
        k = _effective_k(module, Hu * Wu)
        heads = int(getattr(module, "num_heads", max(int(x.shape[1]) // 32, 1)))
        sel = LayerSelection(label, block, k, (H, W), (Hu, Wu), heads, input_hw=rec._input_hw)
        if rec.enabled:
            score = selection_scores(module, x, upper)  # [B, h, M]
            sel.score = score.reshape(score.shape[0], score.shape[1], Hu, Wu).cpu().numpy()
            if k > 0:
                sel.indices = score.topk(k, dim=-1).indices.cpu().numpy()
            else:
                sel.indices = np.zeros((score.shape[0], score.shape[1], 0), dtype=np.int64)
        rec.selections.append(sel)

    return hook


# ------------------------------------------------------------------------------------------------
# Geometry: network input (letterboxed) <-> original image
# ------------------------------------------------------------------------------------------------
def letterbox_geometry(input_hw: Sequence[int], orig_hw: Sequence[int]) -> tuple[float, float, int, int, int, int]:
    """(gain_y, gain_x, pad_x, pad_y, new_h, new_w) of Ultralytics' centred letterbox from an original
    image of ``orig_hw`` into a network input of ``input_hw`` (the rule ``ops.scale_boxes`` inverts)."""
    gain = min(input_hw[0] / orig_hw[0], input_hw[1] / orig_hw[1])
    new_h, new_w = (max(round(v * gain), 1) for v in orig_hw[:2])
    pad_x = round((input_hw[1] - new_w) / 2 - 0.1)
    pad_y = round((input_hw[0] - new_h) / 2 - 0.1)
    return new_h / orig_hw[0], new_w / orig_hw[1], pad_x, pad_y, new_h, new_w


def patch_boxes(sel: LayerSelection, orig_hw: Sequence[int], image: int = 0) -> np.ndarray:
    """[T, 4] float xyxy boxes, in original-image pixels, of the fine patches the block attended to."""
    cells = sel.fine_patches(image)
    if cells.size == 0 or sel.input_hw is None:
        return np.zeros((0, 4), dtype=np.float32)
    s_y = sel.input_hw[0] / sel.fine_hw[0]
    s_x = sel.input_hw[1] / sel.fine_hw[1]
    gy, gx, px, py, _, _ = letterbox_geometry(sel.input_hw, orig_hw)
    boxes = np.stack([cells[:, 1] * s_x, cells[:, 0] * s_y, cells[:, 3] * s_x, cells[:, 2] * s_y], axis=1).astype(
        np.float32
    )
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - px) / gx
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - py) / gy
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, orig_hw[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, orig_hw[0])
    return boxes


def heat_image(sels: Sequence[LayerSelection], orig_hw: Sequence[int], image: int = 0) -> Optional[np.ndarray]:
    """[h, w] float32 in [0, 1]: the coarse selection score (mean over heads, then over the blocks
    given), min-max normalised, painted over the original image pixel by pixel -- each coarse token
    covers the input pixels of its 2×2 fine patch. None when no score was recorded."""
    maps = []
    for sel in sels:
        if sel.score is None or sel.input_hw is None:
            continue
        m = sel.score[image].mean(axis=0).astype(np.float32)  # [Hu, Wu]
        lo, hi = float(m.min()), float(m.max())
        maps.append((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
    if not maps:
        return None
    sel = sels[0]
    heat = np.mean(maps, axis=0)
    in_h, in_w = sel.input_hw
    cell_y = 2 * in_h / sel.fine_hw[0]  # input pixels per coarse token
    cell_x = 2 * in_w / sel.fine_hw[1]
    ys = np.minimum((np.arange(in_h) // cell_y).astype(int), heat.shape[0] - 1)
    xs = np.minimum((np.arange(in_w) // cell_x).astype(int), heat.shape[1] - 1)
    full = heat[ys][:, xs]  # [in_h, in_w]
    _, _, px, py, new_h, new_w = letterbox_geometry(sel.input_hw, orig_hw)
    crop = full[max(py, 0) : py + new_h, max(px, 0) : px + new_w]
    return cv2.resize(crop, (int(orig_hw[1]), int(orig_hw[0])), interpolation=cv2.INTER_NEAREST)


# ------------------------------------------------------------------------------------------------
# Drawing (cv2 only)
# ------------------------------------------------------------------------------------------------
_PALETTE = (
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (52, 147, 26),
    (187, 212, 0),
    (168, 153, 44),
    (255, 194, 0),
    (147, 69, 52),
    (255, 115, 100),
    (236, 24, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 56, 203),
)  # BGR
LAYER_COLORS = ((0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 165, 255))  # BGR: green, cyan, magenta, orange


def class_color(c: int) -> tuple[int, int, int]:
    return _PALETTE[int(c) % len(_PALETTE)]


def _class_name(names, c: int) -> str:
    if isinstance(names, dict):
        return str(names.get(c, c))
    if names is not None and 0 <= c < len(names):
        return str(names[c])
    return str(c)


def draw_label(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    color=(255, 255, 255),
    bg=(0, 0, 0),
    scale: float = 0.5,
    thickness: int = 1,
) -> int:
    """Text on a filled box with its top-left corner at ``org``; returns the box height."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    x, y = int(org[0]), int(org[1])
    h = th + base + 4
    cv2.rectangle(img, (x, y), (x + tw + 4, y + h), bg, -1)
    cv2.putText(img, text, (x + 2, y + th + 2), font, scale, color, thickness, cv2.LINE_AA)
    return h


MIN_TEXT_PX = 10  # smallest cap height drawn: Hershey text stays legible at this size
TEXT_FRACTION = 0.024  # cap height as a fraction of the frame's shorter side (26 px at 1080p)


def text_style(shape: Sequence[int]) -> tuple[float, int]:
    """(font scale, thickness) for on-frame text (HUD, box labels) on a frame of ``shape`` (h, w, ...).

    The cap height grows with the shorter side (``TEXT_FRACTION`` of it) and never drops below
    ``MIN_TEXT_PX``, so text stays legible on a 160x120 frame and is not lost on a 1080p one.
    """
    h, w = int(shape[0]), int(shape[1])
    cap_px = max(float(MIN_TEXT_PX), TEXT_FRACTION * min(h, w))
    ref = cv2.getTextSize("H", cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][1]  # cap height at scale 1
    return cap_px / ref, max(1, round(cap_px / 13))


def draw_detections(
    img: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    confs: np.ndarray,
    names: dict | Sequence[str] | None = None,
    thickness: Optional[int] = None,
) -> np.ndarray:
    """Draw xyxy boxes with ``name conf`` labels (sized by ``text_style``) in place; returns ``img``."""
    h, w = img.shape[:2]
    t = thickness or max(1, round((h + w) / 600))
    scale, text_t = text_style(img.shape)
    for (x0, y0, x1, y1), c, p in zip(
        np.asarray(boxes).reshape(-1, 4), np.asarray(classes).reshape(-1), np.asarray(confs).reshape(-1)
    ):
        color = class_color(int(c))
        p0 = (int(round(x0)), int(round(y0)))
        p1 = (max(int(round(x1)) - 1, p0[0]), max(int(round(y1)) - 1, p0[1]))
        cv2.rectangle(img, p0, p1, color, t, cv2.LINE_AA)
        label = f"{_class_name(names, int(c))} {float(p):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, text_t)
        ly = p0[1] - th - base - 4 if p0[1] - th - base - 4 >= 0 else p0[1]  # above the box, else inside
        lx = min(p0[0], max(w - tw - 4, 0))  # kept inside the frame on the right
        draw_label(img, label, (lx, ly), color=(255, 255, 255), bg=color, scale=scale, thickness=text_t)
    return img


def blend_heat(img: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heat map (same h, w) over ``img`` with the TURBO colour map; returns a new image."""
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    return cv2.addWeighted(img, 1.0 - alpha, colored, alpha, 0.0)


def draw_selection(
    img: np.ndarray, sels: Sequence[LayerSelection], color=(0, 255, 0), image: int = 0, thickness: Optional[int] = None
) -> int:
    """Outline, in place, the fine patches chosen by the given blocks; returns how many were drawn."""
    h, w = img.shape[:2]
    t = thickness or max(1, round((h + w) / 800))
    boxes = np.concatenate([patch_boxes(s, (h, w), image) for s in sels] or [np.zeros((0, 4), np.float32)])
    boxes = np.unique(boxes, axis=0) if len(boxes) else boxes
    for x0, y0, x1, y1 in boxes:
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1)
        cv2.rectangle(img, p0, p1, (0, 0, 0), t + 2)  # dark rim keeps the outline visible on any colour
        cv2.rectangle(img, p0, p1, color, t)
    return len(boxes)


MIN_TEXT_SCALE = 0.35  # smallest OpenCV font scale that stays legible; narrower panels wrap their lines


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]


def _fit_text(img_w: int, text: str, max_scale: float = 0.6) -> float:
    scale = max_scale
    while scale > MIN_TEXT_SCALE and _text_width(text, scale) > img_w - 8:
        scale -= 0.05
    return max(scale, MIN_TEXT_SCALE)


def wrap_text(text: str, img_w: int, scale: float) -> list[str]:
    """``text`` broken at spaces (or, for a word wider than the panel, inside it) into lines that each fit
    ``img_w - 8`` pixels at ``scale``: a narrow panel gets more header lines instead of cut ones."""
    room = img_w - 8
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _text_width(candidate, scale) <= room:
            lines[-1] = candidate
            continue
        while _text_width(word, scale) > room and len(word) > 1:  # a word wider than the panel: split it
            cut = max(n for n in range(1, len(word)) if _text_width(word[:n], scale) <= room or n == 1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def layer_panel(
    image: np.ndarray,
    sels: Sequence[LayerSelection],
    detections: Optional[tuple] = None,
    names=None,
    max_side: int = 640,
    alpha: float = 0.45,
) -> np.ndarray:
    """One explain panel: the image with the selection-score heat map of one PST layer, the 2×2 fine
    patches its fine branch attended to, the detections, and a title strip."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
    base = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image.copy()
    ph, pw = base.shape[:2]
    heat = heat_image(sels, (ph, pw))
    panel = blend_heat(base, heat, alpha) if heat is not None else base
    n_patches = draw_selection(panel, sels, color=(0, 255, 0))
    if detections is not None:
        boxes, classes, confs = detections
        draw_detections(panel, np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale, classes, confs, names)

    s0 = sels[0]
    stride = s0.stride
    blocks = f", {len(sels)} blocks" if len(sels) > 1 else ""
    line1 = (
        f"PST layer {s0.layer}: fine {s0.fine_hw[0]}x{s0.fine_hw[1]}"
        + (f" (stride {stride:g})" if stride else "")
        + f" <- coarse {s0.coarse_hw[0]}x{s0.coarse_hw[1]}{blocks}"
    )
    if s0.k > 0:
        line2 = f"k={s0.k} per head x {s0.heads} head{'s' * (s0.heads > 1)}: {n_patches} distinct 2x2 patches (green)"
    else:
        line2 = "k=0: fine branch off (coarse only), heat map only"
    line3 = "heat: coarse selection score, mean over heads (blue low, red high)"
    fs = min(_fit_text(pw, t) for t in (line1, line2, line3))
    lines = [part for t in (line1, line2, line3) for part in wrap_text(t, pw, fs)]
    th = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, fs, 1)[0][1]
    strip_h = len(lines) * (th + 10) + 6
    out = np.full((ph + strip_h, pw, 3), 24, dtype=np.uint8)
    out[strip_h:] = panel
    y = 4
    for t in lines:
        cv2.putText(out, t, (4, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
        y += th + 10
    return out


def hstack_panels(panels: Sequence[np.ndarray], gap: int = PANEL_GAP, fill: int = 255) -> np.ndarray:
    """Panels side by side (all padded to the tallest), ``gap`` pixels apart."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, p in enumerate(panels):
        if p.shape[0] < height:
            p = np.concatenate([p, np.full((height - p.shape[0], p.shape[1], 3), fill, np.uint8)])
        if i:
            parts.append(np.full((height, gap, 3), fill, np.uint8))
        parts.append(p)
    return np.concatenate(parts, axis=1)


@dataclass
class OverlayInfo:
    """What ``draw_overlay`` drew, for the on-screen legend."""

    heat_layer: Optional[str] = None  # None: no heat map drawn (opacity 0)
    patches: dict = field(default_factory=dict)  # layer -> number of patches
    colors: dict = field(default_factory=dict)  # layer -> BGR colour of its patches


OVERLAY_ALPHA = 0.3  # default opacity of the live heat map: the picture stays visible under it


def draw_overlay(
    img: np.ndarray,
    selections: Sequence[LayerSelection],
    heat_layer: Optional[str] = None,
    alpha: float = OVERLAY_ALPHA,
    layers: Optional[Sequence[str]] = None,
) -> tuple[np.ndarray, OverlayInfo]:
    """Live overlay: the heat map of one PST layer (default: the finest, i.e. the last) blended over
    ``img`` with opacity ``alpha`` (0: no heat map), and the fine patches of every PST layer, one colour
    per layer (the colour follows the layer's place in the model). ``layers``: only these PST layers
    (names as in ``LayerSelection.layer``; None: all). Returns (image, info); at k=0 no patch is drawn."""
    info = OverlayInfo()
    if not selections:
        return img, info
    grouped: dict[str, list[LayerSelection]] = {}
    for s in selections:
        grouped.setdefault(s.layer, []).append(s)
    colors = {name: LAYER_COLORS[i % len(LAYER_COLORS)] for i, name in enumerate(grouped)}
    if layers is not None:
        wanted = {str(name) for name in layers}
        grouped = {name: sels for name, sels in grouped.items() if name in wanted}
        if not grouped:
            return img, info
    layer_names = list(grouped)
    heat_layer = heat_layer if heat_layer in grouped else layer_names[-1]
    alpha = float(np.clip(alpha, 0.0, 1.0))
    heat = heat_image(grouped[heat_layer], img.shape[:2]) if alpha > 0 else None
    out = blend_heat(img, heat, alpha) if heat is not None else img.copy()
    info.heat_layer = heat_layer if heat is not None else None
    info.colors = {name: colors[name] for name in layer_names}
    for name in layer_names:
        info.patches[name] = draw_selection(out, grouped[name], color=colors[name])
    return out, info
