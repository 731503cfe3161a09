"""Segmentation, pose, oriented boxes and YOLO26 with PST, end to end (all slow).

Per config: one epoch with the literal `yolo` command on generated data of its task; then the same
coarse-train / fine-inference policy as detection (training never runs the fine branch, validation does),
checkpoint k and PST_TOPK, predict at k = 0 and 8, ONNX export at k = 0 (`PST_TOPK=0 yolo export`) and
k = 8 (set_topk) matching PyTorch in onnxruntime. Then YOLO26 specifics (NMS-free head, MuSGD).
`pst-yolo bench task=...` is tested in tests/eval/test_bench_tasks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import pst_yolo
from helpers import make_attention_matter, pst_gates, ultralytics_ships
from pst_yolo.data.synth import SynthSpec, generate
from pst_yolo.data.synth_tasks import generate_task

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
IMGSZ = 96  # P5 is 3 x 3 = 9 coarse tokens: k = 8 fits every PST level, no clamping
SPEC = SynthSpec(train=8, val=4, imgsz=IMGSZ, seed=1)
CASES = {  # id -> (config, task)
    "seg": ("yolo11n-seg-pst.yaml", "segment"),
    "pose": ("yolo11n-pose-pst.yaml", "pose"),
    "obb": ("yolo11n-obb-pst.yaml", "obb"),
    "yolo26": ("yolo26n-pst.yaml", "detect"),
}


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, "YOLO_VERBOSE": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@dataclass
class Trained:
    config: str
    task: str
    root: Path
    data: Path
    best: Path
    log: str


NO_YOLO26 = pytest.mark.skipif(not ultralytics_ships("yolo26n.yaml"), reason="YOLO26 needs Ultralytics 8.4")


@pytest.fixture(
    scope="module", params=[pytest.param(c, marks=[NO_YOLO26] if c == "yolo26" else []) for c in sorted(CASES)]
)
def trained(request, tmp_path_factory) -> Trained:
    config, task = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    data = generate(root / "data", SPEC) if task == "detect" else generate_task(root / "data", task, SPEC)
    log = _run(
        [
            str(BIN / "yolo"),
            task,
            "train",
            f"model={config}",
            f"data={data}",
            "epochs=1",
            f"imgsz={IMGSZ}",
            "batch=4",
            "workers=0",
            "device=cpu",
            "plots=False",
            f"project={root / 'runs'}",
            "name=train",
            "exist_ok=True",
        ],
        cwd=root,
    )
    best = root / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    return Trained(config, task, root, data, best, log)


def test_cli_training_is_coarse_only_and_validation_runs_fine(trained):
    from ultralytics import YOLO

    # validation (after the epoch, and of best.pt) ran with the inference k
    assert trained.log.count("PST top-k: layer 13 k=8, layer 16 k=8 (coarse + fine)") >= 2, trained.log[-3000:]
    for name in ("best.pt", "last.pt"):
        model = YOLO(str(trained.best.parent / name))
        assert model.task == trained.task
        assert len(pst_yolo.pst_layers(model)) == 2
        # New layers start with a zero gate; a training step that ran the fine branch would have moved it.
        for g in pst_gates(model.model):
            assert not g.weight.any() and not g.bias.any(), name


def test_checkpoint_k_env_override_and_set_topk(trained, monkeypatch):
    from ultralytics import YOLO

    monkeypatch.delenv("PST_TOPK", raising=False)
    assert pst_yolo.get_topk(YOLO(str(trained.best))) == 8
    monkeypatch.setenv("PST_TOPK", "0")
    model = YOLO(str(trained.best))
    assert pst_yolo.get_topk(model) == 0
    pst_yolo.set_topk(model, 4)
    assert pst_yolo.get_topk(model) == 4


def _task_output(result, task: str) -> torch.Tensor:
    if task == "segment":
        return result.masks.data
    if task == "pose":
        return result.keypoints.data
    if task == "obb":
        return result.obb.data
    return result.boxes.data


def test_predict_at_k0_and_k8(trained):
    from ultralytics import YOLO

    model = YOLO(str(trained.best))
    images = sorted((trained.data.parent / "images" / "val").glob("*.png"))
    seen = []  # the P3 PST output of each call (the predictor's copy keeps the hook)
    model.model.model[16].register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))

    def predict(k):
        pst_yolo.set_topk(model, k)
        r = model.predict(str(images[0]), imgsz=IMGSZ, conf=0.0, device="cpu", verbose=False)[0]
        return _task_output(r, trained.task).clone(), seen[-1]

    (out_a, feat_a), (out_b, feat_b) = predict(8), predict(8)
    assert len(out_a) > 0
    if trained.task == "pose":
        assert out_a.shape[1:] == (4, 3)
    if trained.task == "obb":
        assert out_a.shape[1] == 7  # x, y, w, h, angle, conf, cls
    assert torch.equal(out_a, out_b) and torch.equal(feat_a, feat_b)  # deterministic fine branch
    _, feat_coarse = predict(0)
    assert not torch.equal(feat_a, feat_coarse)  # k reached the layer: the fine branch changed its output


def _amplified_checkpoint(best: Path, out: Path) -> Path:
    """best.pt made so that k shows in the outputs (after one epoch the attention weights are near their
    0.02-std init, BatchNorm statistics near (0, 1) and the class logits flat): the detection tests' recipe."""
    from ultralytics import YOLO

    model = YOLO(str(best))
    make_attention_matter(model.model, seed=0)
    model.save(str(out))
    return out


