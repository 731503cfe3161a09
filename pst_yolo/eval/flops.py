"""FLOPs of one forward pass, counted analytically from the shapes of the operations that run.

One rule for every table in pst-yolo: a multiply-add is 2 FLOPs, and every convolution, linear
layer and matrix product counts, attention included:

- convolution: ``2 * output elements * (in_channels / groups) * kernel area``
  (transposed: ``2 * input elements * (out_channels / groups) * kernel area``);
- linear: ``2 * output elements * in_features``;
- matrix product (``@``, ``matmul``, ``bmm``, ``mm``, ``einsum``): ``2 * output elements * inner size``;
- ``scaled_dot_product_attention`` with q ``[..., L, E]``, k ``[..., S, E]``, v ``[..., S, Ev]``:
  ``2 * L * S * E + 2 * L * S * Ev`` per batch/head (the two matrix products; a mask changes nothing).

Elementwise work (activations, softmax, normalisation, interpolation) is not counted. The count is
taken with a ``TorchFunctionMode``: it sees the Python-level torch calls and their tensor shapes,
so it does not depend on which kernel a torch release dispatches to (torch's own ``FlopCounterMode``
missed the CPU attention kernel in some releases). Ultralytics' own GFLOPs (thop) count convolutions
and linear layers only, so they leave attention out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ("GFLOPS_NOTE", "FlopCount", "FlopCounter", "count_flops")

GFLOPS_NOTE = "GFLOPs: one batch-1 forward, every convolution and matrix product incl. attention (pst_yolo.flops)"

_CONV = {torch.conv1d, torch.conv2d, torch.conv3d}
_CONV_T = {torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d}
_MATMUL = {
    torch.matmul,
    torch.Tensor.__matmul__,
    torch.bmm,
    torch.mm,
    torch.Tensor.matmul,
    torch.Tensor.bmm,
    torch.Tensor.mm,
}


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one forward pass: convolutions and matrix products (attention, linear layers)."""

    conv: int
    matmul: int

    @property
    def total(self) -> int:
        return self.conv + self.matmul

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    @property
    def matmul_gflops(self) -> float:
        return self.matmul / 1e9


def _einsum_flops(equation: str, operands: tuple[torch.Tensor, ...]) -> int:
    """2 * the product of the sizes of all distinct indices (two operands), the einsum cost."""
    lhs = equation.replace(" ", "").split("->")[0]
    sizes: dict[str, int] = {}
    for spec, t in zip(lhs.split(","), operands):
        if "..." in spec:  # the ellipsis stands for the leading dims not named by letters
            n = t.dim() - (len(spec) - 3)
            spec = "".join(chr(0x100 + i) for i in range(n)) + spec.replace("...", "")
        for letter, size in zip(spec, t.shape):
            sizes[letter] = max(sizes.get(letter, 1), int(size))
    return 2 * math.prod(sizes.values()) if len(operands) > 1 else 0


class FlopCounter(TorchFunctionMode):
    """Adds up FLOPs (see the module docstring) of the torch calls made while it is active.

    ``with FlopCounter() as c: model(x)``; then ``c.count``. The mode is off while it handles a call,
    so work a function does inside (e.g. a Python-level op calling other ops) is not counted twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = 0
        self.matmul = 0

    @property
    def count(self) -> FlopCount:
        return FlopCount(conv=self.conv, matmul=self.matmul)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _CONV:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.conv += 2 * out.numel() * weight[0].numel()
        elif func in _CONV_T:
            x, weight = args[0], (args[1] if len(args) > 1 else kwargs["weight"])
            self.conv += 2 * x.numel() * weight[0].numel()
        elif func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.matmul += 2 * out.numel() * weight.shape[-1]
        elif func in _MATMUL:
            self.matmul += 2 * out.numel() * args[0].shape[-1]
        elif func is torch.einsum:
            equation, *operands = args
            if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
                operands = list(operands[0])
            self.matmul += _einsum_flops(equation, tuple(operands))
        elif func is F.scaled_dot_product_attention:
            q, k, v = (args + tuple(kwargs.get(n) for n in ("query", "key", "value")[len(args) :]))[:3]
            batch = q.numel() // (q.shape[-2] * q.shape[-1])
            self.matmul += 2 * batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        return out


def _probe_input(model: nn.Module, imgsz: int | tuple[int, int], channels: int | None) -> torch.Tensor:
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    if channels is None:
        yaml = getattr(model, "yaml", None)
        channels = int(yaml.get("channels", yaml.get("ch", 3))) if isinstance(yaml, dict) else 3
    p = next(model.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    device = p.device if p is not None else "cpu"
    return torch.zeros(1, channels, h, w, dtype=dtype, device=device)


def count_flops(model: nn.Module, imgsz: int | tuple[int, int] = 640, channels: int | None = None) -> FlopCount:
    """FLOPs of one batch-1 forward of ``model`` (eval mode, no grad) at ``imgsz``, k as set on its layers.

    The model's train/eval mode is restored afterwards; nothing else about it changes. A k larger than
    a level's coarse tokens is clamped for the probe without the one-time warning being used up.
    """
    from pst_yolo.nn.pst import quiet_topk_clamp  # the layer, for its clamp-warning bookkeeping

    was_training = model.training
    x = _probe_input(model, imgsz, channels)
    counter = FlopCounter()
    try:
        model.eval()
        with torch.no_grad(), quiet_topk_clamp(model), counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.count
