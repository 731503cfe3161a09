"""PST's attention in the forms export converters accept: same numbers, other operators.

The fine branch (``PSAttn._fine_branch``) picks the top-k coarse tokens with ``torch.topk``, fetches
the 2x2 fine patch under each with ``gather`` and masks patches cut by the border with
``masked_fill``. Some converters cannot take these ops (NCNN's PNNX drops ``torch.topk``; coremltools
types the gather indices as float). :func:`portable_fine_branch` computes the same selection with
elementwise ops, reductions, nearest upsampling and matrix products only:

- top-k as k rounds of "take the maximum": a one-hot row of the highest remaining score, ties to
  the lowest index (row first, then column), the rule of ONNX's TopK;
- gather as a product with that one-hot matrix over the coarse grid, applied to the fine map rearranged
  once into 2x2 patches per coarse token (``pixel_unshuffle``): only the k selected patches are
  projected and attended to, never a fine-map-sized selection matrix (exact: one term of each sum is
  non-zero);
- the border mask as a large negative logit (exp underflows to exactly 0, like -inf); without a
  border (even sizes) the attention is one ``scaled_dot_product_attention`` (NCNN's SDPA layer).

The selected set is the same as ``torch.topk``'s unless scores tie exactly at the k-th place, where
``torch.topk`` on CPU picks no fixed index (ONNX Runtime and OpenVINO, which follow ONNX's rule,
pick the lowest, as this formulation does). Keys, values and the attention differ from the default
path only by float rounding (other summation order); tests/nn/test_portable.py checks both.

:class:`SlicedKV` slices keys and values from their projection *before* moving channels last (the
default path slices after), for LiteRT's converter, which turns the latter into a FULLY_CONNECTED op
that fails when the model is loaded.

The formulations are subclasses of ``PSAttn`` with the same state: :func:`swap_attention` changes the
class of a model's attention modules in place (``export_attention_class`` names the one a converter
needs). Which export format gets which is decided at export time, in
``pst_yolo.integration.export_formats``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from pst_yolo.nn.pst import PSAttn

__all__ = (
    "MASK_LOGIT",
    "PortablePSAttn",
    "SlicedKV",
    "SlicedKVPSAttn",
    "SlicedKVPortablePSAttn",
    "StridedPortablePSAttn",
    "export_attention_class",
    "portable_fine_branch",
    "portable_gate",
    "swap_attention",
    "topk_onehot",
    "use_portable_fine_branch",
)

# A logit this far below the others gets exactly zero softmax weight (exp(-6e4) underflows in fp32 and
# fp16); unlike -inf it cannot make NaN through 0 * inf, and it fits in fp16 (max 65504).
MASK_LOGIT = 6.0e4


def _step(t: torch.Tensor) -> torch.Tensor:
    """1.0 where t > 0, else 0.0 (exact for every finite float: ceil maps (0, 1] to 1 and 0 to 0)."""
    return torch.ceil(torch.clamp(t, 0.0, 1.0))


def _equals(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1.0 where a == b for integer-valued floats, else 0.0."""
    return 1.0 - torch.clamp((a - b).abs(), 0.0, 1.0)


def topk_onehot(score: torch.Tensor, k: int, width: int) -> torch.Tensor:
    """One-hot rows of the k highest scores, without topk/argmax/gather.

    score: [..., M] over a row-major grid of ``width`` columns (M = rows * width).
    Returns [..., k, M]: row i is 1 at the (i+1)-th highest score. Ties go to the lower index (lower
    grid row, then lower column; row and column, not the flat index, so the numbers stay exact in
    fp16 up to 2048 rows/columns).
    """
    M = score.shape[-1]
    if not torch.jit.is_tracing() and (not 0 < k <= M or M % width):  # (traced sizes are tensors)
        raise ValueError(f"topk_onehot: need 0 < k <= {M} and {M} divisible by width {width}, got k={k}")
    height = M // width
    flat = torch.arange(M, device=score.device)
    row = torch.div(flat, width, rounding_mode="floor").to(score.dtype)
    col = (flat % width).to(score.dtype)
    s = score
    rows = []
    for _ in range(k):
        best = s.amax(dim=-1, keepdim=True)
        tied = 1.0 - _step(best - s)  # 1 at every maximum
        r = (row + (1.0 - tied) * height).amin(dim=-1, keepdim=True)  # lowest grid row holding one
        tied = tied * _equals(row, r)
        c = (col + (1.0 - tied) * width).amin(dim=-1, keepdim=True)  # lowest column in that row
        onehot = tied * _equals(col, c)
        rows.append(onehot)
        # Out of the next rounds: MASK_LOGIT below everything else (scores are attention logits, far smaller)
        s = s - onehot * MASK_LOGIT
    return torch.stack(rows, dim=-2)


