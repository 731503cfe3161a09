"""Ultralytics seam: how each export format gets PST's fine branch (native / portable / refused).

At ``on_export_start`` (``callbacks.on_export_start`` calls :func:`prepare_export`) every format is looked
up in :data:`FORMAT_SUPPORT`: ``native`` exports the default graph, ``portable`` swaps the top-k/gather-free
formulation (``pst_yolo.nn.portable``) in on the exporter's own copy of the model, ``refuse`` stops a k > 0
export with a message naming the way out (export at k = 0). Formats missing from the table are refused at
k > 0. ``PST_EXPORT_FINE=native|portable`` overrides the table (then check the output yourself). LiteRT
also gets keys/values sliced before the transpose (``SlicedKV``), at every k. The table lists what
tests/eval/test_export_matrix.py and scripts/export_matrix.py verified (docs/export.md).

Internals relied on (ultralytics 8.3.138 - 8.4.x), and why:

- ``Exporter.args.format`` and ``Exporter.args.dynamic`` -- which converter will run, and whether the graph
  must hold for other input sizes (the portable graph is traced for one size). A renamed ``format`` makes
  every format read as unknown, so a k > 0 export is refused with the message; a renamed ``dynamic``
  would let a dynamic portable export through (tests/integration/test_export_formats.py runs Ultralytics'
  own exporter into both refusals).
- ``Exporter.model`` -- the exporter's deep copy of the network, made before ``on_export_start``; the
  attention classes are swapped there, so the user's model keeps the default formulation. If the copy
  were made after the callback, the swap would not reach the export (tests/integration/test_export_formats.py
  checks the exported ONNX has no TopK when forced portable).
- ``Exporter.metadata`` (a dict, built before ``on_export_start`` from 8.3.138) -- ``pst_fine_branch``
  (``off`` / ``native`` / ``portable``) is written next to ``pst_topk``; cosmetic if it goes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pst_yolo.integration.runtime import log
from pst_yolo.nn.portable import export_attention_class, swap_attention

__all__ = (
    "ENV_EXPORT_FINE",
    "FORMAT_SUPPORT",
    "FormatSupport",
    "PSTExportError",
    "fine_branch_mode",
    "prepare_export",
)

ENV_EXPORT_FINE = "PST_EXPORT_FINE"
NATIVE, PORTABLE, REFUSE = "native", "portable", "refuse"


class PSTExportError(ValueError):
    """This export would not compute what the PyTorch model computes; the message says what to do."""


@dataclass(frozen=True)
class FormatSupport:
    """How an Ultralytics export format handles PST.

    fine: how k > 0 is exported: ``native`` (default graph), ``portable`` (the top-k/gather-free
    formulation) or ``refuse`` (the export stops with a message). note: why, in a few words.
    sliced_kv: slice keys/values before moving channels last, at every k (``nn.portable.SlicedKV``).
    runs_here: whether the exported model runs on CPU Linux (parity and latency measured), else
    export only.
    strided_patches: the portable fine branch takes its 2x2 patches by strided slices, not pixel_unshuffle.
    """

    fine: str
    note: str
    sliced_kv: bool = False
    runs_here: bool = True
    strided_patches: bool = False


# Verified on CPU Linux by tests/eval/test_export_matrix.py and scripts/export_matrix.py (docs/export.md).
FORMAT_SUPPORT: dict[str, FormatSupport] = {
    "torchscript": FormatSupport(NATIVE, "traced graph keeps topk/gather"),
    "onnx": FormatSupport(NATIVE, "TopK/GatherElements"),
    "openvino": FormatSupport(NATIVE, "OpenVINO converts TopK/Gather"),
    "mnn": FormatSupport(NATIVE, "via ONNX; MNN runs TopK/GatherElements"),
    "executorch": FormatSupport(NATIVE, "torch.export + XNNPACK; topk/gather run in the portable kernels"),
    "ncnn": FormatSupport(PORTABLE, "PNNX drops torch.topk/torch.gather/masked_fill (the model would not run)"),
    "litert": FormatSupport(
        NATIVE, "litert-torch converts topk/gather; keys/values sliced before the transpose", sliced_kv=True
    ),
    "saved_model": FormatSupport(NATIVE, "via ONNX and onnx2tf (TopK/GatherElements to TensorFlow ops)"),
    "pb": FormatSupport(NATIVE, "TensorFlow GraphDef frozen from the SavedModel"),
    "coreml": FormatSupport(
        PORTABLE,
        "coremltools types the gather indices as float and fails (and has no pixel_unshuffle for iOS 15); "
        "running needs macOS",
        runs_here=False,
        strided_patches=True,
    ),
}
# Formats Ultralytics lists that are not verified with PST here (no converter on this machine, a GPU or an
# NPU toolchain needed): a k > 0 export stops unless PST_EXPORT_FINE says otherwise.
UNVERIFIED_NOTE = "not verified for this format"


def fine_branch_mode(fmt: str) -> tuple[str, str]:
    """(mode, reason) for exporting the fine branch to Ultralytics format ``fmt``.

    ``PST_EXPORT_FINE`` (``native`` or ``portable``) wins over :data:`FORMAT_SUPPORT`; formats
    missing from the table are refused.
    """
    override = os.environ.get(ENV_EXPORT_FINE, "").strip().lower()
    if override:
        if override not in (NATIVE, PORTABLE):
            raise PSTExportError(f"{ENV_EXPORT_FINE} must be '{NATIVE}' or '{PORTABLE}', got {override!r}")
        return override, f"{ENV_EXPORT_FINE}={override}"
    support = FORMAT_SUPPORT.get(fmt)
    if support is None:
        return REFUSE, UNVERIFIED_NOTE
    return support.fine, support.note


def prepare_export(exporter: Any, layers: list) -> None:
    """Make the exporter's copy of the model exportable to its format, or stop with a clear error.

    ``layers``: ``(name, PST)`` of that copy (``exporter.model``, a deep copy: the user's model is
    untouched). Records the fine-branch formulation in the export metadata (``pst_fine_branch``:
    ``off``, ``native`` or ``portable``).
    """
    args = getattr(exporter, "args", None)
    fmt = str(getattr(args, "format", "") or "").lower()
    support = FORMAT_SUPPORT.get(fmt)
    fine = [(name.removeprefix("model."), layer.k) for name, layer in layers if layer.k > 0]
    mode, reason = fine_branch_mode(fmt) if fine else ("off", "")
    if mode == REFUSE:
        listed = ", ".join(f"layer {n} k={k}" for n, k in fine)
        raise PSTExportError(
            f"format={fmt}: PST's fine branch ({listed}) is {reason}, so this export could compute something "
            f"other than the PyTorch model. Export coarse-only instead: PST_TOPK=0 yolo export ... format={fmt} "
            f"(or pst_yolo.set_topk(model, 0) before model.export). To try the fine branch anyway, set "
            f"{ENV_EXPORT_FINE}=portable (top-k/gather-free ops) or {ENV_EXPORT_FINE}=native and compare the "
            f"exported model's output with PyTorch's yourself."
        )
    if mode == PORTABLE and getattr(args, "dynamic", False):
        raise PSTExportError(
            f"format={fmt} dynamic=True: the fine branch for this format is written without topk/gather for "
            f"the traced input size only, so other sizes would compute something else. Export with a fixed "
            f"size (dynamic=False, imgsz=...), or coarse-only (PST_TOPK=0)."
        )
    cls = export_attention_class(
        mode == PORTABLE, support is not None and support.sliced_kv, support is not None and support.strided_patches
    )
    attns = swap_attention(exporter.model, cls)
    if getattr(args, "dynamic", False):  # chunked ONNX attention has fixed slice sizes (nn.onnx_export)
        for m in attns:
            m.onnx_chunk_queries = False
    if mode == PORTABLE:
        log(f"PST: format={fmt}: fine branch written without topk/gather ({reason})")
    if isinstance(getattr(exporter, "metadata", None), dict):
        exporter.metadata["pst_fine_branch"] = mode
