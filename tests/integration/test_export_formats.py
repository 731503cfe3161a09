"""The export-time guard (pst_yolo/integration/export_formats.py): per format the default graph, the
top-k/gather-free one, or a clear error; on the exporter's copy only; through Ultralytics' own exporter."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from pst_yolo.eval.export_matrix import FORMATS
from pst_yolo.eval.exported import export
from pst_yolo.integration.export_formats import (
    ENV_EXPORT_FINE,
    FORMAT_SUPPORT,
    PSTExportError,
    fine_branch_mode,
    prepare_export,
)
from pst_yolo.nn.portable import PortablePSAttn, SlicedKVPSAttn, StridedPortablePSAttn
from pst_yolo.nn.pst import PSAttn
from pst_yolo.nn.topk import pst_layers, set_topk

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMGSZ = 128  # yolo11n-pst: 16 coarse tokens at layer 13 (P5 4x4), 64 at layer 16 (P4 8x8); k = 8 picks among them


@pytest.fixture(scope="module")
def yolo():
    """yolo11n-pst with seeded random weights (the guard looks at classes and k, not at the numbers)."""
    from ultralytics import YOLO

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return YOLO("yolo11n-pst.yaml", task="detect")


def _attention_classes(model: torch.nn.Module) -> set:
    return {type(m) for m in model.modules() if isinstance(m, PSAttn)}


def _exporter(yolo, fmt: str, k: int, dynamic: bool = False):
    """What the guard sees at on_export_start: the exporter's args, its copy of the network, its metadata."""
    model = copy.deepcopy(yolo.model)
    set_topk(model, k)
    exporter = SimpleNamespace(args=SimpleNamespace(format=fmt, dynamic=dynamic), model=model, metadata={})
    return exporter, pst_layers(model)


@pytest.mark.parametrize(
    "fmt, k, cls, fine",
    [
        ("onnx", 8, PSAttn, "native"),
        ("openvino", 8, PSAttn, "native"),
        ("ncnn", 8, PortablePSAttn, "portable"),
        ("ncnn", 0, PSAttn, "off"),
        ("litert", 0, SlicedKVPSAttn, "off"),
        ("litert", 8, SlicedKVPSAttn, "native"),
        ("coreml", 8, StridedPortablePSAttn, "portable"),
    ],
)
def test_prepare_export_per_format(yolo, fmt, k, cls, fine):
    exporter, layers = _exporter(yolo, fmt, k)
    prepare_export(exporter, layers)
    assert _attention_classes(exporter.model) == {cls}
    assert exporter.metadata["pst_fine_branch"] == fine


def test_portable_fine_branch_refuses_dynamic_shapes(yolo):
    """The portable graph is traced for one input size (crop/pad and index constants): dynamic=True stops."""
    exporter, layers = _exporter(yolo, "coreml", 8, dynamic=True)
    with pytest.raises(PSTExportError, match=r"format=coreml dynamic=True.*dynamic=False"):
        prepare_export(exporter, layers)
    exporter, layers = _exporter(yolo, "coreml", 0, dynamic=True)
    prepare_export(exporter, layers)  # coarse only: the default graph
    assert _attention_classes(exporter.model) == {PSAttn}


@pytest.mark.parametrize("fmt", ["paddle", "rknn", "engine", "edgetpu"])
def test_unverified_format_at_k_above_0_is_refused_with_the_way_out(yolo, fmt):
    exporter, layers = _exporter(yolo, fmt, 8)
    with pytest.raises(PSTExportError) as e:
        prepare_export(exporter, layers)
    msg = str(e.value)
    assert f"format={fmt}" in msg and "layer 13 k=8, layer 16 k=8" in msg
    assert "PST_TOPK=0" in msg and "set_topk(model, 0)" in msg and ENV_EXPORT_FINE in msg
    exporter, layers = _exporter(yolo, fmt, 0)
    prepare_export(exporter, layers)  # coarse only: nothing to refuse
    assert exporter.metadata["pst_fine_branch"] == "off"


def test_export_fine_override(yolo, monkeypatch):
    monkeypatch.setenv(ENV_EXPORT_FINE, "portable")
    assert fine_branch_mode("onnx") == ("portable", f"{ENV_EXPORT_FINE}=portable")
    monkeypatch.setenv(ENV_EXPORT_FINE, "native")
    exporter, layers = _exporter(yolo, "rknn", 8)
    prepare_export(exporter, layers)  # the user takes it on
    assert exporter.metadata["pst_fine_branch"] == "native"
    monkeypatch.setenv(ENV_EXPORT_FINE, "fast")
    with pytest.raises(PSTExportError, match="must be 'native' or 'portable', got 'fast'"):
        fine_branch_mode("onnx")


def test_every_matrix_format_has_a_rule():
    assert set(FORMATS) <= set(FORMAT_SUPPORT)
    assert all(s.fine in ("native", "portable") for s in FORMAT_SUPPORT.values())


# ------------------------------------------------------------------------------------------------
# Through Ultralytics' exporter (the on_export_start callback)
# ------------------------------------------------------------------------------------------------
def test_real_export_is_refused_before_any_converter_runs(yolo, tmp_path):
    """Ultralytics' exporter reads ``args.format`` as the guard expects: a k = 8 PaddlePaddle export stops
    with the message, before Ultralytics looks for the converter package."""
    set_topk(yolo, 8)
    with pytest.raises(PSTExportError, match="format=paddle"):
        export(yolo, "paddle", IMGSZ, tmp_path)


def test_real_dynamic_portable_export_is_refused(yolo, tmp_path, monkeypatch):
    """... and ``args.dynamic``: a forced-portable dynamic ONNX export stops before the ONNX export."""
    set_topk(yolo, 8)
    monkeypatch.setenv(ENV_EXPORT_FINE, "portable")
    with pytest.raises(PSTExportError, match="format=onnx dynamic=True"):
        export(yolo, "onnx", IMGSZ, tmp_path, dynamic=True)
    assert not list(tmp_path.rglob("*.onnx"))


def test_portable_export_leaves_the_users_model_alone(yolo, tmp_path, monkeypatch):
    """The class swap happens on the exporter's deep copy; the exported ONNX (forced portable) has no
    TopK/Gather*, and the user's model still runs the default fine branch."""
    onnx = pytest.importorskip("onnx", reason='onnx: pip install "pst-yolo[export]"')
    pytest.importorskip("onnxruntime", reason='ONNX Runtime: pip install "pst-yolo[export]"')
    set_topk(yolo, 8)
    monkeypatch.setenv(ENV_EXPORT_FINE, "portable")
    path = export(yolo, "onnx", IMGSZ, tmp_path)
    monkeypatch.delenv(ENV_EXPORT_FINE)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {"TopK", "Gather", "GatherElements", "GatherND", "ScatterND", "Where"}, ops
    assert _attention_classes(yolo.model) == {PSAttn}
