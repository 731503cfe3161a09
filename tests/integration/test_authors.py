"""Checkpoints of the PST authors' fork (inlmouse/P2HCT, Ultralytics 8.3.105): load, convert, parity.

``fixtures/authors_yolo11n_pst.pt`` and ``fixtures/authors_yolo11n_cls_pst.pt`` were written by the authors' own
code; their ``*_record.pt`` hold what the authors' model computes at k = 0 and k = 8 (fixtures/README.md). The
ResNet checkpoints below are synthesized here (see ``_write_authors_style``), not written by their code.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from ultralytics import YOLO
from ultralytics.nn import tasks

import pst_yolo
from helpers import FIXTURES, REPO
from pst_yolo.integration import authors
from pst_yolo.integration.runtime import quiet_ultralytics
from pst_yolo.nn.pst import PST, GateConv1d, PSAttn, PSAttnBlock

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")
# name -> (fixture stem, absolute tolerance, PST layers, pst-yolo config that builds the same network)
CASES = {
    "detect": ("authors_yolo11n_pst", 2e-3, [11, 14], "yolo12n-pst.yaml"),
    "classify": ("authors_yolo11n_cls_pst", 1e-5, [8], None),  # pst-yolo's yolo11n-cls-pst is narrower
}


def _stock_torch_safe_load():
    """Ultralytics' own torch_safe_load, without pst-yolo's wrapper (no compatibility path)."""
    pst_yolo.register()
    return tasks.torch_safe_load.__pst_yolo_original__


def _record(stem: str) -> dict:
    return torch.load(FIXTURES / f"{stem}_record.pt", weights_only=True)


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return out[0] if isinstance(out, (list, tuple)) else out


def _assert_matches_record(model: nn.Module, record: dict, atol: float) -> None:
    """k = 0 and k = 8 each within atol of the authors' output, and the two records are told apart."""
    assert (record["out_k0"] - record["out_k8"]).abs().max() > 10 * atol  # the check can see a wrong k
    for k in (0, 8):
        pst_yolo.set_topk(model, k)
        out = _forward(model, record["x"])
        assert out.shape == record[f"out_k{k}"].shape
        err = (out - record[f"out_k{k}"]).abs().max().item()
        assert err <= atol, f"k={k}: max abs error {err} > {atol}"


@contextlib.contextmanager
def _ultralytics_log():
    """Lines Ultralytics' LOGGER emits at INFO and above (the tests run with YOLO_VERBOSE=false)."""
    from ultralytics.utils import LOGGER

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler, level = Keep(level=logging.INFO), LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)


@pytest.fixture(params=sorted(CASES))
def case(request):
    stem, atol, layers, layout = CASES[request.param]
    return request.param, FIXTURES / f"{stem}.pt", _record(stem), atol, layers, layout


@pytest.fixture(autouse=True)
def _no_env_topk(monkeypatch):
    monkeypatch.delenv("PST_TOPK", raising=False)


# ---------------------------------------------------------------------------------------------
# Loading the authors' fixtures
# ---------------------------------------------------------------------------------------------
def test_stock_ultralytics_cannot_load_the_fixtures(case):
    _, path, *_ = case
    with pytest.raises(AttributeError, match="Can't get attribute 'PST'"):
        _stock_torch_safe_load()(str(path))


def test_yolo_loads_fixture_and_reproduces_the_authors_outputs(case):
    task, path, record, atol, layers, _ = case
    model = YOLO(str(path))
    assert model.task == task
    assert [name for name, _ in pst_yolo.pst_layers(model.model)] == [f"model.{i}" for i in layers]
    _assert_matches_record(model.model.float().eval(), record, atol)


