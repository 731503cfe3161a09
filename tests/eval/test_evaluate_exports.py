"""Scoring exports with pst-yolo's own commands: ``evaluate`` / ``compare`` / ``bench`` take every model
Ultralytics' AutoBackend loads (a file, an export folder, an OpenVINO ``.xml``), at the export's own input size
and k, and ``precision=`` switches OpenVINO between fp32, bf16 and fp16 (``pst_yolo/integration/precision.py``).

The path and precision rules run without the deploy extra; the scoring tests export one seeded PST model (scored
against its own detections) to ONNX, OpenVINO and NCNN once per module and skip, naming the extra, where its
package is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import self_scored_scene
from pst_yolo.eval.export_matrix import available, install_hint
from pst_yolo.eval.tables import model_label
from pst_yolo.integration.precision import (
    PrecisionError,
    check_precision,
    openvino_hint_name,
    parse_precision,
    runtime_precision,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

needs_openvino = pytest.mark.skipif(not available("openvino"), reason=install_hint("openvino"))
needs_ncnn = pytest.mark.skipif(not available("ncnn"), reason=install_hint("ncnn"))


# ------------------------------------------------------------------------------------------------
# Which paths are models, and which precisions each runtime takes (no export needed)
# ------------------------------------------------------------------------------------------------
def test_precision_names_and_switches():
    assert [parse_precision(v) for v in ("f32", "FP32", "bfloat16", "f16", "half")] == [
        *("fp32", "fp32", "bf16", "fp16", "fp16")
    ]
    assert check_precision("openvino", "f16") == "fp16" and check_precision("openvino", None) is None
    assert check_precision("onnx", "fp32") == "fp32"  # what ONNX Runtime computes in anyway: nothing to switch
    with pytest.raises(PrecisionError, match=r"ONNX Runtime has no precision switch \(it runs in fp32 here\)"):
        check_precision("onnx", "bf16")
    with pytest.raises(PrecisionError, match=r"PyTorch has no precision switch.*OpenVINO \(fp32, bf16, fp16\)"):
        check_precision("pt", "fp16")
    with pytest.raises(PrecisionError, match="precision=int4: expected one of fp32, bf16, fp16"):
        parse_precision("int4")
    assert [openvino_hint_name(h) for h in ("<Type: 'bfloat16'>", "f32", "<Type: 'float16'>")] == [
        *("bf16", "fp32", "fp16")
    ]


def test_export_labels_name_the_run_and_the_format():
    assert model_label("runs/pst/weights/best_openvino_model") == "pst-openvino"
    assert model_label("runs/pst/weights/best.onnx") == "pst-onnx"
    assert model_label("m_ncnn_model") == "m-ncnn" and model_label("m.torchscript") == "m-torchscript"
    assert model_label("runs/pst/weights/best.pt") == "pst" and model_label("yolo11n-pst.yaml") == "yolo11n-pst"


@pytest.fixture
def coco_set(tmp_path):
    """A COCO JSON and image folder good enough to reach the model checks (they come first)."""
    import cv2

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    gt = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8]}],
        "categories": [{"id": 1, "name": "a"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    return ("images=" + str(tmp_path / "images"), "annotations=" + str(tmp_path / "gt.json"))


def test_folders_that_are_not_exports_are_refused_in_one_line(cli, coco_set, tmp_path):
    plain = tmp_path / "weights"
    plain.mkdir()
    cli.error(
        "evaluate", f"model={plain}", *coco_set, match=r"is a folder, not an Ultralytics export; give .*_openvino_model"
    )
    empty = tmp_path / "best_openvino_model"
    empty.mkdir()
    cli.error("evaluate", f"model={empty}", *coco_set, match=r"named like an export \(format openvino\) but holds none")
    stray = tmp_path / "model.xml"
    stray.write_text("<net/>")
    cli.error("evaluate", f"model={stray}", *coco_set, match="an OpenVINO .xml is loaded through its export folder")
    cli.error("evaluate", f"model={tmp_path / 'gone.onnx'}", *coco_set, match="model not found: .*gone.onnx")
    cli.error("compare", f"model={plain}", f"data={tmp_path}", match="is a folder, not an Ultralytics export")
    cli.error("bench", f"models={plain}", f"project={tmp_path / 'b'}", match="is a folder, not an Ultralytics export")


@pytest.mark.parametrize(
    "folder, file", [("best_ncnn_model", "model.ncnn.param"), ("best_executorch_model", "best.pte")]
)
def test_a_file_inside_an_export_folder_stands_for_the_folder(folder, file, tmp_path):
    from pst_yolo.eval.inputs import check_model_file
    from pst_yolo.integration.runtime import export_format

    if export_format(folder) is None:
        pytest.skip(f"this Ultralytics has no {folder.split('_')[1]} format")  # (ExecuTorch: from 8.4)
    folder = tmp_path / folder
    folder.mkdir()
    (folder / file).write_bytes(b"")
    (folder / "metadata.yaml").write_text("imgsz: [64, 64]\nbatch: 1\n")
    assert check_model_file(folder / file) == str(folder)  # as AutoBackend, which knows the folder's name
    assert check_model_file(folder) == str(folder)
    (folder / "metadata.yaml").unlink()
    with pytest.raises(ValueError, match=r"named like an export .* but holds none"):
        check_model_file(folder / file)  # (best.pte: not taken for a .pt checkpoint either)


def test_speed_refuses_an_export_it_would_export_again(cli, tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read: the name decides")
    cli.error("speed", f"models={onnx}", "runtime=torch", match="is an export; speed takes .pt/.yaml models")


def test_bad_precision_is_refused_before_anything_runs(cli, coco_set):
    cli.error(
        "evaluate", "model=yolo11n-pst.yaml", *coco_set, "precision=fp64", match="precision=fp64: expected one of"
    )
    cli.error(
        "evaluate", "model=yolo11n-pst.yaml", *coco_set, "precision=bf16", match="PyTorch has no precision switch"
    )


@needs_openvino
def test_openvino_compiles_get_the_hint_inside_the_block_only():
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 8], np.float32)
    model = ov.Model([ops.matmul(x, ops.constant(np.ones((8, 8), np.float32)), False, False)], [x])
    method = ov.Core.compile_model
    # ask for a precision this CPU has and that is not its default, so the hint visibly changes what runs
    # (an AVX512-BF16 CPU without fp16 arithmetic runs an f16 hint in bf16)
    default = openvino_hint_name(ov.Core().compile_model(model, "CPU").get_property("INFERENCE_PRECISION_HINT"))
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    has = ["fp32", *(["bf16"] if "BF16" in capabilities else []), *(["fp16"] if "FP16" in capabilities else [])]
    asked = next((p for p in reversed(has) if p != default), "fp32")
    with runtime_precision("openvino", asked) as ran:
        ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})  # (Ultralytics' call, positional)
        ov.Core().compile_model(model, device_name="CPU")
    assert ran.compiled == [asked, asked] and (ran.label(), ran.how()) == (asked, "given")
    assert ov.Core.compile_model is method  # the wrapper is gone
    with runtime_precision("openvino") as ran:  # the default is read back, whatever OpenVINO chose on this CPU
        compiled = ov.Core().compile_model(model, "CPU")
    assert ran.compiled == [openvino_hint_name(compiled.get_property("INFERENCE_PRECISION_HINT"))]
    assert ran.how() == "OpenVINO's default here"


# ------------------------------------------------------------------------------------------------
# Scoring: one model, its exports, the same AP
# ------------------------------------------------------------------------------------------------
IMGSZ = 128
# fp32 runtimes reproduce PyTorch's raw output to ~1e-7 of its scale at k = 0 (docs/export.md); what can still
# differ is a detection at the conf=0.001 cut or an NMS tie (up to 16 of ~1330 here, all far below the ground
# truth's 20 best per image). Such a tail detection ranks after every match; the worst it could do, were it a
# match, is move recall by one object in 320 (3e-3 of AP at one IoU threshold, 3e-4 averaged over the ten).
# Measured (ultralytics 8.4.190 / torch 2.14 and 8.3.138 / torch 2.4): AP 1.0 in PyTorch and in every fp32 runtime,
# at batch 1 and 16, while OpenVINO's bf16 scores 0.88 on this model: 1e-3 keeps room on both sides.
AP_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A PST model scored against its own detections (``helpers.self_scored_scene``), plus a generated set for
    the commands that validate a data.yaml."""
    from pst_yolo.data.synth import SynthSpec, generate

    root = tmp_path_factory.mktemp("scored_exports")
    found = self_scored_scene(root, IMGSZ)
    data = generate(root / "data", SynthSpec(train=1, val=4, imgsz=IMGSZ, seed=0))
    return {**found, "root": root, "data": data, "exports": {}}


