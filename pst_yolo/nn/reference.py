"""PST written the plain way: the speed baseline of the fast paths in ``pst_yolo.nn.pst``.

``plain_psattn`` is attention as most code writes it -- explicit ``softmax(q kᵀ/√d) v`` with the
whole N x M score matrix in memory, fine keys/values from the kv projection of the whole fine map.
It gives the same numbers as ``PSAttn`` (the tests check both against a slow loop-by-loop reference),
so ``scripts/bench_pst_layer.py`` can time the fast layer against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ("plain_psattn", "plain_pst")


def plain_psattn(m: nn.Module, x: torch.Tensor, upper: torch.Tensor, topk: int) -> torch.Tensor:
    """PSAttn written the straightforward way, batched over images and heads.

    Explicit ``softmax(q kᵀ/√d) v`` on strided views of the conv outputs (the N x M score matrix goes
    through main memory), the fine keys/values taken from the kv projection of the *whole* fine map,
    the selection score as the mean over queries of that N x M matrix, an additive -inf border mask.
    This is the baseline the fast paths of ``pst_yolo.nn.pst`` are timed against (scripts/bench_pst_layer.py)
    and, being checked in the tests against the naive loop reference itself, a second oracle for them.

    ``topk`` is the k in force (the caller applies the train/eval policy), at most Hu*Wu.
    """
    B, C, H, W = x.shape
    Hu, Wu = upper.shape[-2:]
    h = m.num_heads
    d = C // h
    N = H * W

    def split_kv(t):  # [B, 2C, h', w'] -> k, v [B, h, tokens, d] strided views
        kv = t.reshape(B, h, 2 * d, -1)
        k_, v_ = kv.split(d, dim=2)
        return k_.transpose(-2, -1), v_.transpose(-2, -1)

    def attend(q_, k_, v_, mask=None):
        logits = (q_ @ k_.transpose(-2, -1)) / math.sqrt(d)
        if mask is not None:
            logits = logits + mask
        return logits.softmax(dim=-1) @ v_, logits

    q = m.q(x).reshape(B, h, d, N).transpose(-2, -1)  # [B, h, N, d]
    kv_up = m.kv(upper)
    k, v = split_kv(kv_up)
    out, logits = attend(q, k, v)
    if topk > 0:
        idx = logits.mean(dim=2).topk(topk, dim=-1).indices  # [B, h, k]
        r, c = idx // Wu, idx % Wu
        rows = torch.stack([2 * r, 2 * r, 2 * r + 1, 2 * r + 1], dim=-1).flatten(2)  # [B, h, 4k]
        cols = torch.stack([2 * c, 2 * c + 1, 2 * c, 2 * c + 1], dim=-1).flatten(2)
        valid = (rows < H) & (cols < W)
        flat = (rows.clamp(max=H - 1) * W + cols.clamp(max=W - 1)).unsqueeze(-1).expand(-1, -1, -1, d)
        k_fine, v_fine = split_kv(m.kv(x))  # [B, h, N, d]
        mask = torch.zeros(valid.shape, dtype=x.dtype).masked_fill(~valid, float("-inf")).unsqueeze(2)
        refined, _ = attend(q, k_fine.gather(2, flat), v_fine.gather(2, flat), mask)
        g = torch.cat([out, refined], dim=-1).reshape(B * h, N, 2 * d).transpose(1, 2)
        g = m.gate_conv1d(g).sigmoid().transpose(1, 2).reshape(B, h, N, d)
        out = g * refined + (1 - g) * out
    v_map = v.transpose(-2, -1).reshape(B, C, Hu, Wu)
    pe = F.interpolate(m.pe(v_map), size=(H, W), mode="bilinear", align_corners=False)
    return m.proj(out.transpose(-2, -1).reshape(B, C, H, W) + pe)


def plain_pst(pst: nn.Module, x: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """A whole PST layer (cv1, cvup, blocks, cv2) with every PSAttn replaced by ``plain_psattn``."""
    y = [pst.cv1(x)]
    u = pst.cvup(upper)
    for i in range(pst.n):
        block = getattr(pst, f"attnlayer_{i}")
        a = block.attn
        k = a.topk if (not a.training or a.fine_in_training) else 0
        t = y[-1] + plain_psattn(a, y[-1], u, min(k, u.shape[-2] * u.shape[-1]))
        y.append(t + block.mlp(t))
    return pst.cv2(torch.cat(y, 1))