def test_loading_keeps_every_tensor_dtype_gate_and_metadata(case):
    _, path, *_ = case
    theirs = authors.read_fork_checkpoint(path)
    stand_in = theirs["model"]
    ckpt, file = tasks.torch_safe_load(str(path))  # the wrapped loader every Ultralytics path uses
    assert file == str(path)
    model = ckpt["model"]
    assert isinstance(model, tasks.BaseModel)
    stored = authors._stand_in_state_dict(stand_in)
    ours = model.state_dict()
    assert ours.keys() == stored.keys()
    for key, tensor in stored.items():
        assert ours[key].dtype == tensor.dtype, key  # fp16 stays fp16, as Ultralytics keeps it until .float()
        assert torch.equal(ours[key], tensor), key
    gates = [v for k, v in ours.items() if k.endswith("gate_conv1d.weight")]
    assert gates and all(g.abs().sum() > 0 for g in gates)  # their trained/random gate, not our zero init
    for key in ("date", "version", "license", "docs"):
        assert ckpt[key] == theirs[key]
    assert ckpt["version"] == "8.3.105"
    assert model.names == stand_in.names and model.args == stand_in.args
    if "train_args" in theirs:
        assert ckpt["train_args"] == theirs["train_args"]
        assert YOLO(str(path)).model.args["imgsz"] == theirs["train_args"]["imgsz"]  # Ultralytics merges them
    else:  # saved with the fork's YOLO.save(): only the task is recorded (Ultralytics < 8.4 reads it there)
        assert ckpt["train_args"] == {"task": model.task}


def test_safe_load_mode_also_reads_them():
    """Under Ultralytics' allow-list loading (ULTRALYTICS_SAFE_LOAD=1) the stock load refuses the fork's classes;
    the restricted unpickler, which runs none of them, still reads the file."""
    path = FIXTURES / "authors_yolo11n_pst.pt"
    try:
        _stock_torch_safe_load()(str(path), safe_only=True)
    except (TypeError, pickle.UnpicklingError):
        pass
    else:  # Ultralytics < 8.4 maps unknown classes to placeholders itself in this mode (and nothing calls it)
        pytest.skip("this Ultralytics' safe_only load does not refuse unknown classes")
    ckpt, _ = tasks.torch_safe_load(str(path), safe_only=True)
    assert isinstance(ckpt["model"], tasks.DetectionModel)


def test_default_topk_and_overrides(case, monkeypatch):
    _, path, *_, layout = case
    with _ultralytics_log() as lines:
        model = YOLO(str(path))
    assert pst_yolo.get_topk(model) == authors.AUTHORS_TOPK == 8
    text = "\n".join(lines)
    assert "PST authors' fork" in text and "PST top-k: layer" in text and "k=8" in text
    # the log names pst-yolo's config only where it builds the same network (their yolo11n-cls-pst is wider)
    assert (f"= pst-yolo's {layout}" if layout else "wider than pst-yolo's yolo11n-cls-pst.yaml") in text

    monkeypatch.setenv("PST_TOPK", "3")
    with _ultralytics_log() as lines:
        assert pst_yolo.get_topk(YOLO(str(path))) == 3
    assert "k=3" in "\n".join(lines) and "PST_TOPK" in "\n".join(lines)
    monkeypatch.delenv("PST_TOPK")

    assert pst_yolo.set_topk(model, 0) == 8 and pst_yolo.get_topk(model) == 0  # explicit set_topk wins


