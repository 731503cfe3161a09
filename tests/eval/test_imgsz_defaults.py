"""Defaults that cannot mislead: every evaluation and inference command runs a checkpoint at the size it was
trained at (as ``yolo val`` does), says which size it used, and warns when an explicit ``imgsz=`` differs."""

from __future__ import annotations

import warnings

import pytest

from helpers import save_trained_at
from pst_yolo.integration.runtime import ImageSizeWarning, choose_imgsz, training_imgsz

TRAINED = 64  # far from the 640 default, so a run at the default shows


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny generated set and a PST checkpoint that records training at 64 px."""
    from pst_yolo.data.synth import SynthSpec, generate

    root = tmp_path_factory.mktemp("imgsz")
    data = generate(root / "data", SynthSpec(train=2, val=2, imgsz=TRAINED, seed=0))
    weights = save_trained_at(root / "pst64.pt", "yolo11n-pst.yaml", TRAINED)
    return data, weights


def test_training_size_comes_from_the_checkpoint(small):
    from ultralytics import YOLO

    _, weights = small
    yolo = YOLO(str(weights))
    assert training_imgsz(yolo) == TRAINED
    assert choose_imgsz(yolo, None) == (TRAINED, "the model's training size")
    assert training_imgsz(YOLO("yolo11n-pst.yaml")) is None  # a config records no size: 640
    assert choose_imgsz(YOLO("yolo11n-pst.yaml"), None) == (640, "default")


def test_an_explicit_size_that_differs_warns(small):
    from ultralytics import YOLO

    yolo = YOLO(str(small[1]))
    with pytest.warns(ImageSizeWarning, match=f"differs from the size .* trained at \\({TRAINED}\\)"):
        assert choose_imgsz(yolo, 96) == (96, "given")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageSizeWarning)
        assert choose_imgsz(yolo, TRAINED) == (TRAINED, "given")  # the same size: no warning


def test_compare_uses_and_shows_the_training_size(small, tmp_path, monkeypatch, cli, capsys):
    data, weights = small
    monkeypatch.chdir(tmp_path)  # Ultralytics validates into ./runs
    capsys.readouterr()
    assert cli("compare", f"model={weights}", f"data={data}", "topk=8", "batch=2", "workers=0", "device=cpu") == 0
    out = capsys.readouterr().out
    header = [c.strip() for c in out.splitlines()[-3].strip("|").split("|")]
    row = [c.strip() for c in out.splitlines()[-1].strip("|").split("|")]
    assert header[:2] == ["k", "imgsz"] and row[:2] == ["8", str(TRAINED)]

    from pst_yolo.eval.compare import compare

    with pytest.warns(ImageSizeWarning):
        rows = compare(str(weights), str(data), topk=[8], imgsz=96, batch=2, workers=0, device="cpu")
    assert rows[0]["imgsz"] == 96


def test_evaluate_uses_and_reports_the_training_size(small, tmp_path, capsys):
    from pst_yolo.eval.coco import evaluate

    data, weights = small
    root = data.parent
    res = evaluate(
        str(weights),
        root / "images" / "val",
        root / "annotations" / "instances_val.json",
        class_map=root / "coco_map.json",
        save=tmp_path / "dets.json",
        progress=False,
    )
    assert (res.imgsz, res.imgsz_source) == (TRAINED, "the model's training size")
    assert f"at imgsz {TRAINED} (the model's training size)" in capsys.readouterr().out


def test_detector_for_demo_and_explain_uses_the_training_size(small):
    from pst_yolo.viz.detector import Detector

    det = Detector(str(small[1]), verbose=False)
    assert det.imgsz == TRAINED and det.args["imgsz"] == TRAINED
    assert any(f"imgsz {TRAINED}" in n for n in det.notes)
    with pytest.warns(ImageSizeWarning):
        assert Detector(str(small[1]), imgsz=96, verbose=False).imgsz == 96


def test_bench_of_checkpoints_uses_their_size_and_lists_no_training(small, tmp_path):
    from pst_yolo.eval.bench import bench

    data, weights = small
    res = bench(
        data=str(data), models=[str(weights)], topk=[8], project=tmp_path, name="b", verbose=False, eval_batch=1
    )
    assert [r.imgsz for r in res.rows] == [TRAINED]
    md = res.markdown.read_text()
    assert "evaluation only" in md
    for word in ("epochs", "recipe", "training settings", "fine-aware"):
        assert word not in md, word
    header = [
        c.strip() for c in md.splitlines()[md.splitlines().index(res.table.splitlines()[0])].strip("|").split("|")
    ]
    assert header[-1] == "imgsz" and res.table.splitlines()[-1].rstrip(" |").endswith(str(TRAINED))


def test_cli_warning_is_one_line(small, tmp_path, monkeypatch, cli, capsys):
    data, weights = small
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    argv = ("compare", f"model={weights}", f"data={data}", "topk=0", "imgsz=96", "batch=2", "workers=0", "device=cpu")
    assert cli(*argv) == 0
    err = capsys.readouterr().err
    assert f"pst-yolo compare: warning: imgsz=96 differs from the size {weights} was trained at ({TRAINED})" in err
    assert "warnings.warn" not in err and "runtime.py" not in err


def test_an_export_runs_at_its_fixed_size(monkeypatch):
    """An export's metadata holds its input size as text (ONNX: ``'[96, 96]'``); a dynamic export has none."""
    from types import SimpleNamespace

    from pst_yolo.integration import runtime

    exported = SimpleNamespace(model="best.onnx", ckpt=None)
    monkeypatch.setattr(runtime, "exported_metadata", lambda path: {"imgsz": "[96, 96]", "args": "{'dynamic': False}"})
    assert training_imgsz(exported) == 96
    assert choose_imgsz(exported, None) == (96, "the export's fixed size")
    with pytest.warns(ImageSizeWarning, match="fixed input size 96; imgsz=640 ignored"):
        assert choose_imgsz(exported, 640) == (96, "the export's fixed size")
    monkeypatch.setattr(runtime, "exported_metadata", lambda path: {"imgsz": "[96, 96]", "args": "{'dynamic': True}"})
    assert choose_imgsz(exported, None) == (640, "default")


@pytest.mark.slow
def test_a_real_onnx_export_reports_its_size(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    path = YOLO("yolo11n.yaml").export(format="onnx", imgsz=96)
    assert training_imgsz(YOLO(path)) == 96
