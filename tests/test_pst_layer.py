"""Tests for the PST layer (pst_yolo/pst.py): golden outputs, a naive reference, policy and export-related modes."""

from __future__ import annotations

import copy
import io
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(REPO))

from pst_yolo.pst import PST, PSAttn, PSAttnBlock  # noqa: E402

try:
    from pst_reference import randomize_, reference_psattn  # noqa: E402
except ImportError:  # tests/ imported as a package
    from tests.pst_reference import randomize_, reference_psattn  # noqa: E402

GOLDEN_DEFAULT = REPO.parent / "shared" / "fixtures" / "official_pst_golden.pt"

# (H, W, Hu, Wu): even, ceil-odd/rectangular and floor-odd cases
SHAPES = [(15, 21, 8, 11), (7, 9, 4, 5), (8, 8, 4, 4), (9, 9, 4, 4)]


def set_fused_attn(model: torch.nn.Module, fused: bool) -> None:
    for m in model.modules():
        if isinstance(m, PSAttn):
            m.fused_attn = fused


def make_attn(dim: int = 32, heads: int = 2, topk: int = 0, seed: int = 0, include_gate: bool = True) -> PSAttn:
    return randomize_(PSAttn(dim, heads, topk=topk), seed, include_gate=include_gate).eval()


def make_pst(k: int = 3, n: int = 2, seed: int = 0) -> PST:
    pst = randomize_(PST(48, 40, 64, n=n, k=k), seed).eval()  # hidden 32 -> one head of 32
    with torch.no_grad():  # output O(1) like real checkpoints, so absolute tolerances mean what they say
        pst.cv2.bn.weight.mul_(0.2)
        pst.cv2.bn.bias.mul_(0.2)
    return pst


def inputs(B: int, dim: int, H: int, W: int, Hu: int, Wu: int, seed: int = 1, dim_up: int | None = None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, dim, H, W, generator=g)
    upper = torch.randn(B, dim if dim_up is None else dim_up, Hu, Wu, generator=g)
    return x, upper


def fuse_like_ultralytics(model: torch.nn.Module) -> torch.nn.Module:
    """Fold BN into every Ultralytics Conv the way BaseModel.fuse() does."""
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    n_fused = 0
    for m in model.modules():
        if isinstance(m, Conv) and hasattr(m, "bn"):
            m.conv = fuse_conv_and_bn(m.conv, m.bn)
            delattr(m, "bn")
            m.forward = m.forward_fuse
            n_fused += 1
    assert n_fused > 0
    return model


class TwoInputs(torch.nn.Module):
    """PST takes one list argument; tracers and exporters want positional tensors."""

    def __init__(self, inner: PST) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.inner([a, b])


# --------------------------------------------------------------------------------------------------
# Golden fixture from the authors' implementation
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden():
    path = Path(os.environ.get("PST_GOLDEN", GOLDEN_DEFAULT))
    if not path.is_file():
        pytest.fail(f"golden fixture not found: looked at {path} (set PST_GOLDEN to override)")
    data = torch.load(path, weights_only=False)
    assert len(data["cases"]) > 0
    return data


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_golden_fixture(golden, fused):
    for i, case in enumerate(golden["cases"]):
        m = PST(case["c1"], case["c_up"], case["c2"], case["n"], case["mlp_ratio"], case["e"], k=0)
        m.load_state_dict(case["state_dict"], strict=True)
        m.eval()
        set_fused_attn(m, fused)
        with torch.no_grad():
            out_coarse = m([case["x"], case["upper"]])
            m.k = case["topk"]
            out_fine = m([case["x"], case["upper"]])
        assert out_coarse.shape == case["out_coarse"].shape
        torch.testing.assert_close(out_coarse, case["out_coarse"], atol=1e-5, rtol=0, msg=f"case {i} coarse")
        torch.testing.assert_close(out_fine, case["out_fine"], atol=1e-5, rtol=0, msg=f"case {i} fine")
        # the fine branch must actually matter in the fixture, otherwise the second check proves nothing
        assert (case["out_fine"] - case["out_coarse"]).abs().max() > 1e-3