def test_a_file_that_is_not_theirs_keeps_ultralytics_error(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(Exception) as stock:
        _stock_torch_safe_load()(str(broken))
    with pytest.raises(type(stock.value)) as ours:  # e.g. TypeError "... not a loadable checkpoint" on 8.4
        YOLO(str(broken))
    assert str(ours.value) == str(stock.value)
    error = RuntimeError("the original failure")
    with pytest.raises(RuntimeError, match="the original failure"):
        authors.load_after_failure(error, str(broken))
    with pytest.raises(RuntimeError, match="the original failure"):
        authors.load_after_failure(error, str(tmp_path / "missing.pt"))


class _MakesADirectory:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.makedirs, (str(self.path),)


def test_restricted_unpickler_runs_no_pickled_code(tmp_path):
    target = tmp_path / "made_by_unpickling"
    torch.save({"model": _MakesADirectory(target)}, tmp_path / "evil.pt")
    with pytest.raises(authors.ForeignGlobalError, match="makedirs"):
        authors.read_fork_checkpoint(tmp_path / "evil.pt")
    assert not target.exists()
    with pytest.raises(authors.AuthorsCheckpointError, match="not a checkpoint of the PST authors' fork"):
        authors.convert(tmp_path / "evil.pt", tmp_path / "out.pt")


def test_a_mismatch_is_an_error_naming_the_layer():
    path = FIXTURES / "authors_yolo11n_pst.pt"
    wider = authors.read_fork_checkpoint(path)["model"]
    wider.yaml = copy.deepcopy(wider.yaml)
    wider.yaml["head"][5][3][0] = 512  # layer 14 (PST) declared twice as wide as the stored weights
    with pytest.raises(authors.AuthorsCheckpointError, match=r"layer 14 \(checkpoint: PST, rebuilt: PST\)"):
        authors.rebuild_model(wider)

    unknown = authors.read_fork_checkpoint(path)["model"]
    unknown.yaml = copy.deepcopy(unknown.yaml)
    unknown.yaml["head"][8][2] = "NoSuchBlock"  # layer 17
    with pytest.raises(authors.AuthorsCheckpointError, match=r"does not build with today's Ultralytics.*NoSuchBlock"):
        authors.rebuild_model(unknown)

    missing = authors.read_fork_checkpoint(path)["model"]
    attn = missing._modules["model"]._modules["11"]._modules["attnlayer_0"]._modules["attn"]
    del attn._modules["gate_conv1d"]._parameters["bias"]
    with pytest.raises(authors.AuthorsCheckpointError, match=r"layer 11 .*gate_conv1d\.bias' is in the rebuilt model"):
        authors.rebuild_model(missing)


# ---------------------------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------------------------
def test_convert_writes_a_checkpoint_stock_ultralytics_loads(case, tmp_path):
    task, path, record, atol, layers, layout = case
    out = tmp_path / "converted.pt"
    report = pst_yolo.convert(path, out)
    assert report.layout == layout and report.task == task and report.topk == 8
    summary = report.summary()
    if layout:
        assert layout in summary and "yolo11-pst" in summary  # their name next to ours
    ckpt, _ = _stock_torch_safe_load()(str(out))  # no compatibility path involved
    assert ckpt["pst_yolo"]["layout"] == layout
    assert ckpt["pst_yolo"]["converted_from"]["version"] == "8.3.105"
    assert next(ckpt["model"].parameters()).dtype == torch.float16
    theirs = authors.read_fork_checkpoint(path)
    assert ckpt["model"].names == theirs["model"].names
    if "train_args" in theirs:
        assert ckpt["train_args"] == theirs["train_args"]
    if layout:
        assert ckpt["model"].yaml["yaml_file"] == layout

    model = YOLO(str(out))
    assert pst_yolo.get_topk(model) == 8  # the k saved with it
    _assert_matches_record(model.model.float().eval(), record, atol)

    with pytest.raises(FileExistsError, match="overwrite=true"):
        pst_yolo.convert(path, out)
    assert pst_yolo.convert(path, out, overwrite=True, topk=0).topk == 0
    assert pst_yolo.get_topk(YOLO(str(out))) == 0
    with pytest.raises(authors.AuthorsCheckpointError, match="need no conversion"):
        pst_yolo.convert(out, tmp_path / "again.pt")


def test_convert_command(tmp_path, cli, capsys):
    src = FIXTURES / "authors_yolo11n_pst.pt"
    out = tmp_path / "ours.pt"
    assert cli("convert", f"source={src}", f"out={out}") == 0
    printed = capsys.readouterr().out
    assert "yolo12n-pst.yaml" in printed and "yolo11-pst" in printed and "PST top-k: layer 11 k=8" in printed
    cli.error("convert", f"source={src}", f"out={out}", match="already exists; pass overwrite=true")
    assert cli("convert", src, out, "overwrite=true", "topk=0") == 0  # both bare words
    assert "PST top-k: layer 11 k=0" in capsys.readouterr().out
    assert cli("convert", src, f"out={out}", "--overwrite") == 0  # one bare word, a --flag
    assert pst_yolo.get_topk(YOLO(str(out))) == 8
    cli.error("convert", f"source={src}", match="needs out=")
    cli.error("convert", f"source={src}", f"out={tmp_path / 'x.onnx'}", match="out must be a .pt file")
    cli.error("convert", src, out, "extra", match="'extra' is not key=value")
    cli.error("convert", f"source={src}", f"out={out}", "topk=-1", match="topk=-1: topk must be a non-negative")
    cli.error("convert", tmp_path / "missing.pt", out, match="missing.pt does not exist")


# ---------------------------------------------------------------------------------------------
# The authors' ResNet layouts
# ---------------------------------------------------------------------------------------------
# The authors' r{18,50,101}-pst.yaml and r{18,50,101}-cls-pst.yaml (inlmouse/P2HCT, ultralytics/cfg/models/pst/),
# as data: stage depths, their single scale, and the rows as their files write them.
RESNET_BLOCKS = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
RESNET_SCALE = {18: ("n", [0.50, 0.25, 1024]), 50: ("n", [0.50, 0.25, 1024]), 101: ("s", [0.50, 0.50, 1024])}
RESNET_CLS_SCALE = {18: ("n", [0.50, 0.25, 1024]), 50: ("n", [0.50, 0.25, 1024]), 101: ("s", [0.50, 0.50, 1024])}


def _resnet_rows(depth: int) -> list:
    b = RESNET_BLOCKS[depth]
    return [
        [-1, 1, "ResNetLayer", [3, 64, 1, True, 1]],
        [-1, 1, "ResNetLayer", [64, 64, 1, False, b[0]]],
        [-1, 1, "ResNetLayer", [256, 128, 2, False, b[1]]],
        [-1, 1, "ResNetLayer", [512, 256, 2, False, b[2]]],
        [-1, 1, "ResNetLayer", [1024, 512, 2, False, b[3]]],
    ]


def authors_resnet_cfg(depth: int, task: str) -> dict:
    """The authors' ResNet config as their fork's ``yaml_model_load`` returns it (scale '' from the file name)."""
    if task == "detect":
        scale, values = RESNET_SCALE[depth]
        backbone = _resnet_rows(depth) + [[-1, 1, "Conv", [1024, 1, 1]], [-1, 4, "A2C2f", [1024, True, 1]]]
        head = [
            [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
            [[-1, 3], 1, "Concat", [1]],
            [[-1, 6], 2, "PST", [512, 2, 0.5]],
            [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
            [[-1, 2], 1, "Concat", [1]],
            [[-1, 3], 2, "PST", [256, 2, 0.5]],
            [-1, 1, "Conv", [256, 3, 2]],
            [[-1, 9], 1, "Concat", [1]],
            [-1, 2, "A2C2f", [512, False, -1]],
            [-1, 1, "Conv", [512, 3, 2]],
            [[-1, 6], 1, "Concat", [1]],
            [-1, 2, "C3k2", [1024, True]],
            [[12, 15, 18], 1, "Detect", ["nc"]],
        ]
        name, nc = f"r{depth}-pst.yaml", 80
    else:
        scale, values = RESNET_CLS_SCALE[depth]
        backbone = _resnet_rows(depth) + [
            [[3, -1], 2, "PST", [1024, 2, 0.5]],
            [[-1, 3], 1, "Concat", [1]],
            [-1, 1, "Conv", [1024, 3, 2]],
            [[-1, 4], 1, "Concat", [1]],
            [-1, 2, "Conv", [1024, 1, 1]],
        ]
        head = [[-1, 1, "Classify", ["nc"]]]
        name, nc = f"r{depth}-cls-pst.yaml", 1000
    return {
        "nc": nc,
        "scales": {scale: values},
        "backbone": backbone,
        "head": head,
        "scale": "",
        "yaml_file": f"/their/ultralytics/cfg/models/pst/{name}",
        "ch": 3,
    }


def _quiet(builder, *args, **kwargs):
    with quiet_ultralytics():
        return builder(*args, **kwargs)


def _channels_by_reference(cfg: dict) -> list[int]:
    """Output channels of each layer, by the authors' parse rules for the modules these configs use (reference)."""
    import math

    depth_, width, max_c = next(iter(cfg["scales"].values()))
    ch, out = [3], []
    for i, (f, _, m, args) in enumerate(cfg["backbone"] + cfg["head"]):
        if m == "ResNetLayer":
            c = args[1] if args[3] else args[1] * 4
        elif m in ("Conv", "A2C2f", "C3k2", "PST"):
            c = math.ceil(min(args[0], max_c) * width / 8) * 8
        elif m == "Concat":
            c = sum(ch[j + 1] if j >= 0 else ch[i + 1 + j] for j in f)  # ch[0] is the input image
        elif m == "nn.Upsample":
            c = ch[-1]
        else:
            c = 0  # Detect / Classify: no feature map consumed here
        ch.append(c)
        out.append(c)
    return out


def _pst_tensors_by_reference(c1: int, c_up: int, c2: int, n: int, e: float, mlp_ratio: float) -> dict:
    """Tensor names and shapes of the authors' PST(c1, c_up, c2, n, mlp_ratio, e) (their naming, head dim 32)."""
    c_ = int(c2 * e)
    hd, hidden = 32, int(c_ * mlp_ratio)

    def conv(name, cout, cin, k=1, groups=1):
        d = {f"{name}.conv.weight": (cout, cin // groups, k, k)}
        d.update({f"{name}.bn.{p}": (cout,) for p in ("weight", "bias", "running_mean", "running_var")})
        d[f"{name}.bn.num_batches_tracked"] = ()
        return d

    t = {**conv("cv1", c_, c1), **conv("cvup", c_, c_up), **conv("cv2", c2, (1 + n) * c_)}
    for i in range(n):
        a = f"attnlayer_{i}.attn"
        t.update(
            {
                **conv(f"{a}.q", c_, c_),
                **conv(f"{a}.kv", 2 * c_, c_),
                **conv(f"{a}.proj", c_, c_),
                **conv(f"{a}.pe", c_, c_, k=7, groups=c_),
                f"{a}.gate_conv1d.weight": (hd, 2 * hd, 1),
                f"{a}.gate_conv1d.bias": (hd,),
                **conv(f"attnlayer_{i}.mlp.0", hidden, c_),
                **conv(f"attnlayer_{i}.mlp.1", c_, hidden),
            }
        )
    return t


def _tensors_of(model: nn.Module, i: int) -> dict:
    prefix = f"model.{i}."
    return {k[len(prefix) :]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(prefix)}


def _check_resnet_det_layout(depth: int) -> None:
    ours = _quiet(tasks.DetectionModel, f"resnet{depth}-pst.yaml", verbose=False)
    theirs = _quiet(tasks.DetectionModel, cfg=authors_resnet_cfg(depth, "detect"), verbose=False)
    assert authors._layer_signature(ours) == authors._layer_signature(theirs)  # layer for layer
    shipped = yaml.safe_load((pst_yolo.cfg_dir() / f"resnet{depth}-pst.yaml").read_text())
    cfg = authors_resnet_cfg(depth, "detect")
    assert shipped["scales"] == cfg["scales"]
    assert shipped["backbone"] + shipped["head"] == cfg["backbone"] + cfg["head"]  # their rows, verbatim

    ch = _channels_by_reference(cfg)
    depth_mult = next(iter(cfg["scales"].values()))[0]
    for i, (f, n, _, args) in enumerate(cfg["backbone"] + cfg["head"]):
        if isinstance(ours.model[i], PST):
            c1, c_up = ch[i - 1] if f[0] == -1 else ch[f[0]], ch[f[1]]
            expected = _pst_tensors_by_reference(c1, c_up, ch[i], max(round(n * depth_mult), 1), args[2], args[1])
            assert _tensors_of(ours, i) == expected, i
    assert [i for i, m in enumerate(ours.model) if isinstance(m, PST)] == [9, 12]

    base = _quiet(tasks.DetectionModel, f"resnet{depth}-det.yaml", verbose=False)
    sig_pst, sig_base = authors._layer_signature(ours), authors._layer_signature(base)
    assert len(sig_pst) == len(sig_base) == 20
    for i, (a, b) in enumerate(zip(sig_pst, sig_base)):
        if i in (9, 12):
            assert b[0].endswith("A2C2f") and b[1] == i - 1  # the stock YOLO12 block, fed by the same concat
        else:
            assert a == b, i
    assert torch.equal(ours.stride, base.stride) and ours.stride.tolist() == [8.0, 16.0, 32.0]


def test_resnet18_detection_configs_are_the_authors_layout():
    _check_resnet_det_layout(18)


@pytest.mark.slow
@pytest.mark.parametrize("depth", [50, 101])
def test_resnet_detection_configs_are_the_authors_layout(depth):
    _check_resnet_det_layout(depth)


def test_configs_table_pairs_resnet_detectors_with_their_baselines():
    from pst_yolo.eval.tables import _twins

    for depth in RESNET_BLOCKS:
        assert _twins(pst_yolo.cfg_dir() / f"resnet{depth}-pst.yaml") == [
            (f"resnet{depth}-pst.yaml", f"resnet{depth}-det.yaml")
        ]
        assert _twins(pst_yolo.cfg_dir() / f"resnet{depth}-cls-pst.yaml") == [
            (f"resnet{depth}-cls-pst.yaml", f"resnet{depth}-cls.yaml")
        ]


_FORK_NAMES = {PST: "PST", PSAttnBlock: "PSAttnBlock", PSAttn: "PSAttn"}


def _write_authors_style(model: nn.Module, path: Path) -> None:
    """Pickle ``model`` the way the authors' fork lays out a checkpoint (SYNTHESIZED here, not written by their code).

    The PST classes are pickled under the fork's names ``ultralytics.nn.modules.block.{PST,PSAttnBlock,PSAttn}``
    (stand-in classes injected into today's module for the duration of ``torch.save``), the gate as a plain
    ``torch.nn.Conv1d``, with the fork's extra attributes (``num_layers``, ``topk`` = 0, ``tau``); fp16; the dict
    of their trainer's stripped ``best.pt`` (epoch -1, optimizer/ema None, version 8.3.105).
    """
    from ultralytics.nn.modules import block

    fakes = {
        cls: type(name, (nn.Module,), {"__module__": "ultralytics.nn.modules.block"})
        for cls, name in _FORK_NAMES.items()
    }
    m = copy.deepcopy(model).half().eval()
    for mod in m.modules():
        if isinstance(mod, PST):
            mod.num_layers = mod.n
        if isinstance(mod, PSAttn):
            mod.topk, mod.tau = 0, 1.0
        if isinstance(mod, GateConv1d):
            mod.__class__ = nn.Conv1d
    for mod in m.modules():
        if type(mod) in fakes:
            mod.__class__ = fakes[type(mod)]
    assert not any(hasattr(block, name) for name in _FORK_NAMES.values())  # today's Ultralytics has none of them
    for cls, name in _FORK_NAMES.items():
        setattr(block, name, fakes[cls])
    try:
        torch.save(
            {
                "date": "2026-08-18T00:00:00",
                "version": "8.3.105",
                "license": "AGPL-3.0",
                "epoch": -1,
                "best_fitness": None,
                "model": m,
                "ema": None,
                "updates": None,
                "optimizer": None,
                "train_args": {"imgsz": 640, "data": "coco.yaml"},
            },
            path,
        )
    finally:
        for name in _FORK_NAMES.values():
            delattr(block, name)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random gates and BatchNorm statistics/affine terms, so every stored tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if isinstance(mod, GateConv1d):
            mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=g) * 0.3)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.3)
    return model


def _check_synthetic_resnet_checkpoint(depth: int, task: str, tmp_path: Path) -> None:
    builder = tasks.DetectionModel if task == "detect" else tasks.ClassificationModel
    source = _randomize(_quiet(builder, cfg=authors_resnet_cfg(depth, task), verbose=False)).eval()
    source.names = {i: f"class{i}" for i in range(source.yaml["nc"])}
    path = tmp_path / f"r{depth}-{task}.pt"
    _write_authors_style(source, path)
    with pytest.raises(AttributeError, match="Can't get attribute 'PST'"):
        _stock_torch_safe_load()(str(path))

    ckpt, _ = tasks.torch_safe_load(str(path))
    loaded = ckpt["model"]
    assert ckpt["version"] == "8.3.105" and ckpt["train_args"] == {"imgsz": 640, "data": "coco.yaml"}
    expected = copy.deepcopy(source).half().state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    assert loaded.names == source.names
    suffix = "-pst.yaml" if task == "detect" else "-cls-pst.yaml"
    assert authors.verify_layout(loaded) == f"resnet{depth}{suffix}"

    reference = copy.deepcopy(source).half().float().eval()  # the stored (fp16-rounded) weights, our layer
    loaded = loaded.float().eval()
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    for k in (0, 8):
        pst_yolo.set_topk(reference, k)
        pst_yolo.set_topk(loaded, k)
        torch.testing.assert_close(_forward(loaded, x), _forward(reference, x), rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "classify"])
def test_synthetic_authors_style_resnet18_checkpoint_loads(task, tmp_path):
    """The authors' r18-pst / r18-cls-pst layouts through the load path, with a SYNTHESIZED authors-style
    checkpoint (``_write_authors_style``), not one written by their code."""
    _check_synthetic_resnet_checkpoint(18, task, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("depth,task", [(50, "detect"), (101, "detect"), (50, "classify"), (101, "classify")])
def test_synthetic_authors_style_resnet_checkpoints_load(depth, task, tmp_path):
    """As above for ResNet-50/101; the checkpoints are SYNTHESIZED, not written by the authors' code."""
    _check_synthetic_resnet_checkpoint(depth, task, tmp_path)


@pytest.fixture(scope="module")
def tiny_det(tmp_path_factory) -> Path:
    from pst_yolo.data.synth import SynthSpec, generate

    return generate(tmp_path_factory.mktemp("authors_det"), SynthSpec(train=8, val=4, imgsz=128, seed=3))


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"resnet{d}-{kind}.yaml" for d in (18, 50, 101) for kind in ("pst", "det")])
def test_resnet_detection_configs_train_one_epoch(name, tiny_det, tmp_path):
    model = YOLO(name)
    model.train(
        data=str(tiny_det),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        device="cpu",
        plots=False,
        project=str(tmp_path),
        name="t",
        exist_ok=True,
        amp=False,
        verbose=False,
    )
    best = tmp_path / "t" / "weights" / "best.pt"
    assert best.is_file()
    reloaded = YOLO(str(best))
    assert len(pst_yolo.pst_layers(reloaded)) == (2 if name.endswith("-pst.yaml") else 0)


