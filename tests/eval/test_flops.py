"""pst_yolo.flops: every count checked against a hand calculation from the shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pst_yolo
from pst_yolo.eval.flops import FlopCounter, count_flops


def _count(fn, *args) -> tuple[int, int]:
    with torch.no_grad(), FlopCounter() as c:
        fn(*args)
    return c.conv, c.matmul


def test_convolutions_odd_shapes_groups_and_transposed():
    x = torch.rand(2, 6, 7, 5)
    conv = nn.Conv2d(6, 4, (3, 2), stride=(2, 1), padding=1, groups=2)  # out [2, 4, 4, 6]
    assert _count(conv, x) == (2 * (2 * 4 * 4 * 6) * (3 * 3 * 2), 0)
    up = nn.ConvTranspose2d(6, 8, 2, stride=2)  # each of 2*6*7*5 inputs feeds 8*2*2 outputs
    assert _count(up, x) == (2 * (2 * 6 * 7 * 5) * (8 * 2 * 2), 0)
    c1 = nn.Conv1d(6, 3, 1)
    assert _count(c1, torch.rand(1, 6, 11)) == (2 * 3 * 11 * 6, 0)


def test_matrix_products_linear_einsum_and_attention():
    a, b = torch.rand(3, 5, 7), torch.rand(3, 7, 2)
    assert _count(lambda: a @ b) == (0, 2 * 3 * 5 * 2 * 7)
    assert _count(torch.matmul, a, b) == (0, 2 * 3 * 5 * 2 * 7)
    assert _count(torch.bmm, a, b) == (0, 2 * 3 * 5 * 2 * 7)
    assert _count(nn.Linear(7, 4), torch.rand(2, 3, 7)) == (0, 2 * 2 * 3 * 4 * 7)
    q, k = torch.rand(2, 4, 6, 8), torch.rand(2, 9, 6, 8)  # b n m c, b k m c
    assert _count(torch.einsum, "bnmc,bkmc->bmnk", q, k) == (0, 2 * 2 * 4 * 6 * 8 * 9)
    assert _count(torch.einsum, "...ij,...jk->...ik", a, b) == (0, 2 * 3 * 5 * 7 * 2)
    # attention: q [B, h, L, E], k [B, h, S, E], v [B, h, S, Ev]; a mask costs nothing
    q, k, v = torch.rand(2, 3, 10, 4), torch.rand(2, 3, 6, 4), torch.rand(2, 3, 6, 5)
    expected = 2 * 2 * 3 * 10 * 6 * (4 + 5)
    assert _count(F.scaled_dot_product_attention, q, k, v) == (0, expected)
    mask = torch.zeros(1, 1, 10, 6)
    assert _count(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)) == (0, expected)
    # elementwise work is not counted
    assert _count(lambda: (q.softmax(-1) * 2).sigmoid()) == (0, 0)


def test_nested_calls_are_counted_once():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2), nn.Conv2d(4, 2, 1))
    conv, mm = _count(model, torch.rand(1, 3, 5, 5))
    assert (conv, mm) == (2 * 4 * 25 * 27 + 2 * 2 * 100 * 4, 0)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_pst_layer_count_matches_hand_calculation(fused):
    """One PST layer at P3 of a 64 px yolo11n (x 64x8x8 -> 1 head of 32; upper 4x4): the attention
    products are the same whichever implementation runs (SDPA or explicit matmul-softmax-matmul)."""
    layer = pst_yolo.PST(c1=64, c_up=128, c2=64, n=1, e=0.5, k=0).eval()
    for m in layer.modules():
        if isinstance(m, pst_yolo.PSAttn):
            m.fused_attn = fused
    x, upper = torch.rand(1, 64, 8, 8), torch.rand(1, 128, 4, 4)
    N, M, d, h, C = 64, 16, 32, 1, 32
    coarse = 4 * N * M * d * h
    _, mm0 = _count(layer, [x, upper])
    assert mm0 == coarse
    layer.k = 3
    _, mm3 = _count(layer, [x, upper])
    T = 4 * 3  # 2x2 fine tokens under each of the k coarse tokens
    fine = 2 * M * d * h + 4 * N * T * d * h + 2 * T * C * 2 * d * h  # score, fine attention, gathered kv
    assert mm3 == coarse + fine


def test_count_flops_of_models_restores_mode_and_includes_pst_attention():
    from ultralytics.nn.tasks import DetectionModel

    stock = DetectionModel("yolo11n.yaml", verbose=False)
    pst = DetectionModel("yolo11n-pst.yaml", verbose=False)
    pst.train()
    pst_yolo.set_topk(pst, 0)
    s, p = count_flops(stock, 64), count_flops(pst, 64)
    assert pst.training  # mode restored
    # at 64 px the two PST layers add 4*N*M*d*heads of coarse attention (P3: N=64, M=16, 1 head;
    # P4: N=16, M=4, 2 heads; d=32) to the stock model's own attention (C2PSA)
    assert p.matmul - s.matmul == 4 * 64 * 16 * 32 * 1 + 4 * 16 * 4 * 32 * 2
    assert s.conv > 0 and p.conv > 0
