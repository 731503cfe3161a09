"""nn.precise_bn against a plain recomputation of the batch statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pst_yolo.nn.precise_bn import batchnorm_layers, precise_bn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5, momentum=0.03), nn.ReLU(), nn.Conv2d(5, 4, 1), nn.BatchNorm2d(4)
    )


def _batches(n: int, shape=(3, 3, 9, 7)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(shape, generator=g) * 3 + i for i in range(n)]


def _reference(net: nn.Sequential, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per BN layer: mean over batches of the per-channel batch mean and unbiased batch variance of its input,
    computed from the layer's input in train mode (each earlier BN normalising with its own batch statistics)."""
    sums = {}
    for x in batches:
        h = x
        for i, m in enumerate(net):
            if isinstance(m, nn.BatchNorm2d):
                flat = h.transpose(0, 1).reshape(h.shape[1], -1).double()
                mean, var = flat.mean(1), flat.var(1, unbiased=True)
                a, b = sums.get(i, (0, 0))
                sums[i] = (a + mean, b + var)
                h = (h - flat.mean(1).float()[:, None, None]) / torch.sqrt(flat.var(1, unbiased=False).float() + m.eps)[
                    :, None, None
                ] * m.weight[:, None, None] + m.bias[:, None, None]
            else:
                h = m(h)
    return [(a / len(batches), b / len(batches)) for _, (a, b) in sorted(sums.items())]


def test_running_statistics_are_the_average_of_the_batch_statistics():
    net, batches = _net().eval(), _batches(4)
    with torch.no_grad():
        expected = _reference(net, batches)
    assert precise_bn(net, batches) == 4
    for bn, (mean, var) in zip(batchnorm_layers(net), expected):
        torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-5, atol=1e-5)


def test_modes_momentum_and_weights_are_restored():
    net = _net()
    net[0].eval()  # a mixed state is kept as it was
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    precise_bn(net, _batches(2))
    assert net.training and not net[0].training and net[1].training
    assert [bn.momentum for bn in batchnorm_layers(net)] == [0.03, 0.1]
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    assert all(p.grad is None for p in net.parameters())


def test_max_batches_limits_the_estimate():
    net_a, net_b = _net(), _net()
    precise_bn(net_a, _batches(5), max_batches=2)
    precise_bn(net_b, _batches(2))
    for a, b in zip(batchnorm_layers(net_a), batchnorm_layers(net_b)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)


def test_no_batches_is_an_error_and_leaves_the_statistics():
    net = _net()
    before = [bn.running_mean.clone() for bn in batchnorm_layers(net)]
    with pytest.raises(ValueError, match="no batches"):
        precise_bn(net, [])
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(before, batchnorm_layers(net)))


def test_a_model_without_batchnorm_is_unchanged():
    net = nn.Sequential(nn.Conv2d(3, 2, 1))
    assert precise_bn(net, _batches(1)) == 0
