"""INT8 ONNX export (``quantize=8``, Ultralytics 8.4): PST's attention MatMuls stay float, everything else is
quantized by Ultralytics' own rule, and the export's metadata says what was kept (integration/quantization.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the [export] extra)")


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    from pst_yolo.data.synth import SynthSpec, generate

    return generate(tmp_path_factory.mktemp("int8_data"), SynthSpec(train=4, val=2, imgsz=64, seed=0))


def _int8_export(model: str, data: Path, out: Path) -> Path:
    from ultralytics import YOLO

    from pst_yolo.eval.exported import export
    from pst_yolo.integration.compat import int8_export_args, onnx_int8_export_available

    if not onnx_int8_export_available():
        pytest.skip("INT8 ONNX export (quantize=8) needs Ultralytics 8.4")
    return export(YOLO(model), "onnx", 64, out, **int8_export_args(str(data)))


def _matmul_inputs_quantized(path: Path) -> dict[str, bool]:
    """MatMul node -> whether its inputs come through DequantizeLinear (i.e. it runs quantized)."""
    import onnx

    graph = onnx.load(str(path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name: all(i in dequantized for i in n.input) for n in graph.node if n.op_type == "MatMul"}


def test_int8_onnx_keeps_pst_attention_float_and_says_so(data_yaml, tmp_path):
    from pst_yolo.integration.quantization import FLOAT_KEY, attention_matmuls
    from pst_yolo.integration.runtime import exported_metadata

    pst = _int8_export("yolo11n-pst.yaml", data_yaml, tmp_path / "pst")
    matmuls = _matmul_inputs_quantized(pst)
    attention = [name for name in matmuls if name.startswith(("/model.13/attnlayer_", "/model.16/attnlayer_"))]
    assert len(attention) == 12 and not any(matmuls[name] for name in attention)  # 6 per layer: all float
    assert sorted(attention) == sorted(n for names in attention_matmuls(pst).values() for n in names)
    assert matmuls["/model.10/m/m.0/attn/MatMul"]  # stock C2PSA attention: still quantized by Ultralytics' rule
    meta = exported_metadata(pst)
    assert meta[FLOAT_KEY] == "attention MatMuls of PST layers 13, 16 (12 nodes)"
    assert meta["pst_topk"] in ({"13": 8, "16": 8}, "{'13': 8, '16': 8}")  # the rest of the metadata survives quantization

    stock = _int8_export("yolo11n.yaml", data_yaml, tmp_path / "stock")
    assert FLOAT_KEY not in exported_metadata(stock) and all(_matmul_inputs_quantized(stock).values())


def test_int8_onnx_runs_in_onnx_runtime(data_yaml, tmp_path):
    """The graph with float attention still runs (ONNX Runtime quantizes around the float nodes) and gives the
    fp32 export's output shape; what it costs in AP on trained models is measured by ``pst-yolo deploy``."""
    import numpy as np
    import torch
    from ultralytics import YOLO

    from pst_yolo.eval.export_matrix import sample_input
    from pst_yolo.eval.exported import export, load_backend

    torch.manual_seed(0)
    int8 = _int8_export("yolo11n-pst.yaml", data_yaml, tmp_path / "int8")
    fp32 = export(YOLO("yolo11n-pst.yaml"), "onnx", 64, tmp_path / "fp32")
    x = sample_input(64)
    out = [load_backend(p)(x) for p in (int8, fp32)]
    out = [np.asarray(o[0] if isinstance(o, (list, tuple)) else o) for o in out]
    assert out[0].shape == out[1].shape and np.isfinite(out[0]).all()
