"""Pyramid Sparse Transformer (PST) feature-fusion layer.

Implements the cross-scale attention layer of "Pyramid Sparse Transformer" (arXiv 2505.12772) as an
Ultralytics-compatible module. A fine feature map ``x`` attends to a coarser map ``upper`` (half the
resolution). Optionally, a sparse fine branch re-attends to the 2x2 fine patches under the ``k`` most
relevant coarse tokens, and a learned gate blends both results.

Parameter names and shapes follow the authors' checkpoints, so their state dicts load with ``strict=True``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from ultralytics.nn.modules.conv import Conv

from pst_yolo.nn.checks import check_topk, env_error, environment_variable
from pst_yolo.nn.onnx_export import OrtMultiHeadAttention, chunked_attention, onnx_attention_mode, query_chunks

__all__ = ("PST", "GateConv1d", "PSAttn", "PSAttnBlock", "default_layer_init", "new_layer_init", "quiet_topk_clamp")

INITS = ("authors", "identity")  # PST(init=...): how a freshly built layer starts
# A fresh layer starts as the identity: over 3 seeds of the accuracy study (docs/accuracy.md, candidate c) that
# lifted yolo11n-pst by +0.10 AP over the authors' initialisation, on every seed, and cut its seed spread tenfold.
# Checkpoints are unaffected (their weights replace any start); the authors' start stays one word away.
DEFAULT_INIT = "identity"
ENV_INIT = "PST_INIT"
HEAD_DIM = 32  # PST fixes the per-head width; the number of heads follows from the hidden width


def _check_init(init: object, source: str = "PST: init") -> str:
    if init not in INITS:
        raise ValueError(f"{source} must be one of {', '.join(INITS)}, got {init!r}")
    return str(init)


def new_layer_init() -> str:
    """How a PST layer built without ``init=`` starts: ``PST_INIT`` if set, else ``DEFAULT_INIT``."""
    value = os.environ.get(ENV_INIT, "").strip()
    if not value:
        return DEFAULT_INIT
    if value not in INITS:
        raise env_error(ENV_INIT, value, f"one of {', '.join(INITS)} (how freshly built PST layers start)")
    return value


@contextlib.contextmanager
def default_layer_init(init: str) -> Iterator[None]:
    """Within the block, PST layers built without ``init=`` (YAML rows without a 4th arg included) start as
    ``init``; e.g. ``with default_layer_init("authors"): YOLO("yolo11n-pst.yaml")`` builds the authors' start.
    It sets ``PST_INIT`` for the block, so worker processes started inside it (parallel training) agree."""
    with environment_variable(ENV_INIT, _check_init(init, "default_layer_init: init")):
        yield


def _branch_closed(conv: nn.Module) -> bool:
    """A branch's closing Conv outputs zeros: its BatchNorm scale is zero, or, once folded into the convolution
    (Ultralytics' fuse drops ``bn``), its weight and bias are."""
    bn = getattr(conv, "bn", None)
    if bn is not None:
        return not bn.weight.any()
    bias = conv.conv.bias
    return not conv.conv.weight.any() and (bias is None or not bias.any())


def _init_conv2d(m: nn.Module) -> None:
    """Truncated-normal init (std 0.02) for plain Conv2d layers, zero bias."""
    if isinstance(m, nn.Conv2d):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _check_upper_size(x: torch.Tensor, upper: torch.Tensor, where: str = "PST") -> None:
    """Raise unless ``upper`` is half of ``x`` spatially (floor or ceil per dimension)."""
    H, W = x.shape[-2:]
    Hu, Wu = upper.shape[-2:]
    if not (H // 2 <= Hu <= (H + 1) // 2 and W // 2 <= Wu <= (W + 1) // 2):
        raise ValueError(
            f"{where}: upper must be half the size of x (floor or ceil of H/2 and W/2), "
            f"got x shape {tuple(x.shape)} and upper shape {tuple(upper.shape)}; "
            "take upper from the next coarser pyramid level (stride twice that of x)"
        )


class GateConv1d(nn.Conv1d):
    """The fine-branch gate: a 1x1 Conv1d whose (re-)initialisation is zero, so an untrained gate is
    an exact 0.5/0.5 blend. Frameworks that re-initialise every layer through ``reset_parameters``
    (Ultralytics does with ``pretrained=False``) get the same documented gate, not a random one."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


@contextlib.contextmanager
def quiet_topk_clamp(model: nn.Module) -> Iterator[None]:
    """Silence (and do not use up) the once-per-layer top-k clamp warning, e.g. while a FLOP
    counter runs the model on a tiny probe image where k always exceeds the coarse tokens."""
    attns = [m for m in model.modules() if isinstance(m, PSAttn)]
    flags = [m._warned_topk_clamp for m in attns]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PSAttn: topk=")
        try:
            yield
        finally:
            for m, flag in zip(attns, flags):
                m._warned_topk_clamp = flag


class PSAttn(nn.Module):
    """Pyramid sparse cross-attention from a fine map to a half-resolution map.

    Queries come from ``x``; keys/values come from ``upper`` (coarse branch) and, optionally, from the
    2x2 fine patches of ``x`` under the top-k coarse tokens (fine branch).

    Args:
        dim: Channels of both inputs (and of the output).
        num_heads: Number of attention heads; ``dim`` must be divisible by it.
        topk: Number of coarse tokens whose fine patches are re-attended to; 0 disables the fine branch.
        fused_attn: Use ``F.scaled_dot_product_attention`` (True) or an explicit matmul-softmax-matmul.

    Attributes:
        topk (int): See above; may be changed after construction.
        fine_in_training (bool): Run the fine branch in train mode too (default False: eval only).
        fused_attn (bool): Attention implementation switch; both give the same result.
        onnx_attention (str | None): How ONNX export writes the coarse attention: "standard" (portable
            MatMul/Softmax/MatMul) or "ort" (``com.microsoft::MultiHeadAttention``, ONNX Runtime only,
            faster on CPU); None (default) follows ``PST_ONNX_ATTENTION``, else "standard".
        onnx_chunk_queries (bool): Write "standard" attention with its queries in chunks, each holding at most
            ``nn.onnx_export.SCORE_CHUNK_BYTES`` of scores (default True). Chunk sizes are fixed in the graph:
            set False for a dynamic-shape ``torch.onnx.export`` (pst-yolo's export hook does for ``dynamic=True``).

    Shapes:
        x: [B, dim, H, W]; upper: [B, dim, Hu, Wu] with Hu in {floor(H/2), ceil(H/2)}, same for W.
        output: [B, dim, H, W].
    """

    def __init__(self, dim: int, num_heads: int, topk: int = 0, fused_attn: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"PSAttn: dim={dim} must be divisible by num_heads={num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.topk = topk  # checked in __setattr__
        self.fine_in_training = False
        self.fused_attn = fused_attn
        self.onnx_attention: Optional[str] = None
        self.onnx_chunk_queries = True
        self._warned_topk_clamp = False

        self.q = Conv(dim, dim, 1, act=False)
        # kv channels are grouped per head as [k_h (d channels), v_h (d channels)] to match the checkpoints
        self.kv = Conv(dim, 2 * dim, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 7, 1, 3, g=dim, act=False)  # depthwise positional encoding on coarse values
        self.gate_conv1d = GateConv1d(2 * self.head_dim, self.head_dim, kernel_size=1)

        self.apply(_init_conv2d)  # (the gate is a Conv1d: it keeps its zero init, an even 0.5/0.5 blend)

    def __setattr__(self, name: str, value) -> None:
        if name == "topk":  # a negative or fractional k would silently run coarse only: refused, like set_topk
            value = check_topk(value)
        super().__setattr__(name, value)

    # ----------------------------------------------------------------------------------------------
    def _effective_topk(self, num_coarse: int) -> int:
        """Number of coarse tokens to refine under the train/eval policy, clamped to ``num_coarse``."""
        k = self.topk if (not self.training or self.fine_in_training) else 0
        if k > num_coarse:
            if not self._warned_topk_clamp:
                warnings.warn(
                    f"PSAttn: topk={k} exceeds the {num_coarse} coarse tokens; clamping to {num_coarse}",
                    stacklevel=3,
                )
                self._warned_topk_clamp = True
            k = num_coarse
        return max(k, 0)

    def _heads(self, t: torch.Tensor, per_head: int) -> torch.Tensor:
        """[B, heads*per_head, *spatial] -> [B, heads, tokens, per_head], memory contiguous.

        The copy puts the channels of a token next to each other (last-dim stride 1), which is what
        PyTorch's fused CPU attention kernel needs; with a strided view SDPA falls back to its unfused
        "math" path that writes the whole N x M score matrix (several times slower on CPU).
        """
        B = t.shape[0]
        return t.reshape(B, self.num_heads, per_head, -1).transpose(-2, -1).contiguous()

    def _split_kv(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 2*dim, h, w] -> k, v: [B, heads, h*w, d] (per-head interleaved channel layout).

        Both are views of one contiguous [B, heads, h*w, 2d] tensor (last-dim stride 1).
        """
        kv = self._heads(t, 2 * self.head_dim)
        return kv[..., : self.head_dim], kv[..., self.head_dim :]

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Scaled dot-product attention. q: [B,h,N,d]; k, v: [B,h,M,d]; mask: additive, broadcastable to
        [B,h,N,M] (-inf excludes a key). Returns [B,h,N,d]."""
        if self.fused_attn:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if mask is not None:
            attn = attn + mask
        return attn.softmax(dim=-1) @ v

    def _kv_affine(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """The kv projection as a per-position affine map ``(weight [2*dim, dim], bias [2*dim])``.

        None when it is not one: a BatchNorm that normalises with batch statistics (train mode) depends
        on every position of the map (and updates its running statistics), so then the whole map has to
        go through ``self.kv``.
        """
        conv = self.kv.conv
        if conv.kernel_size != (1, 1) or conv.groups != 1 or not isinstance(self.kv.act, nn.Identity):
            return None
        w = conv.weight.flatten(1)
        b = conv.bias if conv.bias is not None else w.new_zeros(w.shape[0])
        bn = getattr(self.kv, "bn", None)
        if bn is not None and getattr(self.kv.forward, "__func__", None) is not Conv.forward_fuse:
            if bn.training or bn.running_mean is None or bn.running_var is None:
                return None
            s = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                s = s * bn.weight
            w = w * s[:, None]
            b = (b - bn.running_mean) * s
            if bn.bias is not None:
                b = b + bn.bias
        return w, b

    def _fine_kv(self, x: torch.Tensor, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values of the fine tokens ``flat`` ([B, heads, T] positions in x's H*W grid): [B, heads, T, d].

        With an affine kv projection (eval mode) only the T gathered tokens are projected, each head with
        its own rows of the weight; otherwise the whole map is projected and the tokens gathered after.
        Both give the same numbers: the projection acts on each position on its own.
        """
        B, C = x.shape[:2]
        h, d = self.num_heads, self.head_dim
        T = flat.shape[-1]
        affine = self._kv_affine()
        if affine is None:
            kv = self._heads(self.kv(x), 2 * d)  # [B, h, N, 2d]
            sel = kv.gather(2, flat.unsqueeze(-1).expand(-1, -1, -1, 2 * d))  # [B, h, T, 2d]
        else:
            w, b = affine
            x_t = x.flatten(2).transpose(1, 2)  # [B, N, C] view
            tok = x_t.gather(1, flat.reshape(B, h * T, 1).expand(-1, -1, C)).reshape(B, h, T, C)
            w_h = w.reshape(h, 2 * d, C).transpose(1, 2)  # [h, C, 2d]
            sel = torch.matmul(tok, w_h) + b.reshape(h, 1, 2 * d)  # [B, h, T, 2d]
        return sel[..., :d], sel[..., d:]

    def _fine_branch(self, x: torch.Tensor, q: torch.Tensor, k_up: torch.Tensor, Wu: int, topk: int) -> torch.Tensor:
        """Attend to the 2x2 fine patches of ``x`` under the top-k coarse tokens.

        x: [B, dim, H, W]; q: [B, heads, N, d]; k_up: [B, heads, M, d]. Returns refined [B, heads, N, d].
        """
        B, _, H, W = x.shape
        Hu = k_up.shape[2] // Wu
        # Mean over queries of q·kᵀ/√d equals (mean q)·kᵀ/√d, so no N x M logit matrix is needed.
        score = (q.mean(dim=2, keepdim=True) * self.scale) @ k_up.transpose(-2, -1)  # [B, heads, 1, M]
        idx = score.squeeze(2).topk(topk, dim=-1).indices  # [B, heads, k]; deterministic, no noise

        r = torch.div(idx, Wu, rounding_mode="floor")
        c = idx - r * Wu
        # 2x2 patch (2r + {0,1}, 2c + {0,1}), built with stack rather than constant tensors (trace-friendly)
        rows = torch.stack([2 * r, 2 * r, 2 * r + 1, 2 * r + 1], dim=-1).flatten(2)  # [B, heads, 4k]
        cols = torch.stack([2 * c, 2 * c + 1, 2 * c, 2 * c + 1], dim=-1).flatten(2)

        # Same projection (weights and head layout) as for the coarse keys/values.
        # Clamp so the gather stays in range; out-of-map positions are masked out of the softmax below.
        flat = rows.clamp(max=H - 1) * W + cols.clamp(max=W - 1)
        k_sel, v_sel = self._fine_kv(x, flat)  # [B, heads, 4k, d]

        mask = None
        # Patches can cross the border only for ceil-sized upper maps. A traced graph may be re-used for
        # other sizes (dynamic export), so it always carries the mask; for even sizes it is all zeros.
        if torch.jit.is_tracing() or 2 * Hu > H or 2 * Wu > W:
            valid = (rows < H) & (cols < W)  # [B, heads, 4k]; position (2r, 2c) is always valid
            mask = torch.zeros(valid.shape, dtype=q.dtype, device=q.device)
            mask = mask.masked_fill(~valid, float("-inf")).unsqueeze(2)  # [B, heads, 1, 4k]
        return self._attend(q, k_sel, v_sel, mask)

    def _gate(self, coarse: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
        """Blend coarse and refined [B, heads, N, d] with a per-token gate shared across heads."""
        B, h, N, d = coarse.shape
        g = torch.cat([coarse, refined], dim=-1).reshape(B * h, N, 2 * d).transpose(1, 2)  # [B*h, 2d, N]
        g = self.gate_conv1d(g).sigmoid().transpose(1, 2).reshape(B, h, N, d)
        return g * refined + (1 - g) * coarse

    def forward(self, x: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """x: [B, dim, H, W]; upper: [B, dim, Hu, Wu] -> [B, dim, H, W]."""
        _check_upper_size(x, upper)
        B, C, H, W = x.shape
        Hu, Wu = upper.shape[-2:]
        h, d = self.num_heads, self.head_dim

        q_map = self.q(x)  # [B, C, H, W]
        q = self._heads(q_map, d)  # [B, h, N, d]
        kv_up = self.kv(upper)  # [B, 2C, Hu, Wu]
        k, v = self._split_kv(kv_up)  # [B, h, M, d]
        kv_h = kv_up.reshape(B, h, 2 * d, Hu * Wu)
        v_map = kv_h[:, :, d:].reshape(B, C, Hu, Wu)  # coarse values as a map, channel h*d + j

        topk = self._effective_topk(Hu * Wu)
        onnx_mode = onnx_attention_mode(self.onnx_attention) if torch.onnx.is_in_onnx_export() else None
        if onnx_mode == "ort":
            # [B, tokens, C] with C = h*d head-major: the layout MultiHeadAttention takes and gives back
            out = (
                OrtMultiHeadAttention.apply(
                    q_map.flatten(2).transpose(1, 2),
                    kv_h[:, :, :d].reshape(B, C, -1).transpose(1, 2),
                    v_map.flatten(2).transpose(1, 2),
                    h,
                )
                .reshape(B, H * W, h, d)
                .transpose(1, 2)
            )  # [B, h, N, d]
        elif onnx_mode == "standard" and getattr(self, "onnx_chunk_queries", True):  # (older pickles lack it)
            out = chunked_attention(q, k, v, query_chunks(h, H * W, Hu * Wu))  # bounded score memory at run time
        else:
            out = self._attend(q, k, v)  # coarse, [B, h, N, d]
        if topk > 0:
            refined = self._fine_branch(x, q, k, Wu, topk)
            out = self._gate(out, refined)

        # Positional encoding from the coarse values, upsampled to the fine grid.
        pe = F.interpolate(self.pe(v_map), size=(H, W), mode="bilinear", align_corners=False)
        out = out.transpose(-2, -1).reshape(B, C, H, W) + pe
        return self.proj(out)


class PSAttnBlock(nn.Module):
    """PSAttn followed by a Conv MLP, each with a residual connection.

    Shapes: x [B, dim, H, W], upper [B, dim, Hu, Wu] -> [B, dim, H, W].
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, topk: int = 0) -> None:
        super().__init__()
        self.attn = PSAttn(dim, num_heads, topk=topk)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))
        self.mlp.apply(_init_conv2d)  # same init as the attention convs

    def start_as_identity(self) -> None:
        """Zero the BatchNorm scale that ends each residual branch (attention output projection, MLP output), so
        the block starts as the identity and each branch grows from zero (zero-init residual, as in Goyal et al.
        2017): a fresh PST then begins as its convolutional path. The parameters and their names are unchanged."""
        for conv in (self.attn.proj, self.mlp[1]):
            nn.init.zeros_(conv.bn.weight)

    def forward(self, x: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """x: [B, dim, H, W]; upper: [B, dim, Hu, Wu] -> [B, dim, H, W]."""
        x = x + self.attn(x, upper)
        return x + self.mlp(x)


class PST(nn.Module):
    """Pyramid Sparse Transformer fusion layer for Ultralytics models.

    Args:
        c1: Channels of the fine input ``x``.
        c_up: Channels of the coarse input ``upper``.
        c2: Output channels.
        n: Number of PSAttnBlocks.
        mlp_ratio: MLP expansion of each block.
        e: Hidden width ratio; ``int(c2 * e)`` must be a positive multiple of 32 (head dim 32).
        k: Top-k coarse tokens for the fine branch (0 disables it).
        init: ``"identity"`` (each block's attention and MLP branches start at zero, so the layer starts as its
            convolutional path; see ``PSAttnBlock.start_as_identity``) or ``"authors"`` (their initialisation).
            None (default): ``new_layer_init()``, i.e. ``PST_INIT`` or ``DEFAULT_INIT`` (``"identity"``).

    Shapes:
        forward((x, upper)): x [B, c1, H, W], upper [B, c_up, Hu, Wu] (half size) -> [B, c2, H, W].
    """

    def __init__(
        self,
        c1: int,
        c_up: int,
        c2: int,
        n: int = 1,
        mlp_ratio: float = 2.0,
        e: float = 0.5,
        k: int = 0,
        init: Optional[str] = None,
    ) -> None:
        super().__init__()
        init = new_layer_init() if init is None else _check_init(init)
        c_ = int(c2 * e)
        if c_ <= 0 or c_ % HEAD_DIM != 0:
            raise ValueError(
                f"PST: hidden width int(c2*e) with c2={c2}, e={e} is {c_}; "
                f"it must be a positive multiple of {HEAD_DIM} (the head dim is {HEAD_DIM})"
            )
        self.c1, self.c_up, self.c2, self.n, self.mlp_ratio, self.e = c1, c_up, c2, n, mlp_ratio, e
        self.c_ = c_
        self._k = check_topk(k)
        self._fine_in_training = False
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cvup = Conv(c_up, c_, 1, 1)
        self.cv2 = Conv((1 + n) * c_, c2, 1)
        self.init = init
        for i in range(n):
            # attribute names match the authors' checkpoints
            setattr(self, f"attnlayer_{i}", PSAttnBlock(c_, c_ // HEAD_DIM, mlp_ratio, topk=k))
        if init == "identity":
            for block in self._blocks():
                block.start_as_identity()

    def starts_as_identity(self) -> bool:
        """Whether every block still passes its input through unchanged (the closing BatchNorm scales of its
        attention and MLP branches are all zero): a freshly built ``init="identity"`` layer, before training."""
        return all(_branch_closed(conv) for block in self._blocks() for conv in (block.attn.proj, block.mlp[1]))

    def _blocks(self) -> list[PSAttnBlock]:
        return [getattr(self, f"attnlayer_{i}") for i in range(self.n)]

    @property
    def k(self) -> int:
        """Top-k of the fine branch (shared by all blocks)."""
        blocks = self._blocks()
        return blocks[0].attn.topk if blocks else self._k

    @k.setter
    def k(self, value: int) -> None:
        self._k = check_topk(value)
        for b in self._blocks():
            b.attn.topk = self._k

    @property
    def fine_in_training(self) -> bool:
        """Whether the fine branch also runs in train mode (shared by all blocks)."""
        blocks = self._blocks()
        return blocks[0].attn.fine_in_training if blocks else self._fine_in_training

    @fine_in_training.setter
    def fine_in_training(self, value: bool) -> None:
        self._fine_in_training = bool(value)
        for b in self._blocks():
            b.attn.fine_in_training = bool(value)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """xs = (x [B, c1, H, W], upper [B, c_up, Hu, Wu]) -> [B, c2, H, W]."""
        x, upper = xs
        layer = getattr(self, "i", None)  # model builders such as Ultralytics' set the layer index
        _check_upper_size(x, upper, "PST" if layer is None else f"layer {layer} (PST)")
        x = self.cv1(x)
        u = self.cvup(upper)
        y = [x]
        for block in self._blocks():
            y.append(block(y[-1], u))
        return self.cv2(torch.cat(y, 1))