# ---------------------------------------------------------------------------------------------
# Parity through export and the yolo command
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 8])
def test_onnx_export_reproduces_the_authors_outputs(case, k, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    task, path, record, atol, *_ = case
    local = tmp_path / path.name  # export writes next to the weights
    shutil.copy(path, local)
    model = YOLO(str(local))
    pst_yolo.set_topk(model, k)
    x = record["x"]
    onnx_file = model.export(format="onnx", imgsz=list(x.shape[-2:]), batch=x.shape[0], opset=17, device="cpu")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    recorded = ast.literal_eval(session.get_modelmeta().custom_metadata_map["pst_topk"])  # {"11": k, ...}
    assert set(recorded.values()) == {k}
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    assert got.shape == record[f"out_k{k}"].shape
    err = (got - record[f"out_k{k}"]).abs().max().item()
    assert err <= atol, f"{task} k={k}: ONNX max abs error {err} > {atol}"


def _run(args: list[str], cwd: Path, env: dict | None = None) -> str:
    env = {**os.environ, "YOLO_VERBOSE": "true", **(env or {})}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{log[-4000:]}"
    assert "Traceback" not in log, log[-4000:]
    return log


def _two_class_copy(data_yaml: Path, out: Path) -> Path:
    """The synthetic set reduced to the fixture's 2 classes (labels of classes 0 and 1 only)."""
    shutil.copytree(data_yaml.parent, out)
    for label in (out / "labels").rglob("*.txt"):
        label.write_text("".join(line + "\n" for line in label.read_text().splitlines() if line.split()[0] in "01"))
    for cache in (out / "labels").glob("*.cache"):
        cache.unlink()
    d = yaml.safe_load((out / "data.yaml").read_text())
    d["names"] = {0: "box", 1: "blob"}
    (out / "data.yaml").write_text(yaml.safe_dump(d))
    return out / "data.yaml"


@pytest.mark.slow
def test_yolo_command_val_predict_and_pst_yolo_convert(tiny_det, tmp_path):
    weights = tmp_path / "authors_yolo11n_pst.pt"
    shutil.copy(FIXTURES / weights.name, weights)
    data = _two_class_copy(tiny_det, tmp_path / "data2")
    common = [
        "imgsz=128",
        "batch=4",
        "workers=0",
        "device=cpu",
        "plots=False",
        f"project={tmp_path / 'runs'}",
        "exist_ok=True",
    ]
    log = _run([str(BIN / "yolo"), "val", f"model={weights}", f"data={data}", *common, "name=val"], tmp_path)
    assert "PST authors' fork" in log and "PST top-k: layer 11 k=8, layer 14 k=8" in log and "mAP50-95" in log
    log = _run(
        [str(BIN / "yolo"), "val", f"model={weights}", f"data={data}", *common, "name=val0"],
        tmp_path,
        env={"PST_TOPK": "0"},
    )
    assert "PST top-k: layer 11 k=0, layer 14 k=0 (coarse only)" in log
    log = _run(
        [
            str(BIN / "yolo"),
            "predict",
            f"model={weights}",
            f"source={data.parent / 'images' / 'val'}",
            "imgsz=128",
            "device=cpu",
            "conf=0.001",
            f"project={tmp_path / 'runs'}",
            "name=pred",
            "exist_ok=True",
        ],
        tmp_path,
    )
    assert "PST top-k: layer 11 k=8, layer 14 k=8" in log
    assert len(list((tmp_path / "runs" / "pred").glob("*.*g"))) == 4

    log = _run(
        [
            str(BIN / "yolo"),
            "train",
            f"model={weights}",
            f"data={data}",
            "epochs=1",
            "imgsz=64",
            "batch=4",
            "workers=0",
            "device=cpu",
            "plots=False",
            f"project={tmp_path / 'runs'}",
            "name=ft",
            "exist_ok=True",
        ],
        tmp_path,
    )  # fine-tuning starts from their weights
    assert "Transferred" in log and "PST authors' fork" in log
    tuned = YOLO(str(tmp_path / "runs" / "ft" / "weights" / "best.pt"))
    assert [name for name, _ in pst_yolo.pst_layers(tuned.model)] == ["model.11", "model.14"]

    out = tmp_path / "ours.pt"
    log = _run([str(BIN / "pst-yolo"), "convert", f"source={weights}", f"out={out}"], tmp_path)
    assert "yolo12n-pst.yaml" in log
    log = _run(
        [str(BIN / "pst-yolo"), "val", f"model={out}", f"data={data}", "topk=0", *common, "name=val_conv"], tmp_path
    )
    assert "PST authors' fork" not in log  # today's format: no compatibility path
    assert "PST top-k: layer 11 k=0, layer 14 k=0 (coarse only)" in log


@pytest.mark.slow
def test_yolo_classify_val_on_the_authors_classifier(tmp_path):
    from pst_yolo.data.synth_classify import ClassifySynthSpec, generate_classify

    data = generate_classify(tmp_path / "cls", ClassifySynthSpec(train=1, val=2, imgsz=64, classes=10))
    weights = tmp_path / "authors_yolo11n_cls_pst.pt"
    shutil.copy(FIXTURES / weights.name, weights)
    log = _run(
        [
            str(BIN / "yolo"),
            "classify",
            "val",
            f"model={weights}",
            f"data={data}",
            "imgsz=128",
            "batch=4",
            "workers=0",
            "device=cpu",
            "plots=False",
            f"project={tmp_path / 'runs'}",
            "name=val",
            "exist_ok=True",
        ],
        tmp_path,
    )
    assert "PST top-k: layer 8 k=8 (coarse + fine)" in log and "top1" in log.lower()


@pytest.mark.slow
def test_coco_eval_authors_script_runs(tiny_det, tmp_path):
    """scripts/coco_eval_authors.sh end to end on the synthetic COCO-format set, with a SYNTHESIZED authors-style
    checkpoint (their yolo11n-pst layout = yolo12n-pst, random weights, the set's 5 class names): it runs, scores at
    k = 0 and 8 with pycocotools, and prints the authors' published figures next to the scores."""
    from pst_yolo.data.synth import CLASS_NAMES

    model = _quiet(tasks.DetectionModel, "yolo12n-pst.yaml", nc=len(CLASS_NAMES), verbose=False)
    model.yaml["yaml_file"] = "/their/ultralytics/cfg/models/pst/yolo11n-pst.yaml"
    model.names = dict(enumerate(CLASS_NAMES))
    weights = tmp_path / "p2hct_n.pt"
    _write_authors_style(_randomize(model), weights)
    root = tiny_det.parent
    env = {
        "N": str(weights),
        "ANNOTATIONS": str(root / "annotations" / "instances_val.json"),
        "IMAGES": str(root / "images" / "val"),
        "DEVICE": "cpu",
        "IMGSZ": "128",
        "BATCH": "4",
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    log = _run(["bash", str(REPO / "scripts" / "coco_eval_authors.sh")], tmp_path, env=env)
    assert "| YOLOv11-P²HCT-N (p2hct_n.pt) | 39.4 | 40.3 |" in log
    assert "pst-yolo k=0 | pst-yolo k=8" in log
    assert "PST top-k: layer 11 k=8, layer 14 k=8" in log and "Gumbel" in log
    assert (tmp_path / "out" / "results.md").is_file()
    assert {p.name for p in (tmp_path / "out").glob("*.json")} == {"N_k0_detections.json", "N_k8_detections.json"}
