"""Classification: the shipped classifier configs, top-k on classifiers, the synthetic ImageFolder set,
and a 1-epoch train + val through the real ``yolo classify`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import pst_yolo
from pst_yolo.data.synth_classify import CLASS_NAMES, ClassifySynthSpec, generate_classify
from pst_yolo.eval.bench import bench
from pst_yolo.eval.tables import build_model as build_classifier
from pst_yolo.eval.tables import config_rows, config_table
from pst_yolo.nn.pst import PST, PSAttn

BIN = Path(sys.executable).parent
YOLO11 = [f"yolo11{s}" for s in "nsmlx"]
RESNETS = [18, 50, 101]
# expected PST row of each shipped classifier: layer index, (x_from, upper_from), c2 after width scaling
PST_ROW = {"yolo11": (8, [6, 7]), "resnet": (5, [3, 4])}
RESNET_PST_C2 = {18: 256, 50: 256, 101: 512}
YOLO11_WIDTH = {"n": 0.25, "s": 0.5, "m": 1.0, "l": 1.0, "x": 1.5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _logits(model, x):
    with torch.no_grad():
        out = model(x)
    return out[1] if isinstance(out, (list, tuple)) else out  # eval: (probabilities, logits)


def _layer_shapes(model, layers) -> dict:
    return {k: v.shape for k, v in model.state_dict().items() if int(k.split(".")[1]) in layers}


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", "nsmlx")
def test_yolo11_cls_pst_builds_at_every_scale(scale):
    model = build_classifier(f"yolo11{scale}-cls-pst.yaml", nc=7).eval()
    stock = build_classifier(f"yolo11{scale}-cls.yaml", nc=7).eval()
    assert model.yaml["scale"] == scale

    i, froms = PST_ROW["yolo11"]
    pst = [m for m in model.model if isinstance(m, PST)]
    assert len(pst) == 1 and model.model[i] is pst[0] and pst[0].f == froms
    width = YOLO11_WIDTH[scale]
    assert pst[0].c2 == int(512 * width)  # c2 512 in the YAML, width-scaled like stock layers
    assert pst[0].c_ % 32 == 0
    assert pst[0].c1 == model.model[6].cv2.conv.out_channels  # queries: P4 (third C3k2)
    assert pst[0].c_up == model.model[7].conv.out_channels  # keys/values: the stride-32 conv
    assert type(model.model[-1]).__name__ == "Classify"

    # the backbone up to the stride-32 conv is stock yolo11-cls, tensor for tensor; the whole model is larger
    assert _layer_shapes(model, range(8)) == _layer_shapes(stock, range(8))
    n_pst, n_stock = (sum(p.numel() for p in m.parameters()) for m in (model, stock))
    assert n_pst > n_stock

    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))  # 3x3 stride-32 tokens >= k = 8
    logits = _logits(model, x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("depth", RESNETS)
def test_resnet_cls_configs_build(depth):
    model = build_classifier(f"resnet{depth}-cls-pst.yaml", nc=5).eval()
    plain = build_classifier(f"resnet{depth}-cls.yaml", nc=5).eval()

    i, froms = PST_ROW["resnet"]
    pst = [m for m in model.model if isinstance(m, PST)]
    assert len(pst) == 1 and model.model[i] is pst[0] and pst[0].f == froms
    assert (pst[0].c1, pst[0].c_up, pst[0].c2, pst[0].n) == (1024, 2048, RESNET_PST_C2[depth], 1)
    assert not any(isinstance(m, PST) for m in plain.modules())
    # same ResNet backbone (bottleneck stages) in both: apples to apples
    assert _layer_shapes(model, range(5)) == _layer_shapes(plain, range(5))
    stages = [layer.layer for layer in plain.model[1:5]]
    blocks = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
    assert [len(s) for s in stages] == blocks
    assert all(type(b).__name__ == "ResNetBlock" and hasattr(b, "cv3") for s in stages for b in s)  # bottlenecks

    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    for m in (model, plain):
        logits = _logits(m, x)
        assert logits.shape == (1, 5) and torch.isfinite(logits).all()


def test_param_table_reports_pst_and_baseline():
    rows = config_rows(imgsz=64, nc=10, twins=[("yolo11n-cls-pst.yaml", "yolo11n-cls.yaml")])
    assert len(rows) == 1
    r = rows[0]
    assert r["pst_params"] == sum(p.numel() for p in build_classifier("yolo11n-cls-pst.yaml", nc=10).parameters())
    assert r["pst_params"] > r["stock_params"] > 0 and r["pst_gflops_k0"] > r["stock_gflops"] > 0
    table = config_table(rows)
    assert "| yolo11n-cls-pst.yaml |" in table and "| yolo11n-cls.yaml |" in table and "+" in table


# ---------------------------------------------------------------------------------------------
# Top-k on a classifier
# ---------------------------------------------------------------------------------------------
def test_topk_changes_the_logits():
    """A new model's attention adds nothing (identity start) and has a zero gate and tiny weights, so k barely
    moves its logits:
    give the attention ordinary-sized random weights and calibrate BatchNorm on one batch first."""
    torch.manual_seed(0)
    model = build_classifier("yolo11n-cls-pst.yaml", nc=10)
    g = torch.Generator().manual_seed(0)
    attns = [m for m in model.modules() if isinstance(m, PSAttn)]
    assert attns
    for attn in attns:
        nn.init.normal_(attn.gate_conv1d.weight, std=3 * (2 * attn.head_dim) ** -0.5, generator=g)
        nn.init.normal_(attn.gate_conv1d.bias, std=1.0, generator=g)
        for conv in (attn.q, attn.kv, attn.proj):
            nn.init.normal_(conv.conv.weight, std=conv.conv.in_channels**-0.5, generator=g)
        nn.init.ones_(attn.proj.bn.weight)  # a fresh layer starts as the identity: let the attention through
    x = torch.rand(4, 3, 128, 128, generator=g)  # 4x4 = 16 stride-32 tokens
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.momentum = 1.0  # running stats := this batch's
    model.train()
    with torch.no_grad():
        model(x)  # training forward: coarse only, whatever k is
    model.eval()

    logits = {}
    for k in (0, 8, 16):
        pst_yolo.set_topk(model, k)
        logits[k] = _logits(model, x)
    scale = logits[0].std().item()
    assert scale > 1e-3
    assert (logits[8] - logits[0]).abs().max().item() > 0.2 * scale  # the fine branch moves the logits
    assert (logits[16] - logits[8]).abs().max().item() > 0.1 * scale  # and which tokens are refined matters
    pst_yolo.set_topk(model, 8)
    assert torch.equal(_logits(model, x), logits[8])  # deterministic selection
    with pst_yolo.topk(model, 0):
        assert torch.equal(_logits(model, x), logits[0])
    assert pst_yolo.get_topk(model) == 8


# ---------------------------------------------------------------------------------------------
# Synthetic ImageFolder set
# ---------------------------------------------------------------------------------------------
def test_synth_classify_layout_and_determinism(tmp_path):
    spec = ClassifySynthSpec(train=3, val=2, imgsz=48, seed=3, classes=4)
    a = generate_classify(tmp_path / "a", spec)
    for split, n in (("train", 3), ("val", 2)):
        assert sorted(p.name for p in (a / split).iterdir()) == sorted(CLASS_NAMES[:4])
        for name in CLASS_NAMES[:4]:
            files = sorted((a / split / name).glob("*.png"))
            assert len(files) == n
    b = generate_classify(tmp_path / "b", spec)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)  # same arguments, same bytes
    c = generate_classify(tmp_path / "c", ClassifySynthSpec(train=5, val=2, imgsz=48, seed=3, classes=4))
    assert all((a / f).read_bytes() == (c / f).read_bytes() for f in files_a if f.parts[0] == "val")
    d = generate_classify(tmp_path / "d", ClassifySynthSpec(train=3, val=2, imgsz=48, seed=4, classes=4))
    assert any((a / f).read_bytes() != (d / f).read_bytes() for f in files_a)  # the seed matters
    import cv2

    im = cv2.imread(str(a / "val" / "disk" / "val_disk_00000.png"))
    assert im.shape == (48, 48, 3) and im.std() > 5

    with pytest.raises(ValueError, match="classes"):
        ClassifySynthSpec(classes=1)
    with pytest.raises(ValueError, match="per class"):
        ClassifySynthSpec(train=0)


def test_cli_functions(tmp_path, capsys, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)  # a run folder made by mistake would land here, not in the repository
    assert cli("synth", tmp_path / "s", "task=classify", "train=1", "val=1", "imgsz=40", "classes=3") == 0
    assert len(list((tmp_path / "s" / "train").rglob("*.png"))) == 3
    assert "yolo classify train" in capsys.readouterr().out
    cli.error("synth", "task=classify", "out=x", "epochs=3", match="unknown key 'epochs'")
    cli.error("synth", "task=depth", match="no task=depth")
    cli.error("synth", "task=classify", tmp_path / "t", "classes=99", match="classes")
    cli.error("bench", "task=classify", "data=somewhere", "train=5", match="do not apply with data=")
    cli.error("bench", "task=classify", f"data={tmp_path / 'missing'}", match="ImageFolder")
    cli.error("bench", "task=classify", "topk=a,b", match="comma-separated")
    assert not (tmp_path / "runs").exists()  # refused before anything was written


# ---------------------------------------------------------------------------------------------
# End to end: the real `yolo classify` command, then compare and the benchmark
# ---------------------------------------------------------------------------------------------
def _run(args: list[str], cwd: Path, **env) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env={**os.environ, "YOLO_VERBOSE": "true", **env}, capture_output=True, text=True, timeout=300
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{log[-4000:]}"
    assert "Traceback" not in log, log[-4000:]
    return log


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    data = generate_classify(root / "data", ClassifySynthSpec(train=4, val=2, imgsz=64, seed=1, classes=4))
    return root, data


@pytest.mark.slow
def test_yolo_classify_train_val_compare(tiny_cls, monkeypatch):
    root, data = tiny_cls
    monkeypatch.chdir(root)  # compare() validates into ./runs/classify/val*
    common = [
        "imgsz=96",
        "batch=8",
        "workers=0",
        "device=cpu",
        "plots=False",
        f"project={root / 'runs'}",
        "exist_ok=True",
    ]
    log = _run(
        [
            str(BIN / "yolo"),
            "classify",
            "train",
            "model=yolo11n-cls-pst.yaml",
            f"data={data}",
            "epochs=1",
            "name=train",
            *common,
        ],
        cwd=root,
    )
    assert "pst_yolo.PST" in log  # the model table shows the real PST layer
    assert "PST top-k: layer 8 k=8 (coarse + fine)" in log  # validation inside training runs the fine branch
    best = root / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()

    log = _run(
        [str(BIN / "yolo"), "classify", "val", f"model={best}", f"data={data}", "name=val", *common],
        cwd=root,
        PST_TOPK="0",
    )
    assert "PST top-k: layer 8 k=0 (coarse only)" in log
    assert "top1_acc" in log and "top5_acc" in log

    from pst_yolo.eval.compare import compare, markdown_table

    rows = compare(str(best), str(data), topk=[0, 8], imgsz=96, batch=8, workers=0, device="cpu")
    assert [r["k"] for r in rows] == [0, 8]
    for r in rows:
        assert set(r) == {"k", "top1", "top5", "ms/image", "imgsz", "runtime", "precision"} and r["imgsz"] == 96
        assert (r["runtime"], r["precision"]) == ("PyTorch", "fp32")  # what ran, as for detection
        assert 0.0 <= r["top1"] <= r["top5"] <= 1.0
    assert "top1" in markdown_table(rows)


@pytest.mark.slow
def test_bench_classify_tiny(tiny_cls):
    root, data = tiny_cls
    result = bench(
        task="classify",
        data=data,
        topk=[0, 8],
        epochs=1,
        imgsz=96,
        batch=8,
        project=root / "bench",
        name="b",
        recipe="fast",
        verbose=False,
    )
    assert [(r.model, r.k) for r in result.rows] == [
        ("yolo11n-cls", None),
        ("yolo11n-cls-pst", 0),
        ("yolo11n-cls-pst", 8),
    ]
    for r in result.rows:
        assert 0.0 <= r.stats["top1"] <= r.stats["top5"] <= 1.0 and r.params > 0 and r.ms_per_image > 0
        assert Path(r.weights).is_file()
    assert result.rows[1].params > result.rows[0].params
    assert result.settings["train_args"]["optimizer"] == "AdamW" and result.settings["eval_batch"] == 1
    text = result.markdown.read_text()
    assert "| yolo11n-cls-pst | 8 |" in text and "top1" in text
    assert len(result.csv.read_text().splitlines()) == 4
