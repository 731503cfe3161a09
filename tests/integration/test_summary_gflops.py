"""Ultralytics' model summaries (``get_flops``) of one PST model grow with k: the fine branch adds work, it never
removes any. Ultralytics extrapolates from tiny proxy images, which clamps k there and scales the fine
branch's cost with the image area; with k > 0 pst-yolo profiles the full-size input instead."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def network():
    from ultralytics import YOLO

    return YOLO("yolo11n-pst.yaml").model


def test_summary_gflops_grow_with_k(network):
    from ultralytics.utils import torch_utils

    from pst_yolo.nn.topk import set_topk

    gflops = {}
    for k in (0, 4, 8, 16):
        set_topk(network, k)
        gflops[k] = torch_utils.get_flops(network, 320)
    set_topk(network, 8)
    values = list(gflops.values())
    assert values == sorted(values), f"GFLOPs at k = 0 / 4 / 8 / 16: {values}"
    # the fine branch of yolo11n-pst is a small part of the network, at any of these k
    assert gflops[16] < 1.1 * gflops[0], gflops


def test_summary_gflops_at_k0_are_ultralytics_own(network):
    """Coarse only (and stock models), Ultralytics' own estimate is returned as it is (its extrapolation differs
    between releases: 8.3 and 8.4 give different figures, both theirs); with k > 0 the full-size count."""
    from pst_yolo.integration.callbacks import _full_size_gflops, get_flops_quietly
    from pst_yolo.nn.topk import set_topk

    calls = []

    def ultralytics_own(model, *args, **kwargs):
        calls.append(args)
        return 1.2345

    try:
        set_topk(network, 0)
        assert get_flops_quietly(ultralytics_own, network, 320) == 1.2345 and calls == [(320,)]
        set_topk(network, 8)
        assert get_flops_quietly(ultralytics_own, network, 320) == pytest.approx(_full_size_gflops(network, 320))
        assert calls == [(320,)]  # not asked again
    finally:
        set_topk(network, 8)
