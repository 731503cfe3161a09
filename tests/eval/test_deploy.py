"""``pst-yolo deploy`` (pst_yolo/eval/deploy.py): a trained ``.pt`` exported per format and weight precision,
each variant scored with COCOeval and its AP set against PyTorch fp32. The run here exports to ONNX and OpenVINO
(the deploy extra; skipped, naming it, without OpenVINO) a model scored against its own detections."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from helpers import self_scored_scene
from pst_yolo.eval.deploy import VARIANTS, deploy
from pst_yolo.eval.export_matrix import available, install_hint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AP_TOLERANCE = 1e-3  # as tests/eval/test_evaluate_exports.py, on the same kind of model and ground truth


def test_the_help_lists_every_variant():
    from pst_yolo.cli.commands import DEPLOY_VARIANTS

    assert DEPLOY_VARIANTS == tuple(v.name for v in VARIANTS)
    assert VARIANTS[0].fmt == "pt" and VARIANTS[0].precision is None  # the reference every ΔAP is against


def test_bad_input_is_refused_before_any_export(cli, tmp_path):
    weights = tmp_path / "m.pt"
    weights.write_bytes(b"")
    cli.error("deploy", "models=yolo11n.yaml", "data=x", match="deploy exports trained .pt checkpoints")
    cli.error("deploy", f"models={weights}", "variants=onnx,tensorrt", match="variants=tensorrt: unknown; choose from")
    cli.error("deploy", f"models={weights}", match=r"give data= .* or annotations= and images=")
    cli.error("deploy", f"models={weights},{weights}", "data=x", match="share a name")
    cli.error("deploy", f"models={weights}", "data=x", "calibrate=test", match="calibrate='test': give train or val")
    cli.error("deploy", f"models={weights}", "data=x", "seed=-1", match="seed")


@pytest.mark.skipif(not available("openvino"), reason=install_hint("openvino"))
def test_deploy_scores_each_variant_against_pytorch_fp32(tmp_path, monkeypatch):
    from pst_yolo.eval import export_matrix

    scene = self_scored_scene(tmp_path / "scene")
    real = export_matrix.available
    monkeypatch.setattr(export_matrix, "available", lambda fmt: fmt != "ncnn" and real(fmt))  # as if not installed
    res = deploy(
        [str(scene["weights"])],
        annotations=scene["annotations"],
        images=scene["images"],
        topk=[0],
        variants=["onnx", "openvino-fp32", "openvino", "ncnn"],
        project=tmp_path,
        name="d",
        verbose=False,
    )
    rows = {r.variant: r for r in res.rows}
    assert list(rows) == ["pytorch", "onnx", "openvino-fp32", "openvino", "ncnn"]
    assert {r.k for r in res.rows} == {0} and {r.model for r in res.rows} == {"pst"}
    assert rows["pytorch"].stats["AP"] > 0.99 and rows["pytorch"].delta_ap == 0
    for name in ("onnx", "openvino-fp32"):
        assert abs(rows[name].delta_ap) <= AP_TOLERANCE, name
    assert (rows["onnx"].runtime, rows["onnx"].precision) == ("ONNX Runtime", "fp32")
    assert (rows["openvino-fp32"].runtime, rows["openvino-fp32"].precision) == ("OpenVINO", "fp32")
    assert rows["openvino"].precision in ("bf16", "fp32")  # what OpenVINO chose here, read back
    assert rows["ncnn"].error.startswith("format=ncnn needs ncnn") and "not run: format=ncnn" in res.table
    assert all(res.run_dir in Path(r.artifact).parents for r in res.rows[1:4])  # exports in the run folder
    assert "| pst | 0 | openvino-fp32 | OpenVINO fp32 |" in res.table
    with res.csv.open() as f:
        table = list(csv.DictReader(f))
    assert [t["variant"] for t in table] == list(rows) and table[0]["dAP"] == "+0.00000"
    assert "ΔAP: AP minus PyTorch fp32's" in res.markdown.read_text()


def test_int8_variants_calibrate_on_the_train_split_of_data(tmp_path, monkeypatch):
    """ONNX INT8 (ONNX Runtime static quantization, Ultralytics 8.4) exports with calibration images from data='s
    train split, runs and says so; with annotations= instead of data= there is nothing to calibrate on."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the [export] extra)")
    from pst_yolo.data.synth import SynthSpec, generate
    from pst_yolo.integration.compat import has_quantize_arg

    scene = self_scored_scene(tmp_path / "scene", imgsz=64, images=4)
    res = deploy(
        [str(scene["weights"])], annotations=scene["annotations"], images=scene["images"], topk=[0],
        variants=["onnx-int8"], project=tmp_path, name="no-data", verbose=False,
    )  # fmt: skip
    assert res.rows[1].error.startswith("INT8 calibrates on a dataset's train split: give data=")
    if not has_quantize_arg():
        pytest.skip("INT8 ONNX export (quantize=8) needs Ultralytics 8.4")
    import torch
    import yaml
    from ultralytics.nn.tasks import DetectionModel

    data = generate(tmp_path / "data", SynthSpec(train=4, val=2, imgsz=64, seed=0))
    net = DetectionModel("yolo11n-pst.yaml", nc=5, verbose=False)  # the set's classes; untrained: AP is not the point
    net.names = dict(enumerate(yaml.safe_load(Path(data).read_text())["names"].values()))
    weights = tmp_path / "pst.pt"
    torch.save({"model": net, "train_args": {"imgsz": 64, "task": "detect"}}, weights)
    monkeypatch.chdir(tmp_path)  # data= relative, as typed in a shell: the export runs in another folder
    variants = ["onnx-fp16", "onnx-int8"] + (["openvino-int8"] if available("openvino") else [])
    litert = available("litert") and importlib.util.find_spec("ai_edge_quantizer") is not None  # its own venv
    variants += ["litert-int8"] if litert else []
    res = deploy(["pst.pt"], data="data", topk=[0], variants=variants, project=tmp_path, name="d", verbose=False)
    rows = {r.variant: r for r in res.rows}
    assert [name for name, r in rows.items() if r.error] == [], res.table
    assert (rows["onnx-fp16"].runtime, rows["onnx-fp16"].precision) == ("ONNX Runtime", "fp32, fp16 weights")
    if "openvino-int8" in rows:  # NNCF (the [openvino] extra), calibrated on the same train split
        assert (
            rows["openvino-int8"].precision.endswith("int8 weights and activations")
            and rows["openvino-int8"].delta_ap is not None
        )
    assert (rows["onnx-int8"].runtime, rows["onnx-int8"].precision) == (
        "ONNX Runtime",
        "fp32, int8 weights and activations",
    )
    assert rows["onnx-int8"].delta_ap is not None and Path(rows["onnx-int8"].artifact).name.endswith("_int8.onnx")
    if litert:  # ai-edge-quantizer's static INT8, same calibration images
        assert (rows["litert-int8"].runtime, rows["litert-int8"].precision) == (
            "LiteRT",
            "fp32, int8 weights and activations",
        )
        assert Path(rows["litert-int8"].artifact).name.endswith("_int8.tflite")


@pytest.mark.parametrize(
    "quantized, label",
    [(None, "fp32"), ("fp16", "fp32, fp16 weights"), ("int8", "fp32, int8 weights and activations"),
     ("w8a16", "fp32, int8 weights, int16 activations"), ("w8a32", "fp32, int8 weights")],
)  # fmt: skip
def test_a_quantized_export_says_what_was_quantized(quantized, label):
    """Ultralytics' quantize=8 is static quantization (activations too) in every format; weight-only says so."""
    from pst_yolo.integration.precision import PrecisionRun

    assert PrecisionRun("onnx", quantized=quantized).label() == label
