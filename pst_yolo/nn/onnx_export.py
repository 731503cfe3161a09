"""How PST's coarse attention is written into an ONNX graph.

"standard" (default) exports PyTorch's attention as MatMul/Softmax/MatMul, which every ONNX consumer
reads (TensorRT, OpenVINO, onnx2tf, ...). Its queries are split into chunks (:func:`chunked_attention`; fixed-size exports only), so
a runtime holds one chunk's score matrix at a time instead of the whole N x M one (at P3 of a 640 px
yolo11m-pst, 4 heads x 6400 x 1600 floats = 164 MB). "ort" writes ONNX Runtime's fused
``com.microsoft::MultiHeadAttention`` instead: a blocked CPU kernel, about twice as fast at P3, which only
ONNX Runtime runs. Chosen per layer (``PSAttn.onnx_attention``) or process-wide (``PST_ONNX_ATTENTION``).
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn.functional as F

from pst_yolo.nn.checks import env_error

__all__ = (
    "ENV_ONNX_ATTENTION",
    "ONNX_ATTENTION_MODES",
    "SCORE_CHUNK_BYTES",
    "OrtMultiHeadAttention",
    "chunked_attention",
    "onnx_attention_mode",
    "query_chunks",
)

ENV_ONNX_ATTENTION = "PST_ONNX_ATTENTION"
ONNX_ATTENTION_MODES = ("standard", "ort")
# Largest fp32 score matrix one chunk of queries may write (per image). docs/benchmarks.md has the sweep that chose it.
SCORE_CHUNK_BYTES = 4 * 2**20


def onnx_attention_mode(layer_setting: Optional[str] = None) -> str:
    """The ONNX attention export mode in force: the layer's setting, else ``PST_ONNX_ATTENTION``, else standard."""
    if layer_setting:
        mode = layer_setting.strip().lower()
        if mode not in ONNX_ATTENTION_MODES:
            raise ValueError(
                f"PSAttn.onnx_attention must be one of {', '.join(ONNX_ATTENTION_MODES)} (or None), got {layer_setting!r}"
            )
        return mode
    raw = os.environ.get(ENV_ONNX_ATTENTION, "")
    mode = raw.strip().lower() or "standard"
    if mode not in ONNX_ATTENTION_MODES:
        raise env_error(ENV_ONNX_ATTENTION, raw, "one of " + ", ".join(ONNX_ATTENTION_MODES))
    return mode


class OrtMultiHeadAttention(torch.autograd.Function):
    """Attention on [B, tokens, heads*d] tensors; exported as ``com.microsoft::MultiHeadAttention``.

    In PyTorch it is SDPA (used only while exporting, so no backward is needed); ONNX Runtime's kernel
    computes the same ``softmax(q kᵀ/√d) v`` (default scale 1/√d).
    """

    @staticmethod
    def forward(ctx, q3: torch.Tensor, k3: torch.Tensor, v3: torch.Tensor, num_heads: int) -> torch.Tensor:
        B, N, C = q3.shape
        d = C // num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(B, -1, num_heads, d).transpose(1, 2).contiguous()

        out = F.scaled_dot_product_attention(heads(q3), heads(k3), heads(v3))
        return out.transpose(1, 2).reshape(B, N, C)

    @staticmethod
    def symbolic(g, q3, k3, v3, num_heads):  # pragma: no cover - runs inside torch.onnx.export only
        return g.op("com.microsoft::MultiHeadAttention", q3, k3, v3, num_heads_i=num_heads).setType(q3.type())


def query_chunks(heads: int, queries: int, keys: int, budget: Optional[int] = None) -> int:
    """How many chunks the queries are split into so one chunk's fp32 score matrix fits ``budget`` bytes
    (default :data:`SCORE_CHUNK_BYTES`)."""
    budget = SCORE_CHUNK_BYTES if budget is None else budget
    return max(1, min(queries, -(-heads * queries * keys * 4 // budget)))


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunks: int) -> torch.Tensor:
    """softmax(q kᵀ/√d) v with the queries in ``chunks`` slices. q: [B,h,N,d]; k, v: [B,h,M,d] -> [B,h,N,d].

    Same numbers as one attention up to rounding (the scale is applied to the keys, once). The slices have
    fixed sizes in a traced graph (an ONNX Split of constant sizes), so a dynamic-shape export must not chunk:
    ``PSAttn.onnx_chunk_queries = False`` (pst-yolo's export hook sets it for ``dynamic=True``)."""
    if chunks <= 1:
        return F.scaled_dot_product_attention(q, k, v)
    kt = (k * k.shape[-1] ** -0.5).transpose(-2, -1)  # [B, h, d, M]
    n = q.shape[2]
    size = -(-n // chunks)
    sizes = [min(size, n - start) for start in range(0, n, size)]  # explicit: split(int) exports a wrong last size
    return torch.cat([(qc @ kt).softmax(dim=-1) @ v for qc in q.split(sizes, dim=2)], dim=2)
