"""Precise BatchNorm: re-estimate every BatchNorm layer's running statistics on a set of batches after training.

During training a BatchNorm layer keeps an exponential moving average of batch statistics taken while the
weights were still moving (Ultralytics uses momentum 0.03, so the last ~30 steps dominate, and the EMA model
Ultralytics saves averages weights but keeps such statistics). Re-estimating them with the final weights, as
an equally weighted average over many batches, gives the statistics inference actually sees. The idea is
from "Rethinking 'Batch' in BatchNorm" (Wu & Johnson, 2021); this is a plain implementation of it.

    from pst_yolo.nn.precise_bn import precise_bn
    used = precise_bn(model, batches)   # batches: an iterable of input tensors [B, C, H, W]

Shapes: each batch is whatever ``model`` takes as input; only the BatchNorm layers' ``running_mean`` and
``running_var`` (and ``num_batches_tracked``) change.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` that tracks running statistics."""
    return [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[torch.Tensor], max_batches: Optional[int] = None) -> int:
    """Replace each BatchNorm layer's running mean and variance by their average over ``batches``.

    The model runs in train mode (so each layer normalises with the batch's own statistics, as in training)
    without gradients; each layer's running statistics become the equally weighted mean of the per-batch
    mean and unbiased variance (``momentum=None`` in PyTorch: a cumulative average). Afterwards every layer's
    momentum and every module's train/eval mode are as before. Returns the number of batches used.

    Raises ``ValueError`` if there is no batch (the statistics would be left reset)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in layers}
    saved = {bn: (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in layers}
    used = 0
    try:
        for bn in layers:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average: each batch counts equally
        model.train()
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            model(batch)
            used += 1
        if used == 0:
            raise ValueError("precise_bn: no batches to estimate BatchNorm statistics from")
    except BaseException:
        for bn, (mean, var, count) in saved.items():  # leave the model as it was
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.num_batches_tracked.copy_(count)
        raise
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for m, training in modes.items():
            m.training = training
    return used
