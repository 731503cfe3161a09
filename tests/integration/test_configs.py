"""The shipped model YAMLs: every scale builds, runs, and is a drop-in for the stock model; local files win."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn import tasks

import pst_yolo
from helpers import all_finite, output_shapes, run_with_layer_shapes
from pst_yolo.nn.pst import PST

pst_yolo.register()  # normally done by the autoload hook already; idempotent

CASES = [("yolo11", s) for s in "nslmx"] + [("yolo12", s) for s in "nsm"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family,scale", CASES, ids=[f"{f}{s}" for f, s in CASES])
def test_shipped_config_builds_runs_and_matches_stock(family, scale):
    model = tasks.DetectionModel(f"{family}{scale}-pst.yaml", verbose=False).eval()
    stock = tasks.DetectionModel(f"{family}{scale}.yaml", verbose=False).eval()

    assert model.yaml["scale"] == scale
    assert Path(model.yaml["yaml_file"]).name == f"{family}{scale}-pst.yaml"
    pst = [m for m in model.model if isinstance(m, PST)]
    assert len(pst) == 2
    assert torch.equal(model.stride, stock.stride)

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref_out, ref_layers = run_with_layer_shapes(stock, x)
    for k in (0, 2):
        pst_yolo.set_topk(model, k)
        assert [m.k for m in pst] == [k, k]
        out, layers = run_with_layer_shapes(model, x)
        assert output_shapes(out) == output_shapes(ref_out), k
        assert layers == ref_layers, k  # every layer, PST ones included, has the stock output shape
        assert all_finite(out), k

    n_pst, n_stock = _params(model), _params(stock)
    assert n_pst != n_stock  # really a different model
    assert math.isclose(n_pst, n_stock, rel_tol=0.20), (n_pst, n_stock, n_pst / n_stock)


def test_cfg_dir_holds_the_shipped_configs():
    folder = pst_yolo.cfg_dir()
    assert isinstance(folder, Path) and folder.is_dir()
    names = {p.name for p in pst_yolo.shipped_configs()}
    assert {"yolo11-pst.yaml", "yolo12-pst.yaml"} <= names
    for name in ("yolo11-pst.yaml", "yolo12-pst.yaml"):
        d = yaml.safe_load((folder / name).read_text())
        assert any(row[2] == "PST" for row in d["head"]), name


def test_bare_name_resolves_to_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing local
    shipped = pst_yolo.cfg_dir() / "yolo11-pst.yaml"
    assert Path(tasks.check_yaml("yolo11-pst.yaml")).resolve() == shipped.resolve()
    model = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    assert model.model[-1].nc == 80


def _stock_prefers_local_scaled_file(tmp_path) -> bool:
    """Whether this Ultralytics picks a local ``yolo11n.yaml`` over its packaged ``yolo11.yaml`` (releases
    before 8.4.x look up the scale-free name first, so the packaged file wins there)."""
    probe = tmp_path / "stock_probe"
    probe.mkdir()
    d = yaml.safe_load((Path(tasks.__file__).parent.parent / "cfg" / "models" / "11" / "yolo11.yaml").read_text())
    d["nc"] = 3
    (probe / "yolo11n.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(probe)
    try:
        return tasks.DetectionModel("yolo11n.yaml", verbose=False).model[-1].nc == 3
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("local_name", ["yolo11-pst.yaml", "yolo11n-pst.yaml"])
def test_local_file_wins_over_shipped(tmp_path, monkeypatch, local_name):
    """A local copy takes precedence over the shipped config exactly as it would over a packaged stock one."""
    d = yaml.safe_load((pst_yolo.cfg_dir() / "yolo11-pst.yaml").read_text())
    d["nc"] = 3
    (tmp_path / local_name).write_text(yaml.safe_dump(d, sort_keys=False))
    expected_nc = 3 if local_name == "yolo11-pst.yaml" or _stock_prefers_local_scaled_file(tmp_path) else 80
    monkeypatch.chdir(tmp_path)

    assert Path(tasks.check_yaml(local_name)).resolve() == (tmp_path / local_name).resolve()
    model = YOLO("yolo11n-pst.yaml", verbose=False)
    assert model.model.model[-1].nc == expected_nc
    assert len(model.names) == expected_nc
    assert isinstance(model.model.model[13], PST)

    monkeypatch.chdir(tmp_path.parent)  # away from the local copy: the shipped one again
    assert tasks.DetectionModel("yolo11n-pst.yaml", verbose=False).model[-1].nc == 80