def _fit(t: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[..., h, w] -> [..., H, W]: cut at the bottom/right, or pad with zeros there."""
    t = t[..., :H, :W]
    ph, pw = H - t.shape[-2], W - t.shape[-1]
    return F.pad(t, (0, pw, 0, ph)) if (ph or pw) else t


def _patches(t: torch.Tensor, Hu: int, Wu: int, strided: bool = False) -> torch.Tensor:
    """[B, C, H, W] -> [B, 4C, Hu*Wu]: the 2x2 patch over each coarse token, channel 4c + 2a + b holding
    channel c at (2r + a, 2c' + b); rows/columns the coarse grid does not reach are cut, positions beyond
    the map are zeros (masked out of the softmax by the caller).

    ``pixel_unshuffle`` (NCNN's Reorg; NCNN gets strided slices wrong), or with ``strided`` four strided slices
    (the same numbers; coremltools has no pixel_unshuffle for the iOS 15 target Ultralytics converts to)."""
    B, C = t.shape[:2]
    t = _fit(t, 2 * Hu, 2 * Wu)
    if not strided:
        return F.pixel_unshuffle(t, 2).reshape(B, 4 * C, Hu * Wu)
    parity = [t[:, :, a::2, b::2] for a in (0, 1) for b in (0, 1)]  # each [B, C, Hu, Wu]
    return torch.stack(parity, dim=2).reshape(B, 4 * C, Hu * Wu)


def _patch_tokens(patches: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """The selected patches as tokens: patches [B, 4C, M], one-hot sel [B, h, k, M] -> [B, h, 4k, C].

    One matrix product over the coarse grid (exact: one term of each sum is non-zero), then only small
    tensors are reordered; every tensor stays 4-D (NCNN's limit with the batch axis)."""
    B, C4, M = patches.shape
    _, h, k, _ = sel.shape
    C = C4 // 4
    tok = patches @ sel.reshape(B, h * k, M).transpose(1, 2)  # [B, 4C, hk]: rows (c, p), columns (head, i)
    tok = tok.reshape(B, C, 4 * h * k).transpose(1, 2)  # [B, 4hk, C]: rows (p, head, i)
    return tok.reshape(B, 4, h, k * C).transpose(1, 2).reshape(B, h, 4 * k, C)  # rows (p, i) per head


def portable_fine_branch(
    self: PSAttn, x: torch.Tensor, q: torch.Tensor, k_up: torch.Tensor, Wu: int, topk: int
) -> torch.Tensor:
    """``PSAttn._fine_branch`` without topk, gather or masked_fill (same arguments, same result).

    Only the selected tokens are touched after the selection: the fine map is rearranged once into
    2x2 patches per coarse token, a one-hot product over the coarse grid picks k of them per head, and
    only those 4k tokens are projected to keys/values (the default path's arithmetic).

    x: [B, dim, H, W]; q: [B, heads, N, d]; k_up: [B, heads, M, d]. Returns refined [B, heads, N, d].
    """
    B, C, H, W = x.shape
    h, d = self.num_heads, self.head_dim
    Hu = k_up.shape[2] // Wu
    score = (q.mean(dim=2, keepdim=True) * self.scale) @ k_up.transpose(-2, -1)  # [B, h, 1, M]
    sel = topk_onehot(score.squeeze(2), topk, Wu)  # [B, h, k, M]

    affine = self._kv_affine()
    if affine is None:  # train-mode BatchNorm: project the whole map, then pick each head's own channels
        kv_all = _patch_tokens(_patches(self.kv(x), Hu, Wu, self.strided_patches), sel)  # [B, h, 4k, 2C]
        own = torch.eye(h, dtype=x.dtype, device=x.device).repeat_interleave(2 * d, dim=1)  # [h, 2C]
        picked = (kv_all * own[None, :, None, :]).reshape(B, h, -1, h, 2 * d).sum(dim=3)
    else:  # pick tokens, then project only them
        w, b = affine
        tok = _patch_tokens(_patches(x, Hu, Wu, self.strided_patches), sel)  # [B, h, 4k, C]
        picked = torch.matmul(tok, w.reshape(h, 2 * d, C).transpose(1, 2)) + b.reshape(h, 1, 2 * d)
    k_sel, v_sel = picked[..., :d], picked[..., d:]  # [B, h, 4k, d]

    if 2 * Hu > H or 2 * Wu > W:  # patches cut by the border (ceil-sized upper map): mask their positions
        ones = torch.ones(1, 1, H, W, dtype=x.dtype, device=x.device)
        inside = _patches(ones, Hu, Wu, self.strided_patches)[0].transpose(0, 1)  # [M, 4]
        valid = (sel @ inside).transpose(-2, -1).reshape(B, h, 1, 4 * topk)  # [B, h, 1, 4k]: (p, i) as tok
        logits = q @ (k_sel * self.scale).transpose(-2, -1) + (valid - 1.0) * MASK_LOGIT  # [B, h, N, 4k]
        return logits.softmax(dim=-1) @ v_sel
    # no mask: one attention op (NCNN's SDPA layer runs it far faster than MatMul/Softmax/MatMul)
    return F.scaled_dot_product_attention(q, k_sel, v_sel)


def portable_gate(self: PSAttn, coarse: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
    """``PSAttn._gate`` as a per-token linear map instead of a Conv1d over a [B*heads, 2d, N] batch
    (NCNN has no batch axis: with heads > 1 it would run the Conv1d on the wrong layout).

    coarse, refined: [B, heads, N, d] -> [B, heads, N, d].
    """
    conv = self.gate_conv1d
    g = F.linear(torch.cat([coarse, refined], dim=-1), conv.weight[:, :, 0], conv.bias).sigmoid()
    return coarse + g * (refined - coarse)  # = g * refined + (1 - g) * coarse, two map-sized ops fewer


class PortablePSAttn(PSAttn):
    """PSAttn whose fine branch and gate are :func:`portable_fine_branch` and :func:`portable_gate`."""

    strided_patches = False  # how the fine map becomes 2x2 patches (see _patches)
    _fine_branch = portable_fine_branch
    _gate = portable_gate


class StridedPortablePSAttn(PortablePSAttn):
    """The portable formulation with the patches taken by strided slices (coremltools)."""

    strided_patches = True


class SlicedKV:
    """Mixin: keys/values sliced from the projection in channel layout, then moved channels last.

    Same numbers as ``PSAttn._split_kv`` (which moves channels last, then slices); litert-torch turns
    the latter into a FULLY_CONNECTED op with the wrong input layout (fails at load time).
    """

    def _split_kv(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 2*dim, h, w] -> k, v: [B, heads, h*w, d]."""
        kv = t.reshape(t.shape[0], self.num_heads, 2 * self.head_dim, -1)
        return kv[:, :, : self.head_dim].transpose(-2, -1), kv[:, :, self.head_dim :].transpose(-2, -1)


class SlicedKVPSAttn(SlicedKV, PSAttn):
    """The default formulation with keys/values sliced first (LiteRT)."""


class SlicedKVPortablePSAttn(SlicedKV, PortablePSAttn):
    """The portable formulation with keys/values sliced first."""


def export_attention_class(portable: bool, sliced_kv: bool, strided_patches: bool = False) -> type:
    """The PSAttn (sub)class computing the same thing in the form a converter accepts."""
    if portable and strided_patches:
        if sliced_kv:
            raise ValueError("export_attention_class: no formulation has both sliced keys/values and strided patches")
        return StridedPortablePSAttn
    return {
        (False, False): PSAttn,
        (True, False): PortablePSAttn,
        (False, True): SlicedKVPSAttn,
        (True, True): SlicedKVPortablePSAttn,
    }[(bool(portable), bool(sliced_kv))]


def swap_attention(model: torch.nn.Module, cls: type) -> list:
    """Set the class of every PSAttn in ``model`` to ``cls`` (same state, other methods); returns them."""
    attns = [m for m in model.modules() if isinstance(m, PSAttn)]
    for m in attns:
        m.__class__ = cls
    return attns


@contextlib.contextmanager
def use_portable_fine_branch(model: torch.nn.Module, sliced_kv: bool = False) -> Iterator[int]:
    """Within the block every PSAttn of ``model`` runs :func:`portable_fine_branch` (and, with
    ``sliced_kv``, :class:`SlicedKV`); yields how many layers. Restores plain PSAttn after."""
    attns = swap_attention(model, export_attention_class(True, sliced_kv))
    try:
        yield len(attns)
    finally:
        swap_attention(model, PSAttn)