def _torch_outputs(path: Path, k: int, x: torch.Tensor, end2end: bool = False) -> list[np.ndarray]:
    """Every inference output of the fused model (what export traces): e.g. [detections, mask prototypes]."""
    from ultralytics import YOLO

    model = YOLO(str(path))
    pst_yolo.set_topk(model, k)
    if end2end:
        model.model.end2end = True
    model.model.fuse()
    with torch.inference_mode():
        out = model.model.eval()(x)
    first = out[0] if isinstance(out, (list, tuple)) else out
    outs = list(first) if isinstance(first, (list, tuple)) else [first]
    if len(outs) == 1 and hasattr(model.model.model[-1], "proto") and isinstance(out, (list, tuple)):
        outs.append(out[1][-1])  # Ultralytics < 8.4: (detections, (raw maps, mask coefficients, prototypes))
    return [t.numpy() for t in outs]


def _class_rows(out: np.ndarray, nc: int = 5) -> np.ndarray:
    return out[:, 4 : 4 + nc]


@pytest.fixture(scope="module")
def amplified(trained, tmp_path_factory) -> Path:
    return _amplified_checkpoint(trained.best, tmp_path_factory.mktemp("amp") / f"{Path(trained.config).stem}.pt")


def _export(path: Path, k: int, cwd: Path, cli: bool) -> Path:
    from ultralytics import YOLO

    if cli:  # the literal command, k from the environment
        _run(
            [str(BIN / "yolo"), "export", f"model={path}", "format=onnx", f"imgsz={IMGSZ}", "opset=17"],
            cwd=cwd,
            env={"PST_TOPK": str(k)},
        )
        return path.with_suffix(".onnx")
    model = YOLO(str(path))  # Python, k from set_topk
    pst_yolo.set_topk(model, k)
    return Path(model.export(format="onnx", imgsz=IMGSZ, opset=17))


