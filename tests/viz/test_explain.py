"""Attention pictures: the recorded fine-branch selection, its geometry, and `pst-yolo explain`.

The selection the hooks record is checked against the layer itself: the PSAttn output recomputed
from the recorded top-k (an independent plain formulation, below) must equal what the layer
returned, and a different selection must not.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pst_yolo
from pst_yolo.cli import main
from pst_yolo.integration.model_parsing import cfg_dir
from pst_yolo.viz.attention_maps import PANEL_GAP, LayerSelection, SelectionRecorder, letterbox_geometry, patch_boxes
from pst_yolo.viz.detector import Detector
from pst_yolo.viz.explain import explain

IMGSZ = 128


# ------------------------------------------------------------------------------------------------
# An independent oracle: PSAttn's output for a GIVEN selection
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """O(1) random weights and BN statistics everywhere, so the fine branch and the gate matter."""
    g = torch.Generator().manual_seed(seed)
    for mod in module.modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)):
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / math.sqrt(mod.weight[0].numel()))
            if mod.bias is not None:
                mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
        elif isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
            mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
            mod.running_mean.copy_(0.2 * torch.randn(mod.running_mean.shape, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
    return module


@torch.no_grad()
def psattn_given_selection(m, x, upper, idx):
    """PSAttn forward where the fine branch attends to the 2x2 patches under the coarse tokens ``idx``
    ([B, heads, k] flat indices r*Wu+c; patch cells outside the fine map are left out)."""
    B, C, H, W = x.shape
    Hu, Wu = upper.shape[-2:]
    h = m.num_heads
    d = C // h
    q = m.q(x).reshape(B, h, d, H * W).transpose(-2, -1)  # [B, h, N, d]
    kv_up = m.kv(upper).reshape(B, h, 2 * d, Hu * Wu)
    k_up, v_up = kv_up[:, :, :d].transpose(-2, -1), kv_up[:, :, d:].transpose(-2, -1)
    coarse = ((q @ k_up.transpose(-2, -1)) / math.sqrt(d)).softmax(-1) @ v_up
    out = coarse.clone()
    if idx.shape[-1] > 0:
        kv_x = m.kv(x).reshape(B, h, 2 * d, H * W)
        for b in range(B):
            for hh in range(h):
                pos = []
                for t in idx[b, hh].tolist():
                    r, c = divmod(int(t), Wu)
                    pos += [
                        (2 * r + i) * W + 2 * c + j for i in (0, 1) for j in (0, 1) if 2 * r + i < H and 2 * c + j < W
                    ]
                kf, vf = kv_x[b, hh, :d, pos].T, kv_x[b, hh, d:, pos].T
                refined = ((q[b, hh] @ kf.T) / math.sqrt(d)).softmax(-1) @ vf  # [N, d]
                gin = torch.cat([coarse[b, hh], refined], dim=-1).T[None]  # [1, 2d, N]
                gate = m.gate_conv1d(gin)[0].T.sigmoid()  # [N, d]
                out[b, hh] = gate * refined + (1 - gate) * coarse[b, hh]
    v_map = v_up.transpose(-2, -1).reshape(B, C, Hu, Wu)
    pe = F.interpolate(m.pe(v_map), size=(H, W), mode="bilinear", align_corners=False)
    return m.proj(out.transpose(-2, -1).reshape(B, C, H, W) + pe)


@pytest.mark.parametrize("hw,k", [((9, 11), 5), ((8, 12), 3)])  # ceil-sized (patches cut at the border) and even
def test_recorded_topk_is_the_selection_the_layer_uses(hw, k):
    torch.manual_seed(0)
    layer = _randomize(pst_yolo.PST(c1=48, c_up=40, c2=64, n=2, mlp_ratio=2.0, e=1.0, k=k), seed=1).eval()
    H, W = hw
    x = torch.randn(2, 48, H, W)
    upper = torch.randn(2, 40, (H + 1) // 2, (W + 1) // 2)

    seen = []  # the blocks' own inputs and outputs, captured independently of the recorder
    handles = [
        getattr(layer, f"attnlayer_{i}").attn.register_forward_hook(
            lambda mod, args, out: seen.append((mod, args[0].clone(), args[1].clone(), out.clone()))
        )
        for i in range(2)
    ]
    with SelectionRecorder(layer) as rec, torch.no_grad():
        layer([x, upper])
    for h in handles:
        h.remove()

    assert len(rec.selections) == len(seen) == 2
    for sel, (mod, xb, ub, out) in zip(rec.selections, seen):
        assert sel.k == k and sel.heads == mod.num_heads == 2
        idx = torch.from_numpy(sel.indices)
        assert idx.shape == (2, 2, k)
        # 1) the recorded top-k is the top-k of the mean over ALL queries of the full N x M logit matrix
        Bn, C = xb.shape[:2]
        d = C // mod.num_heads
        with torch.no_grad():
            q = mod.q(xb).reshape(Bn, 2, d, -1).transpose(-2, -1)
            kk = mod.kv(ub).reshape(Bn, 2, 2 * d, -1)[:, :, :d].transpose(-2, -1)
            naive = ((q @ kk.transpose(-2, -1)) / math.sqrt(d)).mean(dim=2)  # [B, h, M]
        for b in range(2):
            for hh in range(2):
                assert set(idx[b, hh].tolist()) == set(naive[b, hh].topk(k).indices.tolist())
        np.testing.assert_allclose(sel.score.reshape(2, 2, -1), naive.numpy(), rtol=1e-4, atol=1e-5)
        # 2) the layer's output is the one for exactly this selection ...
        torch.testing.assert_close(out, psattn_given_selection(mod, xb, ub, idx), atol=1e-4, rtol=1e-4)
        # ... and not the one for another selection (so this check can fail)
        worst = naive.topk(k, dim=-1, largest=False).indices
        assert (out - psattn_given_selection(mod, xb, ub, worst)).abs().max() > 1e-3


def test_recorder_off_records_shapes_only_and_k0_selects_nothing():
    layer = _randomize(pst_yolo.PST(c1=32, c_up=32, c2=32, n=1, e=1.0, k=4), seed=2).eval()
    x, upper = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)
    with SelectionRecorder(layer, enabled=False) as rec, torch.no_grad():
        layer([x, upper])
        assert rec.selections[0].score is None and rec.selections[0].coarse_hw == (4, 4)
        assert rec.min_coarse_tokens() == 16
        rec.enabled = True
        pst_yolo.set_topk(layer, 0)
        layer([x, upper])
    sel = rec.selections[0]
    assert sel.k == 0 and sel.indices.shape == (1, 1, 0) and sel.score.shape == (1, 1, 4, 4)
    assert sel.fine_patches().shape == (0, 4)
    layer([x, upper])  # hooks removed on exit: nothing recorded any more
    assert len(rec.selections) == 1


def test_patch_geometry_maps_2x2_fine_cells_to_original_pixels():
    # fine 7x9 (stride 8 in a 56x72 input), coarse 4x5: token (3, 4) is cut at both borders
    sel = LayerSelection("16", 0, 2, (7, 9), (4, 5), 1, input_hw=(56, 72), indices=np.array([[[0 * 5 + 1, 3 * 5 + 4]]]))
    assert sel.fine_patches().tolist() == [[0, 2, 2, 4], [6, 8, 7, 9]]
    # the original image was 112x144 (letterboxed by 1/2 into 56x72 exactly: no padding)
    assert letterbox_geometry((56, 72), (112, 144)) == (0.5, 0.5, 0, 0, 56, 72)
    boxes = patch_boxes(sel, (112, 144))
    np.testing.assert_allclose(boxes, [[32, 0, 64, 32], [128, 96, 144, 112]])
    # a 100x144 original is letterboxed with 3 px of padding at the top and bottom of the 56x72 input
    _, gx, px, py, new_h, new_w = letterbox_geometry((56, 72), (100, 144))
    assert (px, py, new_h, new_w) == (0, 3, 50, 72)
    np.testing.assert_allclose(patch_boxes(sel, (100, 144))[0], [32, 0, 64, (16 - 3) / 0.5])


# ------------------------------------------------------------------------------------------------
# The model path: hooks on the predictor's own model, one forward pass
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pst_pt(tmp_path_factory) -> Path:
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("explain") / "pst.pt"
    YOLO("yolo11n-pst.yaml").save(path)
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8), (0, 0), 3)
    cv2.rectangle(img, (40, 30), (120, 110), (0, 0, 255), -1)
    path = tmp_path_factory.mktemp("img") / "scene.png"
    cv2.imwrite(str(path), img)
    return path


def test_selection_comes_from_the_single_detection_forward_pass(pst_pt, image):
    det = Detector(str(pst_pt), imgsz=IMGSZ, conf=0.0, max_det=5, verbose=False)
    try:
        passes = []
        det.net.register_forward_pre_hook(lambda m, a: passes.append(tuple(a[0].shape[-2:])))
        img = cv2.imread(str(image))
        out = det(img, capture=True)
        assert len(passes) == 1  # detections and selections from one forward pass
        assert len(out.boxes) > 0
        assert [s.layer for s in out.selections] == ["13", "16"]
        assert all(s.input_hw == passes[0] for s in out.selections)  # 128x96 letterboxed input
        assert [s.fine_hw for s in out.selections] == [
            (passes[0][0] // 16, passes[0][1] // 16),
            (passes[0][0] // 8, passes[0][1] // 8),
        ]
        assert all(s.k == 8 and s.indices.shape[-1] == 8 for s in out.selections)
        det.set_k(3)
        out = det(img, capture=True)
        assert all(s.k == 3 and s.indices.shape[-1] == 3 for s in out.selections)
        assert det(img, capture=False).selections == []  # overlay off: nothing computed
    finally:
        det.close()
    assert pst_yolo.get_topk(det.net) == 8  # close() puts the model's own k back
    n = len(passes)
    det.net(torch.zeros(1, 3, IMGSZ, IMGSZ))
    assert len(passes) == n + 1 and det.recorder is None  # our hooks are gone, the test's own still there


def _panel_regions(png: np.ndarray, n: int, width: int) -> list[np.ndarray]:
    return [png[:, i * (width + PANEL_GAP) : i * (width + PANEL_GAP) + width] for i in range(n)]


def test_explain_writes_one_png_with_a_panel_per_pst_layer(pst_pt, image, tmp_path):
    results = explain(str(image), str(pst_pt), imgsz=IMGSZ, conf=0.0, max_det=3, save_dir=tmp_path, verbose=False)
    assert len(results) == 1
    res = results[0]
    assert res.path == tmp_path / "scene_explain.png" and res.path.is_file()
    png = cv2.imread(str(res.path))
    from ultralytics import YOLO

    layers = pst_yolo.pst_layers(YOLO(str(pst_pt)))
    assert len(res.panels) == len(layers) == 2
    assert png.shape[1] == len(layers) * res.panel_width + (len(layers) - 1) * PANEL_GAP
    assert [p.layer for p in res.panels] == ["13", "16"] and all(p.patches > 0 for p in res.panels)
    assert res.detections == 3
    a, b = _panel_regions(png, 2, res.panel_width)
    gap = png[:, res.panel_width : res.panel_width + PANEL_GAP]
    assert (gap == 255).all() and not np.array_equal(a, b)  # two different pictures, white gap between
    src = cv2.imread(str(image))
    assert a.shape[0] > src.shape[0]  # title strip above the image


def test_explain_panel_count_follows_the_number_of_pst_layers(image, tmp_path):
    text = (cfg_dir() / "yolo11-pst.yaml").read_text()
    row = "[[-1, 10], 2, PST, [512, 2, 0.5]]"
    assert row in text
    cfg = tmp_path / "yolo11n-onepst.yaml"
    cfg.write_text(text.replace(row, "[-1, 2, C3k2, [512, False]]"))
    out = tmp_path / "fig.png"
    res = explain(str(image), str(cfg), imgsz=IMGSZ, out=out, verbose=False)[0]
    assert [p.layer for p in res.panels] == ["16"]
    assert cv2.imread(str(out)).shape[1] == res.panel_width


def test_cli_explain(pst_pt, image, tmp_path, capsys):
    out = tmp_path / "x" / "fig.png"
    assert main(["explain", f"image={image}", f"model={pst_pt}", f"imgsz={IMGSZ}", f"out={out}", "topk=2"]) == 0
    assert out.is_file()
    assert "layer 13 k=2" in capsys.readouterr().out

    def error(argv):
        rc = main(["explain", *argv])
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return rc, err

    rc, err = error([f"image={tmp_path / 'missing.jpg'}", f"model={pst_pt}"])
    assert rc == 2 and "image not found" in err
    rc, err = error([f"image={image}", "model=exported.onnx"])
    assert rc == 2 and "needs a PyTorch model" in err
    rc, err = error([f"image={image}", f"model={tmp_path / 'nope.pt'}"])
    assert rc == 2 and "model file not found" in err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    rc, err = error([f"image={bad}", f"model={pst_pt}"])
    assert rc == 2 and "cannot read image" in err
    rc, err = error([f"model={pst_pt}"])
    assert rc == 2 and "image= is required" in err
    rc, err = error([f"image={image}", f"model={pst_pt}", "colour=red"])
    assert rc == 2 and "unknown key 'colour'" in err
