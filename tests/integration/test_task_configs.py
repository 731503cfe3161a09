"""The segmentation, pose, oriented-box and YOLO26 PST configs: stock rows except the two PST rows, every scale
builds and runs with stock shapes, the task is guessed from the config, the configs table pairs them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics.nn import tasks

import pst_yolo
from helpers import all_finite, output_shapes, run_with_layer_shapes, ultralytics_ships
from pst_yolo.eval.tables import _twins, build_model, config_twins
from pst_yolo.nn.pst import PST

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pst_yolo.register()

STOCK_CFG = Path(tasks.__file__).resolve().parents[1] / "cfg" / "models"
# shipped config -> (its stock twin in the installed Ultralytics, model class)
NEW_CONFIGS = {
    "yolo11-seg-pst.yaml": (STOCK_CFG / "11" / "yolo11-seg.yaml", tasks.SegmentationModel),
    "yolo11-pose-pst.yaml": (STOCK_CFG / "11" / "yolo11-pose.yaml", tasks.PoseModel),
    "yolo11-obb-pst.yaml": (STOCK_CFG / "11" / "yolo11-obb.yaml", tasks.OBBModel),
    "yolo26-pst.yaml": (STOCK_CFG / "26" / "yolo26.yaml", tasks.DetectionModel),
}
PST_ROWS = {13: [[-1, 10], 2, "PST", [512, 2, 0.5]], 16: [[-1, 6], 2, "PST", [256, 2, 0.5]]}
NO_YOLO26 = pytest.mark.skipif(not ultralytics_ships("yolo26n.yaml"), reason="YOLO26 needs Ultralytics 8.4")


def _cases(names):
    return [pytest.param(n, marks=[NO_YOLO26] if n.startswith("yolo26") else []) for n in names]


@pytest.mark.parametrize("name", _cases(sorted(NEW_CONFIGS)))
def test_config_is_stock_except_the_two_pst_rows(name):
    ours = yaml.safe_load((pst_yolo.cfg_dir() / name).read_text())
    stock_path, _ = NEW_CONFIGS[name]
    stock = yaml.safe_load(stock_path.read_text())
    # every top-level setting (nc, scales, kpt_shape, end2end, reg_max, ...) as stock
    assert {k: v for k, v in ours.items() if k not in ("backbone", "head")} == {
        k: v for k, v in stock.items() if k not in ("backbone", "head")
    }
    assert ours["backbone"] == stock["backbone"]
    ours_rows = ours["backbone"] + ours["head"]
    stock_rows = stock["backbone"] + stock["head"]
    assert len(ours_rows) == len(stock_rows)
    for i, (a, b) in enumerate(zip(ours_rows, stock_rows)):
        if i in PST_ROWS:
            assert b[2] == "C3k2" and b[0] == -1  # the stock top-down fusion block that PST replaces
            assert a == PST_ROWS[i], (i, a)
        else:
            assert a == b, (i, a, b)
    # the same PST rows as yolo11-pst.yaml (which the detection tests cover in depth)
    base = yaml.safe_load((pst_yolo.cfg_dir() / "yolo11-pst.yaml").read_text())
    base_rows = base["backbone"] + base["head"]
    assert [ours_rows[i] for i in PST_ROWS] == [base_rows[i] for i in PST_ROWS]


SCALES = [
    pytest.param(
        n,
        s,
        marks=([pytest.mark.slow] if s in "lx" else []) + ([NO_YOLO26] if n.startswith("yolo26") else []),
        id=f"{n.split('.')[0]}-{s}",
    )
    for n in sorted(NEW_CONFIGS)
    for s in "nsmlx"
]


@pytest.mark.parametrize("name,scale", SCALES)
def test_every_scale_builds_runs_and_matches_stock_shapes(name, scale):
    from ultralytics.cfg import get_cfg

    family, rest = name.split("-", 1)  # yolo11, seg-pst.yaml
    pst_name = f"{family}{scale}-{rest}"
    stock_path, builder = NEW_CONFIGS[name]
    stock_name = f"{family}{scale}{stock_path.stem[len(family) :]}.yaml"
    model = builder(pst_name, verbose=False).eval()
    stock = builder(stock_name, verbose=False).eval()
    assert model.yaml["scale"] == scale and Path(model.yaml["yaml_file"]).name == pst_name
    assert [m.i for m in model.model if isinstance(m, PST)] == [13, 16]
    assert type(model.model[-1]) is type(stock.model[-1])
    assert torch.equal(model.stride, stock.stride)
    assert getattr(model.model[-1], "reg_max", None) == getattr(stock.model[-1], "reg_max", None)
    one2one = [getattr(m.model[-1], "one2one_cv2", None) is not None for m in (model, stock)]
    assert one2one[0] == one2one[1]  # YOLO26: the NMS-free branch is there
    model.args = stock.args = get_cfg()  # what a trainer attaches; the loss reads its gains
    assert type(model.init_criterion()) is type(stock.init_criterion())  # e.g. YOLO26's E2ELoss
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref_out, ref_layers = run_with_layer_shapes(stock, x)
    for k in (0, 2):
        pst_yolo.set_topk(model, k)
        out, layer_shapes = run_with_layer_shapes(model, x)
        assert output_shapes(out) == output_shapes(ref_out), k
        assert layer_shapes == ref_layers, k
        assert all_finite(out), k
    n_pst, n_stock = (sum(p.numel() for p in m.parameters()) for m in (model, stock))
    assert n_pst != n_stock and math.isclose(n_pst, n_stock, rel_tol=0.20), (n_pst, n_stock)


GUESSED = [
    ("yolo11n-seg-pst.yaml", "segment", "SegmentationModel"),
    ("yolo11n-pose-pst.yaml", "pose", "PoseModel"),
    ("yolo11n-obb-pst.yaml", "obb", "OBBModel"),
    ("yolo26n-pst.yaml", "detect", "DetectionModel"),
]


@pytest.mark.parametrize(
    "name,task,model_class",
    [pytest.param(*case, marks=[NO_YOLO26] if case[0].startswith("yolo26") else []) for case in GUESSED],
)
def test_task_is_guessed_and_the_table_builds_its_model_class(name, task, model_class):
    from ultralytics import YOLO

    assert YOLO(name, verbose=False).task == task
    assert type(build_model(name)).__name__ == model_class


def test_configs_table_pairs_each_new_config_with_its_stock_twin():
    cfg = pst_yolo.cfg_dir()
    assert _twins(cfg / "yolo11-seg-pst.yaml")[0] == ("yolo11n-seg-pst.yaml", "yolo11n-seg.yaml")
    assert _twins(cfg / "yolo11-pose-pst.yaml")[-1] == ("yolo11x-pose-pst.yaml", "yolo11x-pose.yaml")
    assert _twins(cfg / "yolo11-obb-pst.yaml")[2] == ("yolo11m-obb-pst.yaml", "yolo11m-obb.yaml")
    assert _twins(cfg / "yolo26-pst.yaml") == [(f"yolo26{s}-pst.yaml", f"yolo26{s}.yaml") for s in "nsmlx"]
    listed = config_twins()
    for family in ("yolo11n-seg", "yolo11n-pose", "yolo11n-obb"):
        assert (f"{family}-pst.yaml", f"{family}.yaml") in listed
    # YOLO26 is listed exactly where the installed Ultralytics has it
    assert (("yolo26n-pst.yaml", "yolo26n.yaml") in listed) == ultralytics_ships("yolo26n.yaml")
