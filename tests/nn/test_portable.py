"""The attention in export converters' forms (pst_yolo/nn/portable.py) against the default path.

The top-k/gather-free fine branch and the sliced keys/values must compute what ``PSAttn`` computes
(float64, so only a different selection could make a visible difference), for even, odd and
rectangular maps, in eval and train mode; its top-k must pick torch.topk's tokens, and on exact ties
the lower index, as ONNX's TopK does.
"""

from __future__ import annotations

import pytest
import torch

from pst_reference import randomize_
from pst_yolo.nn.portable import (
    PortablePSAttn,
    SlicedKVPortablePSAttn,
    SlicedKVPSAttn,
    StridedPortablePSAttn,
    export_attention_class,
    swap_attention,
    topk_onehot,
    use_portable_fine_branch,
)
from pst_yolo.nn.pst import PST, PSAttn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_pst(c2: int = 128, k: int = 5, seed: int = 0) -> PST:
    """PST(48, 40, c2, n=2) with every weight, the gate and BatchNorm statistics random at O(1) scale."""
    return randomize_(PST(48, 40, c2, n=2, k=k), seed).eval()


def _attention_layers(model: torch.nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, PSAttn)]


# (H, W, Hu, Wu): even; ceil-odd (Hu = ceil(H/2)) and rectangular; floor-odd; larger; k = 5 of 9 coarse tokens
SHAPES = [(8, 8, 4, 4), (7, 9, 4, 5), (7, 9, 3, 4), (16, 12, 8, 6), (5, 5, 3, 3)]


@pytest.mark.parametrize("strided", [False, True], ids=["unshuffle", "strided"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_portable_fine_branch_equals_default(shape, strided, monkeypatch):
    """Same output as the default fine branch, 4 heads, 2 blocks, in float64 (a border patch cut by
    an odd size included), with the patches taken either way (the strided form never calls pixel_unshuffle,
    which coremltools cannot convert); the fine branch moves the output far more than the bound."""
    H, W, Hu, Wu = shape
    if strided:
        monkeypatch.setattr(torch.nn.functional, "pixel_unshuffle", lambda *a, **kw: pytest.fail("pixel_unshuffle"))
    pst = _random_pst(c2=256, k=5).double()  # hidden 128: 4 heads of 32
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 48, H, W, generator=g, dtype=torch.float64)
    up = torch.randn(2, 40, Hu, Wu, generator=g, dtype=torch.float64)
    with torch.no_grad():
        ref = pst([x, up])
        cls = export_attention_class(True, False, strided_patches=strided)
        assert cls is (StridedPortablePSAttn if strided else PortablePSAttn)
        with use_portable_fine_branch(pst) as n:
            assert n == 2 and all(type(m) is PortablePSAttn for m in _attention_layers(pst))
            swap_attention(pst, cls)
            out = pst([x, up])
        assert all(type(m) is PSAttn for m in _attention_layers(pst))  # restored
        pst.k = 0
        coarse = pst([x, up])
    scale = ref.abs().max()
    assert (out - ref).abs().max() <= 1e-10 * scale
    assert (ref - coarse).abs().max() > 1e-2 * scale  # the fine branch changes the output: the check can see it


def test_portable_fine_branch_equals_default_in_train_mode_and_fp32():
    """Fine-aware training (train-mode BatchNorm: the whole map is projected, then picked) and float32."""
    pst = _random_pst(k=3)
    pst.fine_in_training = True
    g = torch.Generator().manual_seed(2)
    x, up = torch.randn(2, 48, 8, 10, generator=g), torch.randn(2, 40, 4, 5, generator=g)
    for train in (True, False):
        pst.train(train)
        ref = pst([x, up])
        with use_portable_fine_branch(pst):
            out = pst([x, up])
        assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("portable", [False, True])
def test_sliced_kv_equals_default(portable):
    """LiteRT's variant (keys/values sliced before the transpose) computes the same, at k = 0 and k > 0,
    alone and combined with the portable fine branch."""
    pst = _random_pst(c2=256).double()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 48, 9, 8, generator=g, dtype=torch.float64)
    up = torch.randn(1, 40, 5, 4, generator=g, dtype=torch.float64)
    cls = export_attention_class(portable, sliced_kv=True)
    assert cls is (SlicedKVPortablePSAttn if portable else SlicedKVPSAttn)
    for k in (0, 4):
        pst.k = k
        with torch.no_grad():
            ref = pst([x, up])
            assert len(swap_attention(pst, cls)) == 2
            out = pst([x, up])
            swap_attention(pst, PSAttn)
        assert (out - ref).abs().max() <= 1e-10 * ref.abs().max()


def test_export_attention_class_default_is_plain_psattn():
    assert export_attention_class(False, False) is PSAttn
    assert export_attention_class(True, False) is PortablePSAttn


def test_topk_onehot_matches_torch_topk():
    g = torch.Generator().manual_seed(0)
    for M, width, k in [(16, 4, 8), (20, 5, 1), (63, 9, 63), (400, 20, 16)]:
        s = torch.randn(3, 2, M, generator=g)  # no ties (continuous)
        onehot = topk_onehot(s, k, width)
        assert onehot.shape == (3, 2, k, M)
        assert torch.equal(onehot.sum(-1), torch.ones(3, 2, k))  # one 1 per row
        assert torch.equal(onehot.argmax(-1), s.topk(k, dim=-1).indices)  # same tokens, same order


def test_topk_onehot_ties_go_to_the_lower_index_like_onnx_topk():
    """Exact ties (uniform image regions give equal keys) go to the lower index: ONNX TopK's rule,
    which ONNX Runtime follows. (torch.topk on CPU picks no fixed index among ties.)"""
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 4, (4, 3, 48), generator=g).float()  # many ties
    k, width = 10, 8
    picked = topk_onehot(s, k, width).argmax(-1)
    stable = torch.sort(s, dim=-1, descending=True, stable=True).indices[..., :k]
    assert torch.equal(picked, stable)
    ort = pytest.importorskip("onnxruntime", reason='ONNX Runtime: pip install "pst-yolo[export]"')
    pytest.importorskip("onnx", reason='onnx: pip install "pst-yolo[export]"')
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("TopK", ["s", "k"], ["v", "i"], axis=-1)],
        "topk",
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, list(s.shape)),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("i", TensorProto.INT64, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_idx = sess.run(["i"], {"s": s.numpy(), "k": [k]})[0]
    assert torch.equal(picked, torch.from_numpy(onnx_idx))


def test_topk_onehot_rejects_bad_arguments():
    with pytest.raises(ValueError, match="0 < k <= 16"):
        topk_onehot(torch.zeros(1, 16), 17, 4)
    with pytest.raises(ValueError, match="divisible by width 5"):
        topk_onehot(torch.zeros(1, 16), 2, 5)