@pytest.mark.parametrize("k", [0, 8])
def test_onnx_export_matches_pytorch(trained, amplified, k):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    onnx_path = _export(trained.best, k, trained.root, cli=(k == 0))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["task"] == trained.task
    parts = meta["pst_topk"].strip("{}").split(",")
    assert len(parts) == 2 and all(part.strip().endswith(f": {k}") for part in parts), meta["pst_topk"]
    assert ("TopK" in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}) == (k > 0)  # the fine selection

    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(2))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    expected = _torch_outputs(trained.best, k, x)
    assert [g.shape for g in got] == [e.shape for e in expected]  # e.g. detections + mask prototypes
    for g, e in zip(got, expected):  # the trained checkpoint: the cli_e2e tolerance
        np.testing.assert_allclose(g, e, atol=1e-3, rtol=1e-4)

    if k:  # the exported fine branch really changes the outputs, as in PyTorch (weights where k shows)
        session = ort.InferenceSession(
            str(_export(amplified, k, trained.root, cli=False)), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        fine, coarse = _torch_outputs(amplified, k, x)[0], _torch_outputs(amplified, 0, x)[0]
        # Class scores (in [0, 1]). This contrived network is chaotic where selection scores nearly tie: 1e-6 of
        # input noise already moves a few anchors' scores by 0.1-0.3 in PyTorch itself, and float rounding
        # between runtimes does the same. So compare typical (median) differences, not the worst anchor.
        error = np.median(np.abs(_class_rows(got) - _class_rows(fine)))
        change = np.median(np.abs(_class_rows(got) - _class_rows(coarse)))
        assert error <= 1e-3 and change > 20 * max(error, 1e-6), (error, change)


# --------------------------------------------------------------------------------------------
# YOLO26 specifics
# --------------------------------------------------------------------------------------------
def test_yolo26_pst_keeps_the_end_to_end_head(trained):
    if trained.task != "detect":
        pytest.skip("YOLO26 only")
    ort = pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    model = YOLO(str(trained.best))
    head = model.model.model[-1]
    assert head.one2one_cv2 is not None and head.reg_max == 1
    image = str(sorted((trained.data.parent / "images" / "val").glob("*.png"))[0])
    for k in (0, 8):
        pst_yolo.set_topk(model, k)
        a = model.predict(image, imgsz=IMGSZ, conf=0.0, nms=False, max_det=20, device="cpu", verbose=False)[0]
        b = model.predict(image, imgsz=IMGSZ, conf=0.0, nms=False, max_det=20, device="cpu", verbose=False)[0]
        assert 0 < len(a.boxes) <= 20 and torch.equal(a.boxes.data, b.boxes.data)
    # NMS-free export (nms=False): top-k of the one-to-one head inside the graph
    pst_yolo.set_topk(model, 8)
    onnx_path = Path(model.export(format="onnx", imgsz=IMGSZ, opset=17, nms=False))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(4))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0][0]
    expected = _torch_outputs(trained.best, 8, x, end2end=True)[0][0]
    assert got.shape == expected.shape and got.shape[1] == 6  # x1, y1, x2, y2, score, class
    # An untrained head scores many anchors within float rounding of each other, so the order of tied
    # rows may differ between runtimes: compare the sorted scores, and each box with its nearest PyTorch box.
    np.testing.assert_allclose(np.sort(got[:, 4]), np.sort(expected[:, 4]), atol=1e-5)
    nearest = np.abs(got[:, None, :4] - expected[None, :, :4]).max(-1).min(1)
    assert nearest.max() <= 1e-4 * np.abs(expected[:, :4]).max() + 1e-3


@NO_YOLO26
def test_yolo26_pst_trains_with_musgd_and_keeps_the_gate(tmp_path):
    """YOLO26's optimizer (MuSGD, what optimizer=auto picks for long runs) with coarse-only training."""
    from ultralytics import YOLO

    data = generate(tmp_path / "data", SPEC)
    model = YOLO("yolo26n-pst.yaml")
    snap: dict = {}

    def on_train_start(trainer):
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():  # a trained-looking (non-zero) gate, so "unchanged" is a real claim
            for g in pst_gates(trainer.model):
                g.weight.copy_(torch.randn(g.weight.shape, generator=gen))
                g.bias.copy_(torch.randn(g.bias.shape, generator=gen))
        snap["gates"] = [(g.weight.clone(), g.bias.clone()) for g in pst_gates(trainer.model)]
        snap["q"] = [
            b.attn.q.conv.weight.clone() for _, layer in pst_yolo.pst_layers(trainer.model) for b in layer._blocks()
        ]
        snap["optimizer"] = type(trainer.optimizer).__name__

    model.add_callback("on_train_start", on_train_start)
    model.train(
        data=str(data),
        epochs=1,
        imgsz=IMGSZ,
        batch=4,
        workers=0,
        device="cpu",
        plots=False,
        val=False,
        optimizer="MuSGD",
        project=str(tmp_path),
        name="musgd",
        exist_ok=True,
        verbose=False,
        amp=False,
    )
    trainer = model.trainer
    assert snap["optimizer"] == "MuSGD"
    for (w0, b0), g in zip(snap["gates"], pst_gates(trainer.model)):
        assert torch.equal(w0, g.weight) and torch.equal(b0, g.bias)
    q_after = [b.attn.q.conv.weight for _, layer in pst_yolo.pst_layers(trainer.model) for b in layer._blocks()]
    assert any(not torch.equal(a, b) for a, b in zip(snap["q"], q_after))  # the attention itself did train