def exported(scene: dict, fmt: str) -> Path:
    """The scene's checkpoint exported to ``fmt`` (once per module)."""
    from ultralytics import YOLO

    from pst_yolo.eval.exported import export

    if fmt not in scene["exports"]:
        scene["exports"][fmt] = export(YOLO(str(scene["weights"])), fmt, IMGSZ, scene["root"] / "exports")
    return scene["exports"][fmt]


def scored(scene: dict, model, tmp_path, **kwargs):
    from pst_yolo.eval.coco import evaluate

    return evaluate(
        str(model),
        scene["images"],
        scene["annotations"],
        save=tmp_path / f"{len(list(tmp_path.iterdir()))}.json",
        verbose=False,
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference(scene, tmp_path_factory):
    """PyTorch fp32 on the scene: what every fp32 export must score."""
    return scored(scene, scene["weights"], tmp_path_factory.mktemp("reference"))


def test_pytorch_scores_its_own_detections(reference):
    assert (reference.runtime, reference.precision, reference.imgsz) == ("pt", "fp32", IMGSZ)
    assert reference.stats["AP"] > 0.99


EXPORTS = [
    pytest.param("onnx", lambda p: p, "ONNX Runtime fp32 (the runtime's own)", (), id="onnx-file"),
    pytest.param("openvino", lambda p: p, "OpenVINO fp32 (given)", ("precision=fp32",), id="openvino-folder"),
    pytest.param(
        "openvino", lambda p: next(p.glob("*.xml")), "OpenVINO fp32 (given)", ("precision=f32",), id="openvino-xml"
    ),
    pytest.param(  # (slow: PNNX converts for about 20 s on 2 cores)
        "ncnn", lambda p: p, "NCNN fp32 (the runtime's own)", (), id="ncnn-folder", marks=[needs_ncnn, pytest.mark.slow]
    ),
]


@pytest.mark.parametrize("fmt, path_of, runs_in, extra", EXPORTS)
def test_evaluate_scores_an_export_as_pytorch_at_fp32(
    fmt, path_of, runs_in, extra, scene, reference, cli, capsys, tmp_path
):
    from pst_yolo.eval.coco import score

    if not available(fmt):
        pytest.skip(install_hint(fmt))
    model = path_of(exported(scene, fmt))
    save = tmp_path / "dets.json"
    capsys.readouterr()
    argv = (f"model={model}", f"images={scene['images']}", f"annotations={scene['annotations']}", f"save={save}")
    assert cli("evaluate", *argv, *extra) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("COCO bbox evaluation"))
    assert f"(PST k=0, fixed in the export) at imgsz {IMGSZ} (the export's fixed size), {runs_in}:" in line
    ap = score(save, scene["annotations"])[0]["AP"]
    assert ap == pytest.approx(reference.stats["AP"], abs=AP_TOLERANCE), f"{fmt}: AP {ap:.5f} vs PyTorch fp32"


