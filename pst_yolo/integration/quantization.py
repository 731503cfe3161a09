"""Ultralytics seam: an INT8 ONNX export keeps PST's attention products in float.

Ultralytics' ONNX INT8 export (``yolo export format=onnx quantize=8 data=...``) runs ONNX Runtime's static
quantization on every Conv, Gemm and MatMul of the graph, other ops staying float. In a stock YOLO11 the
MatMuls are few; in PST they are the attention itself: queries x keys (the scores the fine branch's top-k
selects from) and weights x values, in the coarse and the fine branch. Quantizing both inputs of those
products to 8 bits with one calibrated scale per tensor rounds the scores the selection and the softmax
depend on, and cost yolo11n-pst 0.011 AP more than it cost stock (docs/export.md). Here those MatMuls are
added to the nodes ONNX Runtime leaves in float; every convolution, PST's included, is still quantized.
The export's metadata says so (``pst_int8_float``).

Internals relied on (ultralytics 8.4.x; the ONNX INT8 path does not exist before), and why:

- ``ultralytics.utils.export.onnx.onnx_int8_quantize(onnx_file, output_file, ...)`` -- wrapped; it imports
  ``onnxruntime.quantization.quantize_static`` when called, so the wrapper can hand it the extra nodes to
  exclude while keeping Ultralytics' own rule for the rest. If it stops importing it there, the extra
  exclusion is lost: tests/integration/test_quantization.py checks the exported graph's attention MatMuls
  are float.
- ONNX node names ``/model.<i>/attnlayer_<j>/attn/...MatMul...`` (torch.onnx's module-path names).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

__all__ = ("FLOAT_KEY", "attention_matmuls", "onnx_int8_quantize_keeping_attention")

FLOAT_KEY = "pst_int8_float"  # export metadata: what of PST an INT8 export kept in float
_ATTENTION_MATMUL = re.compile(r"^/model\.(\d+)/attnlayer_\d+/attn/(.*/)?MatMul(_\d+)?$")


def attention_matmuls(onnx_file: str | Path) -> dict[str, list[str]]:
    """PST layer index -> names of the MatMul nodes of its attention in an exported ONNX graph."""
    import onnx

    found: dict[str, list[str]] = {}
    for node in onnx.load(str(onnx_file), load_external_data=False).graph.node:
        match = _ATTENTION_MATMUL.match(node.name)
        if node.op_type == "MatMul" and match:
            found.setdefault(match.group(1), []).append(node.name)
    return found


@contextlib.contextmanager
def _quantize_static_excluding(nodes: Sequence[str]) -> Iterator[None]:
    """``onnxruntime.quantization.quantize_static`` adds ``nodes`` to its ``nodes_to_exclude`` in the block."""
    import onnxruntime.quantization as ort_quantization

    original = ort_quantization.quantize_static

    def excluding(*args: Any, **kwargs: Any) -> Any:
        kwargs["nodes_to_exclude"] = list(dict.fromkeys([*(kwargs.get("nodes_to_exclude") or ()), *nodes]))
        return original(*args, **kwargs)

    ort_quantization.quantize_static = excluding
    try:
        yield
    finally:
        ort_quantization.quantize_static = original


def _record(onnx_file: str | Path, text: str) -> None:
    import onnx

    from pst_yolo.data.writer import write_bytes

    model = onnx.load(str(onnx_file))
    kept = [p for p in model.metadata_props if p.key != FLOAT_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=FLOAT_KEY, value=text)
    write_bytes(onnx_file, model.SerializeToString())  # (the export just written: replaced whole or not at all)


def onnx_int8_quantize_keeping_attention(original: Callable, onnx_file: Any, output_file: Any, *args: Any, **kwargs: Any):
    """Ultralytics' INT8 quantization with PST's attention MatMuls left in float (a stock graph: unchanged)."""
    layers = attention_matmuls(onnx_file)
    if not layers:
        return original(onnx_file, output_file, *args, **kwargs)
    nodes = [name for names in layers.values() for name in names]
    with _quantize_static_excluding(nodes):
        result = original(onnx_file, output_file, *args, **kwargs)
    _record(result, f"attention MatMuls of PST layers {', '.join(layers)} ({len(nodes)} nodes)")
    return result
