"""Tests for the PST layer (pst_yolo/nn/pst.py): golden outputs, a naive reference, policy and export-related modes."""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import pytest
import torch

from helpers import FIXTURES
from pst_reference import randomize_, reference_psattn
from pst_yolo.nn.pst import PST, PSAttn, PSAttnBlock
from pst_yolo.nn.reference import plain_psattn, plain_pst

GOLDEN_DEFAULT = FIXTURES / "official_pst_golden.pt"

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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ort_session(model_bytes: bytes):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


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
# Every shape with batch 2; batch 1 on two of them (the batch dimension is not special-cased anywhere).
SHAPE_BATCH = [(s, 2) for s in SHAPES] + [(SHAPES[0], 1), (SHAPES[3], 1)]


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("mode", ["eval", "train_fine"])
@pytest.mark.parametrize("k", [0, 3, "all"])
@pytest.mark.parametrize("shape,B", SHAPE_BATCH, ids=["x{}x{}_up{}x{}_B{}".format(*s, b) for s, b in SHAPE_BATCH])
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
        torch.onnx.export(
            TwoInputs(pst).eval(),
            (torch.randn(1, 48, 7, 9), torch.randn(1, 40, 4, 5)),
            buf,
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert {"TopK", "GatherElements", "Sigmoid"} <= ops


# --------------------------------------------------------------------------------------------------
# Fast paths vs the plain formulation (tests/pst_reference.py: plain_psattn, plain_pst)
# --------------------------------------------------------------------------------------------------
# The plain formulation is the speed baseline of scripts/bench_pst_layer.py; it is itself checked
# against the naive loop reference first, then every fast path of PSAttn against it.
PLAIN_CASES = [  # (H, W, Hu, Wu, heads, k)
    (15, 21, 8, 11, 2, 0),
    (15, 21, 8, 11, 2, 5),
    (7, 9, 4, 5, 1, "all"),  # ceil-odd: border patches masked
    (9, 9, 4, 4, 2, 3),  # floor-odd: the last row/column of x is never a fine token
    (8, 8, 4, 4, 1, 2),
]
PLAIN_IDS = ["x{}x{}_up{}x{}_h{}_k{}".format(*c) for c in PLAIN_CASES]


def _k(k, Hu, Wu):
    return Hu * Wu if k == "all" else k


@pytest.mark.parametrize("mode", ["eval", "train_fine"])
@pytest.mark.parametrize("case", PLAIN_CASES, ids=PLAIN_IDS)
def test_plain_formulation_matches_reference(case, mode):
    H, W, Hu, Wu, heads, k = case
    topk = _k(k, Hu, Wu)
    m = make_attn(heads=heads, topk=topk, seed=7)
    if mode == "train_fine":
        m.train()
    x, upper = inputs(2, 32, H, W, Hu, Wu, seed=3)
    torch.testing.assert_close(plain_psattn(m, x, upper, topk), reference_psattn(m, x, upper, topk), atol=1e-4, rtol=0)


def _fold_bn(m: torch.nn.Module) -> torch.nn.Module:
    return fuse_like_ultralytics(copy.deepcopy(m))


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("variant", ["eval_bn", "eval_folded", "train_fine", "train_coarse"])
@pytest.mark.parametrize("case", PLAIN_CASES, ids=PLAIN_IDS)
def test_fast_paths_match_plain(case, variant, fused):
    """Each combination of attention kernel (SDPA / explicit), fine projection (gathered tokens through the
    BN-folded affine map / through BN with running statistics / the whole map in train mode) and mode."""
    H, W, Hu, Wu, heads, k = case
    topk = _k(k, Hu, Wu)
    m = make_attn(heads=heads, topk=topk, seed=11)
    if variant == "eval_folded":
        m = _fold_bn(m)
    if variant.startswith("train"):
        m.train()
        m.fine_in_training = variant == "train_fine"
    m.fused_attn = fused
    k_eff = topk if (variant.startswith("eval") or variant == "train_fine") else 0
    x, upper = inputs(2, 32, H, W, Hu, Wu, seed=5)
    plain_m = copy.deepcopy(m)  # train-mode BN updates its running statistics: give each side its own
    out = m(x, upper)
    ref = plain_psattn(plain_m, x, upper, k_eff)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    if variant.startswith("train"):  # same side effects: running statistics updated alike
        torch.testing.assert_close(m.kv.bn.running_mean, plain_m.kv.bn.running_mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(m.kv.bn.running_var, plain_m.kv.bn.running_var, atol=1e-6, rtol=0)


def test_fine_projection_of_gathered_tokens_equals_full_map():
    """Eval mode projects only the 4k gathered fine tokens; forcing the whole-map path gives the same output."""
    m = make_attn(heads=2, topk=6, seed=2)
    x, upper = inputs(2, 32, 15, 21, 8, 11)
    assert m._kv_affine() is not None
    with torch.no_grad():
        fast = m(x, upper)
        full_m = copy.deepcopy(m)
        full_m._kv_affine = lambda: None  # instance override: the whole-map projection
        full = full_m(x, upper)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=0)
    assert (fast - make_attn(heads=2, topk=0, seed=2)(x, upper)).abs().max() > 1e-3  # fine branch matters

    # with BN normalising by batch statistics the projection is not per-position: no shortcut
    m.train()
    assert m._kv_affine() is None
    m.eval()
    m.kv.bn.train()
    assert m._kv_affine() is None
    # folded (Ultralytics fuse): the conv's own weight and bias
    folded = _fold_bn(m.eval())
    w, b = folded._kv_affine()
    assert torch.equal(w, folded.kv.conv.weight.flatten(1)) and torch.equal(b, folded.kv.conv.bias)


@pytest.mark.parametrize("k", [0, 3])
def test_train_gradients_match_plain(k):
    """Backward through the fast path (SDPA kernel, contiguous layouts) equals backward through the plain one."""
    m = make_attn(heads=2, topk=k, seed=4).train()
    m.fine_in_training = True
    plain_m = copy.deepcopy(m)
    x, upper = inputs(2, 32, 15, 21, 8, 11)
    xs = [x.clone().requires_grad_(True), upper.clone().requires_grad_(True)]
    xp = [x.clone().requires_grad_(True), upper.clone().requires_grad_(True)]
    m(*xs).square().mean().backward()
    plain_psattn(plain_m, *xp, k).square().mean().backward()
    for a, b in zip(xs, xp):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4)
    n_checked = 0
    for (name, p), (_, q) in zip(m.named_parameters(), plain_m.named_parameters()):
        if q.grad is None:
            assert p.grad is None or not p.grad.any(), name
            continue
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)
        n_checked += 1
    assert n_checked >= 10  # q, kv, proj, pe convs and BNs (+ the gate when k > 0)