def test_a_runtime_without_a_switch_refuses_other_precisions(scene, cli):
    onnx = exported(scene, "onnx")
    argv = (f"model={onnx}", f"images={scene['images']}", f"annotations={scene['annotations']}")
    cli.error("evaluate", *argv, "precision=fp16", match=r"ONNX Runtime has no precision switch \(it runs in fp32")


@needs_openvino
def test_openvino_bf16_and_f32_are_run_and_reported(scene, reference, tmp_path):
    folder = exported(scene, "openvino")
    f32 = scored(scene, folder, tmp_path, precision="fp32")
    assert (f32.runtime, f32.precision, f32.precision_source) == ("openvino", "fp32", "given")
    assert f32.stats["AP"] == pytest.approx(reference.stats["AP"], abs=AP_TOLERANCE)
    assert f32.detections.name == "0.json"  # (a given save= is kept; the default name would say _fp32)
    default = scored(scene, folder, tmp_path)
    assert default.precision_source == "OpenVINO's default here"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx512_bf16" not in flags and " amx_bf16" not in flags:
        assert default.precision == "fp32"  # no bf16 arithmetic: OpenVINO's default is f32
        return
    assert default.precision == "bf16"  # OpenVINO's CPU default on AVX512-BF16 / AMX
    bf16 = scored(scene, folder, tmp_path, precision="bf16")
    assert (bf16.precision, bf16.precision_source) == ("bf16", "given")
    # This model's PST layers are redrawn at unit scale: bf16 moves its boxes (docs/export.md), so its AP drops
    assert bf16.stats["AP"] < f32.stats["AP"] - 0.05
    assert bf16.stats["AP"] == pytest.approx(default.stats["AP"], abs=AP_TOLERANCE)


