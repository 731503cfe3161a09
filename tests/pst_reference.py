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