# --------------------------------------------------------------------------------------------------
# Fast path vs naive reference
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("mode", ["eval", "train_fine"])
@pytest.mark.parametrize("k", [0, 3, "all"])
@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x{}x{}_up{}x{}".format(*s))
def test_psattn_matches_reference(shape, B, k, mode, fused):
    H, W, Hu, Wu = shape
    topk = Hu * Wu if k == "all" else k  # "all" selects every border patch, so masking is exercised
    m = make_attn(topk=topk, seed=H * 100 + W)
    m.fused_attn = fused
    if mode == "train_fine":
        m.train()
        m.fine_in_training = True
    x, upper = inputs(B, 32, H, W, Hu, Wu, seed=B)
    out = m(x, upper)
    ref = reference_psattn(m, x, upper, topk)
    assert out.shape == (B, 32, H, W)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


def test_reference_sees_fine_branch():
    """Guard: the fine branch changes the output, so matching the reference with k>0 is meaningful."""
    m = make_attn(topk=3)
    x, upper = inputs(2, 32, 15, 21, 8, 11)
    with torch.no_grad():
        fine = m(x, upper)
        m.topk = 0
        coarse = m(x, upper)
    assert (fine - coarse).abs().max() > 1e-3


def test_border_positions_are_masked_not_duplicated():
    """With every coarse token selected on a ceil-sized map, out-of-map positions must be left out.

    Duplicating the clamped border tokens instead would change the softmax weights.
    """
    m = make_attn(topk=8 * 11)
    x, upper = inputs(1, 32, 15, 21, 8, 11)
    with torch.no_grad():
        out = m(x, upper)
        ref = reference_psattn(m, x, upper, 8 * 11)
        # the reference itself: patch tokens covering each fine position exactly once == full attention over x
        assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------------
# Policy, clamping, errors
# --------------------------------------------------------------------------------------------------
def test_topk_larger_than_coarse_tokens_clamps_and_warns_once():
    m = make_attn(topk=100)
    x, upper = inputs(2, 32, 8, 8, 4, 4)  # M = 16
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with torch.no_grad():
            out1 = m(x, upper)
            out2 = m(x, upper)
    clamp_warnings = [w for w in rec if "topk" in str(w.message)]
    assert len(clamp_warnings) == 1, [str(w.message) for w in rec]
    m.topk = 16
    with torch.no_grad():
        expected = m(x, upper)
    assert torch.equal(out1, expected)
    assert torch.equal(out2, expected)


def test_hidden_width_not_multiple_of_32_raises():
    with pytest.raises(ValueError) as exc:
        PST(64, 64, 48)  # hidden int(48 * 0.5) = 24
    msg = str(exc.value)
    assert "c2=48" in msg and "e=0.5" in msg and "24" in msg and "32" in msg
    with pytest.raises(ValueError):
        PST(64, 64, 32, e=0.01)  # hidden 0
    PST(64, 64, 64)  # hidden 32 is fine


@pytest.mark.parametrize("up_hw", [(3, 4), (5, 4), (4, 3), (4, 5), (8, 8)])
def test_mismatched_upper_size_raises(up_hw):
    m = make_attn(topk=2)
    x, upper = inputs(1, 32, 8, 8, *up_hw)
    with pytest.raises(ValueError, match="half the size"):
        m(x, upper)
    pst = make_pst()
    with pytest.raises(ValueError, match="half the size"):
        pst([torch.randn(1, 48, 8, 8), torch.randn(1, 40, *up_hw)])


def test_train_mode_skips_fine_branch_by_default():
    m = make_attn(topk=4)
    m.train()
    assert m.fine_in_training is False
    calls = []
    m.gate_conv1d.register_forward_hook(lambda *_: calls.append(1))
    x, upper = inputs(2, 32, 8, 8, 4, 4)
    out_k = m(x, upper)
    assert calls == []
    m.topk = 0
    out_0 = m(x, upper)
    assert torch.equal(out_k, out_0)

    # opt in: the fine branch runs and the gate receives gradients
    m.topk = 4
    m.fine_in_training = True
    out_fine = m(x, upper)
    assert len(calls) == 1
    assert (out_fine - out_0).abs().max() > 1e-4
    out_fine.square().mean().backward()
    assert m.gate_conv1d.weight.grad is not None and m.gate_conv1d.weight.grad.abs().sum() > 0
    assert m.gate_conv1d.bias.grad is not None and m.gate_conv1d.bias.grad.abs().sum() > 0

    # in eval mode the fine branch runs regardless of fine_in_training
    m.eval()
    m.fine_in_training = False
    with torch.no_grad():
        m(x, upper)
    assert len(calls) == 2