@pytest.mark.parametrize("case", ["eval_k3", "eval_k0_odd", "train_fine"])
def test_sdpa_runs_the_fused_cpu_kernel(case):
    """With fused_attn the attention must reach PyTorch's fused CPU kernel, not SDPA's unfused math fallback
    (which materialises the N x M matrix): the kernel needs last-dim-contiguous q, k, v."""
    kernel = "_scaled_dot_product_flash_attention_for_cpu"
    if not hasattr(torch.ops.aten, kernel):
        pytest.skip(f"this torch has no aten.{kernel}")
    m = make_attn(heads=2, topk=0 if case == "eval_k0_odd" else 3)
    x, upper = inputs(1, 32, 15, 21, 8, 11) if case == "eval_k0_odd" else inputs(1, 32, 8, 8, 4, 4)
    if case == "train_fine":
        m.train()
        m.fine_in_training = True
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        m(x, upper)
    names = [e.name for e in prof.events()]
    expected_calls = 1 if case == "eval_k0_odd" else 2  # coarse (+ fine)
    assert names.count(f"aten::{kernel}") == expected_calls, sorted(set(names))
    assert not any("_scaled_dot_product_attention_math" in n for n in names)


@pytest.mark.parametrize("mode", ["eval_folded", "train_fine"])
def test_plain_pst_matches_layer(mode):
    """The benchmark's plain PST layer (plain_pst) computes what the layer computes."""
    pst = make_pst(k=3, n=2)
    if mode == "eval_folded":
        pst = _fold_bn(pst)
    else:
        pst.train()
        pst.fine_in_training = True
    plain = copy.deepcopy(pst)
    x, upper = torch.randn(2, 48, 15, 21), torch.randn(2, 40, 8, 11)
    torch.testing.assert_close(pst([x, upper]), plain_pst(plain, x, upper), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------------
# ONNX: same numbers in ONNX Runtime
# --------------------------------------------------------------------------------------------------
def _export(pst: PST, x, upper, dynamic: bool = False, opset: int = 18) -> bytes:
    buf = io.BytesIO()
    axes = {"x": {0: "b", 2: "h", 3: "w"}, "up": {0: "b", 2: "hu", 3: "wu"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / deprecation chatter
        torch.onnx.export(
            TwoInputs(pst).eval(),
            (x, upper),
            buf,
            opset_version=opset,
            dynamo=False,
            input_names=["x", "up"],
            output_names=["y"],
            dynamic_axes=axes,
        )
    return buf.getvalue()


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("k", [0, 3])
def test_onnx_runtime_matches_eager(k, fused):
    """The exported layer (Ultralytics' exporter settings: TorchScript-based, opset 18, BN folded) gives the
    eager numbers in ONNX Runtime, for k = 0 and k > 0, at the export size and -- exported with dynamic
    axes -- at other even, ceil-odd and floor-odd sizes."""
    pst = _fold_bn(make_pst(k=k, n=2))
    set_fused_attn(pst, fused)
    sess = _ort_session(_export(pst, torch.randn(1, 48, 15, 21), torch.randn(1, 40, 8, 11), dynamic=True))
    for B, H, W, Hu, Wu in [(1, 15, 21, 8, 11), (2, 9, 9, 5, 5), (2, 8, 8, 4, 4), (1, 9, 9, 4, 4)]:
        x, upper = inputs(B, 48, H, W, Hu, Wu, seed=H, dim_up=40)
        with torch.no_grad():
            ref = pst([x, upper]).numpy()
        out = sess.run(None, {"x": x.numpy(), "up": upper.numpy()})[0]
        assert out.shape == ref.shape
        assert abs(out - ref).max() <= 1e-4, (B, H, W, Hu, Wu, abs(out - ref).max())


@pytest.mark.parametrize("how", ["attribute", "env"])
@pytest.mark.parametrize("k", [0, 3])
def test_onnx_ort_attention_matches_eager(k, how, monkeypatch):
    """Opt-in export of the coarse attention as com.microsoft::MultiHeadAttention: same numbers in ONNX
    Runtime (dynamic axes, odd sizes included), and the standard export stays free of it."""
    onnx = pytest.importorskip("onnx")
    pst = _fold_bn(make_pst(k=k, n=2))
    x0, up0 = torch.randn(1, 48, 15, 21), torch.randn(1, 40, 8, 11)
    standard = onnx.load_from_string(_export(pst, x0, up0))
    assert not any(n.domain == "com.microsoft" for n in standard.graph.node)
    if how == "env":
        monkeypatch.setenv("PST_ONNX_ATTENTION", "ort")
    else:
        for m in pst.modules():
            if isinstance(m, PSAttn):
                m.onnx_attention = "ort"
    blob = _export(pst, x0, up0, dynamic=True)
    ops = [n.op_type for n in onnx.load_from_string(blob).graph.node]
    assert ops.count("MultiHeadAttention") == 2  # one per block
    sess = _ort_session(blob)
    for B, H, W, Hu, Wu in [(1, 15, 21, 8, 11), (2, 9, 9, 5, 5), (2, 8, 8, 4, 4)]:
        x, upper = inputs(B, 48, H, W, Hu, Wu, seed=H, dim_up=40)
        with torch.no_grad():
            ref = pst([x, upper]).numpy()  # eager is unaffected by the export setting
        out = sess.run(None, {"x": x.numpy(), "up": upper.numpy()})[0]
        assert abs(out - ref).max() <= 1e-4, (B, H, W, Hu, Wu, abs(out - ref).max())


def test_chunked_attention_equals_one_attention():
    """The query slices (unequal: 37 queries in slices of 10) give one attention's numbers (float64), and the
    chunk count keeps each slice's score matrix within the budget."""
    from pst_yolo.nn.onnx_export import chunked_attention, query_chunks

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 32, generator=g, dtype=torch.float64) for n in (37, 11, 11))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    for chunks in (1, 2, 4, 37):
        torch.testing.assert_close(chunked_attention(q, k, v, chunks), ref, rtol=0, atol=1e-12)
    for heads, n, m, budget in [(1, 6400, 1600, 4 << 20), (4, 6400, 1600, 4 << 20), (2, 315, 88, 20000), (1, 8, 8, 1)]:
        chunks = query_chunks(heads, n, m, budget)
        assert 1 <= chunks <= n
        assert chunks == n or heads * -(-n // chunks) * m * 4 <= budget  # a slice's fp32 scores fit
        assert chunks == 1 or heads * -(-n // (chunks - 1)) * m * 4 > budget  # and no fewer slices would


@pytest.mark.parametrize("k", [0, 3])
def test_onnx_chunked_attention_matches_eager(k, monkeypatch):
    """Standard ONNX attention with a score budget that splits the queries (315 into unequal slices): one
    Softmax per slice in the graph, and the eager numbers in ONNX Runtime."""
    onnx = pytest.importorskip("onnx")
    import pst_yolo.nn.onnx_export as onnx_export

    pst = _fold_bn(make_pst(k=k, n=2))
    x, upper = inputs(1, 48, 15, 21, 8, 11, seed=5, dim_up=40)
    monkeypatch.setattr(onnx_export, "SCORE_CHUNK_BYTES", 20000)
    chunks = onnx_export.query_chunks(1, 15 * 21, 8 * 11)
    slices = len(range(0, 15 * 21, -(-15 * 21 // chunks)))
    assert slices > 2 and (15 * 21) % slices
    blob = _export(pst, x, upper)
    ops = [n.op_type for n in onnx.load_from_string(blob).graph.node]
    assert ops.count("Softmax") == 2 * (slices + (k > 0))  # two blocks: the slices, and the fine branch's
    with torch.no_grad():
        ref = pst([x, upper]).numpy()
    out = _ort_session(blob).run(None, {"x": x.numpy(), "up": upper.numpy()})[0]
    assert abs(out - ref).max() <= 1e-4


def test_onnx_attention_mode_is_validated(monkeypatch):
    pst = make_pst(k=0, n=1)
    monkeypatch.setenv("PST_ONNX_ATTENTION", "tensorrt")
    with torch.no_grad():
        pst([torch.randn(1, 48, 8, 8), torch.randn(1, 40, 4, 4)])  # eager never reads it
    with pytest.raises(ValueError, match="standard, ort"):
        _export(pst, torch.randn(1, 48, 8, 8), torch.randn(1, 40, 4, 4))
