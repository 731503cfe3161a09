"""What happens to PST layers around Ultralytics: re-initialisation and FLOP probes."""

from __future__ import annotations

import warnings

import torch

import pst_yolo


def _gates(model):
    return [b.attn.gate_conv1d for _, layer in pst_yolo.pst_layers(model) for b in layer._blocks()]


def test_reset_parameters_keeps_the_documented_zero_gate():
    """Ultralytics' pretrained=False calls reset_parameters() on every module."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n-pst.yaml", verbose=False)
    for g in _gates(model):
        torch.nn.init.normal_(g.weight)
        torch.nn.init.normal_(g.bias)
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    assert all(not g.weight.any() and not g.bias.any() for g in _gates(model))


def test_flop_probe_neither_warns_nor_uses_up_the_clamp_warning():
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    model = DetectionModel("yolo11n-pst.yaml", verbose=False).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flops = get_flops(model, 640)  # probes at a tiny size where k = 8 exceeds P5's tokens
    assert flops > 0
    assert not [w for w in caught if "PSAttn: topk=" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.inference_mode():
            model(torch.zeros(1, 3, 64, 64))  # a real clamp (P5 is 2x2 at 64 px) is still reported
    assert [w for w in caught if "PSAttn: topk=" in str(w.message)]