def test_pst_properties_propagate():
    pst = make_pst(k=3, n=2)
    assert pst.k == 3
    assert (pst.c1, pst.c_up, pst.c2, pst.n, pst.mlp_ratio, pst.e) == (48, 40, 64, 2, 2.0, 0.5)
    pst.k = 7
    pst.fine_in_training = True
    blocks = [pst.attnlayer_0, pst.attnlayer_1]
    assert all(isinstance(b, PSAttnBlock) for b in blocks)
    assert [b.attn.topk for b in blocks] == [7, 7] and pst.k == 7
    assert [b.attn.fine_in_training for b in blocks] == [True, True] and pst.fine_in_training is True
    assert not hasattr(pst, "attnlayer_2")


def test_fine_output_is_deterministic():
    pst = make_pst(k=4)
    x, upper = torch.randn(2, 48, 15, 21), torch.randn(2, 40, 8, 11)
    with torch.no_grad():
        a = pst([x, upper])
        b = pst([x, upper])
    assert torch.equal(a, b)


def test_fresh_gate_is_even_blend():
    m = PSAttn(32, 2, topk=4)
    assert torch.count_nonzero(m.gate_conv1d.weight) == 0
    assert torch.count_nonzero(m.gate_conv1d.bias) == 0
    randomize_(m, seed=3, include_gate=False).eval()  # random projections, untouched gate
    x, upper = inputs(2, 32, 7, 9, 4, 5)
    with torch.no_grad():
        out = m(x, upper)
        blend = reference_psattn(m, x, upper, 4, gate_value=0.5)
        coarse = reference_psattn(m, x, upper, 0)
    torch.testing.assert_close(out, blend, atol=1e-4, rtol=0)
    assert (out - coarse).abs().max() > 1e-3


def test_fresh_conv_init():
    m = PSAttnBlock(64, 2, topk=2)
    convs = {n: getattr(m.attn, n).conv.weight for n in ("q", "kv", "proj", "pe")}
    convs["mlp0"], convs["mlp1"] = m.mlp[0].conv.weight, m.mlp[1].conv.weight
    for name, w in convs.items():
        assert 0.015 < w.std().item() < 0.025, name  # trunc_normal_(std=0.02), not the default kaiming init


# --------------------------------------------------------------------------------------------------
# Inference modes, fusion, tracing
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 3])
def test_no_grad_and_inference_mode(k):
    pst = make_pst(k=k)
    x, upper = torch.randn(1, 48, 15, 21), torch.randn(1, 40, 8, 11)
    out = pst([x, upper])
    with torch.no_grad():
        out_ng = pst([x, upper])
    with torch.inference_mode():
        out_im = pst([x, upper])
    torch.testing.assert_close(out_ng, out.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(out_im, out.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("k", [0, 3])
def test_fused_conv_bn_matches(k, fused):
    pst = make_pst(k=k)
    set_fused_attn(pst, fused)
    x, upper = torch.randn(2, 48, 9, 9), torch.randn(2, 40, 4, 4)
    with torch.no_grad():
        ref = pst([x, upper])
        fused_model = fuse_like_ultralytics(copy.deepcopy(pst))
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused_model.modules())
        out = fused_model([x, upper])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:.*torch.jit.trace.*:FutureWarning")
def test_jit_trace_fine_branch():
    """Tracing (what ONNX export does) must reproduce the eager fine output for the traced shape."""
    pst = make_pst(k=3)
    x, upper = torch.randn(1, 48, 15, 21), torch.randn(1, 40, 8, 11)

    w = TwoInputs(pst).eval()
    with torch.no_grad():
        traced = torch.jit.trace(w, (x, upper), check_trace=False)
        x2, up2 = torch.randn(1, 48, 15, 21), torch.randn(1, 40, 8, 11)  # new values -> new top-k selection
        torch.testing.assert_close(traced(x2, up2), w(x2, up2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_onnx_export_fine_branch(fused):
    """Legacy (TorchScript) ONNX export, the exporter Ultralytics uses, handles the fine branch."""
    onnx = pytest.importorskip("onnx")

    pst = make_pst(k=3, n=1)
    set_fused_attn(pst, fused)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / deprecation chatter
        torch.onnx.export(TwoInputs(pst).eval(), (torch.randn(1, 48, 7, 9), torch.randn(1, 40, 4, 5)), buf,
                          opset_version=17, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert {"TopK", "GatherElements", "Sigmoid"} <= ops
