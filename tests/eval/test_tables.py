"""pst_yolo.eval.tables: one label rule, and one GFLOPs figure per model in every table."""

from __future__ import annotations

from pathlib import Path

import pytest

import pst_yolo
from pst_yolo.eval.flops import count_flops
from pst_yolo.eval.speed import count_flops as speed_flops
from pst_yolo.eval.tables import build_model, config_rows, config_table, model_label, model_size

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_model_label():
    assert model_label("cfg/yolo11n-pst.yaml") == "yolo11n-pst"
    assert model_label(Path("runs/exp7/weights/best.pt")) == "exp7"
    assert model_label(Path("runs/exp7/weights/last.pt")) == "exp7-last"
    assert model_label("weights/yolo11n.pt") == "yolo11n"


def test_the_same_model_gets_the_same_gflops_in_every_table():
    """configs table, bench rows (model_size) and speed rows (count_flops) use one count."""
    rows = config_rows(imgsz=64, twins=[("yolo11n-pst.yaml", "yolo11n.yaml")])
    model = build_model("yolo11n-pst.yaml")
    for k in (0, 8):
        pst_yolo.set_topk(model, k)
        in_bench = model_size(model, 64).gflops
        assert rows[0][f"pst_gflops_k{k}"] == in_bench == speed_flops("yolo11n-pst.yaml", k, 64)[0]
        assert in_bench == count_flops(model, 64).gflops
    assert rows[0]["stock_gflops"] == model_size(build_model("yolo11n.yaml"), 64).gflops
    assert rows[0]["pst_gflops_k8"] > rows[0]["pst_gflops_k0"]  # the fine branch costs something
    table = config_table(rows)
    assert "GFLOPs k=0" in table and "attention" in table  # the table says which count it is