@needs_openvino
def test_compare_runs_an_export_at_its_k_and_says_what_ran(scene, cli, capsys, tmp_path, monkeypatch):
    folder = exported(scene, "openvino")
    monkeypatch.chdir(tmp_path)  # Ultralytics validates into ./runs
    cli.error("compare", f"model={folder}", f"data={scene['data']}", "topk=0,8", match="an export's k is fixed")
    cli.error("compare", f"model={folder}", f"data={scene['data']}", "topk=8", match=r"layer 13 k=0, layer 16 k=0\)")
    capsys.readouterr()
    argv = (f"model={folder}", f"data={scene['data']}", "precision=fp32", "workers=0", "batch=4")
    assert cli("compare", *argv) == 0
    table = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:]]
    assert len(rows) == 1 and rows[0][:2] == ["0", str(IMGSZ)]
    assert dict(zip(header, rows[0]))["runtime"] == "OpenVINO" and dict(zip(header, rows[0]))["precision"] == "fp32"


@needs_openvino
def test_bench_scores_finished_models_and_exports_side_by_side(scene, reference, tmp_path):
    from pst_yolo.eval.bench import bench

    models = [str(scene["weights"]), str(exported(scene, "onnx")), str(next(exported(scene, "openvino").glob("*.xml")))]
    with pytest.raises(PrecisionError, match="PyTorch has no precision switch"):
        bench(models=models, topk=[0], annotations=scene["annotations"], images=scene["images"], precision="bf16")
    res = bench(
        models=models,
        topk=[0],
        annotations=scene["annotations"],
        images=scene["images"],
        precision="fp32",
        project=tmp_path,
        name="b",
        verbose=False,
    )
    rows = {r.model: r for r in res.rows}
    assert list(rows) == ["pst", "pst-onnx", "pst-openvino"]
    assert [(r.k, r.runtime, r.precision, r.imgsz) for r in rows.values()] == [
        (0, "PyTorch", "fp32", IMGSZ),
        (0, "ONNX Runtime", "fp32", IMGSZ),
        (0, "OpenVINO", "fp32", IMGSZ),
    ]
    for r in rows.values():
        assert r.stats["AP"] == pytest.approx(reference.stats["AP"], abs=AP_TOLERANCE), r.model
    assert rows["pst-onnx"].params is None and "| runs in | imgsz |" in res.table
    assert "| pst-openvino | 0 | - | - |" in res.table and "OpenVINO fp32 | 128 |" in res.table
