"""Slow, naive reference for ``pst_yolo.pst.PSAttn`` used by the tests.

Written independently of the fast implementation: explicit loops over images and heads, the token score
as the full mean over queries of the N x M logit matrix, the fine token list built position by position
(positions outside the fine map are simply not added), and a hand-written softmax and gate.

The module's ``q``, ``kv``, ``pe`` and ``proj`` submodules are used only as black-box projections.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def naive_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim, written out."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    e = torch.exp(shifted)
    return e / e.sum(dim=-1, keepdim=True)


def reference_psattn(
    m: nn.Module,
    x: torch.Tensor,
    upper: torch.Tensor,
    topk: int,
    gate_value: Optional[float] = None,
) -> torch.Tensor:
    """Naive PSAttn forward.

    Args:
        m: a PSAttn module (only its q/kv/pe/proj/gate_conv1d parameters are used).
        x: [B, dim, H, W]; upper: [B, dim, Hu, Wu].
        topk: number of coarse tokens to refine (0 = coarse only); must be <= Hu*Wu.
        gate_value: if given, use this constant gate instead of gate_conv1d.

    Returns:
        [B, dim, H, W].
    """
    B, C, H, W = x.shape
    Hu, Wu = upper.shape[-2:]
    heads = m.num_heads
    d = C // heads
    N, M = H * W, Hu * Wu
    assert 0 <= topk <= M

    q_all = m.q(x)  # [B, C, H, W]
    kv_up = m.kv(upper)  # [B, 2C, Hu, Wu]
    kv_x = m.kv(x)  # [B, 2C, H, W]
    gate_w = m.gate_conv1d.weight[:, :, 0]  # [d, 2d]
    gate_b = m.gate_conv1d.bias  # [d]

    attn_out = torch.zeros(B, C, H, W, dtype=x.dtype)
    v_map = torch.zeros(B, C, Hu, Wu, dtype=x.dtype)
    for b in range(B):
        for h in range(heads):
            # Per-head channels: q -> [h*d, (h+1)*d); kv -> keys [h*2d, h*2d+d), values [h*2d+d, (h+1)*2d).
            Q = q_all[b, h * d : (h + 1) * d].reshape(d, N).T  # [N, d], token n = row*W + col
            K = kv_up[b, h * 2 * d : h * 2 * d + d].reshape(d, M).T  # [M, d]
            V = kv_up[b, h * 2 * d + d : (h + 1) * 2 * d].reshape(d, M).T
            v_map[b, h * d : (h + 1) * d] = V.T.reshape(d, Hu, Wu)

            logits = (Q @ K.T) / math.sqrt(d)  # [N, M]
            coarse = naive_softmax(logits) @ V  # [N, d]
            out = coarse
            if topk > 0:
                score = logits.mean(dim=0)  # [M]
                chosen = sorted(range(M), key=lambda i: -float(score[i].detach()))[:topk]
                fine_k, fine_v = [], []
                for mi in chosen:
                    r, c = mi // Wu, mi % Wu
                    for row in (2 * r, 2 * r + 1):
                        for col in (2 * c, 2 * c + 1):
                            if row < H and col < W:  # drop positions outside the fine map
                                fine_k.append(kv_x[b, h * 2 * d : h * 2 * d + d, row, col])
                                fine_v.append(kv_x[b, h * 2 * d + d : (h + 1) * 2 * d, row, col])
                Kf, Vf = torch.stack(fine_k), torch.stack(fine_v)  # [T, d]
                refined = naive_softmax((Q @ Kf.T) / math.sqrt(d)) @ Vf  # [N, d]
                if gate_value is None:
                    g = torch.sigmoid(torch.cat([coarse, refined], dim=1) @ gate_w.T + gate_b)  # [N, d]
                else:
                    g = torch.full_like(coarse, gate_value)
                out = g * refined + (1 - g) * coarse
            attn_out[b, h * d : (h + 1) * d] = out.T.reshape(d, H, W)

    pe = F.interpolate(m.pe(v_map), size=(H, W), mode="bilinear", align_corners=False)
    return m.proj(attn_out + pe)


@torch.no_grad()
def randomize_(module: nn.Module, seed: int, include_gate: bool = True) -> nn.Module:
    """Give every parameter and BN statistic a random, O(1)-scale value so that all of them matter."""
    g = torch.Generator().manual_seed(seed)
    for name, mod in module.named_modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            if isinstance(mod, nn.Conv1d) and name.endswith("gate_conv1d") and not include_gate:
                continue
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / math.sqrt(fan_in))
            if mod.bias is not None:
                mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
        elif isinstance(mod, nn.BatchNorm2d):
            mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
            mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
            mod.running_mean.copy_(0.2 * torch.randn(mod.running_mean.shape, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
    return module


# --------------------------------------------------------------------------------------------------
# The plain (vectorised) formulation: the speed baseline and a second oracle
# --------------------------------------------------------------------------------------------------
def plain_psattn(m: nn.Module, x: torch.Tensor, upper: torch.Tensor, topk: int) -> torch.Tensor:
    """PSAttn written the straightforward way, batched over images and heads.

    Explicit ``softmax(q kᵀ/√d) v`` on strided views of the conv outputs (the N x M score matrix goes
    through main memory), the fine keys/values taken from the kv projection of the *whole* fine map,
    the selection score as the mean over queries of that N x M matrix, an additive -inf border mask.
    This is the baseline the fast paths of ``pst_yolo.pst`` are timed against (scripts/bench_pst_layer.py)
    and, being checked against ``reference_psattn`` itself, a second oracle for them.

    ``topk`` is the k in force (the caller applies the train/eval policy), at most Hu*Wu.
    """
    B, C, H, W = x.shape
    Hu, Wu = upper.shape[-2:]
    h = m.num_heads
    d = C // h
    N, M = H * W, Hu * Wu

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
