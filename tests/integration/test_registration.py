"""How pst_yolo hooks into Ultralytics: stock models untouched, autoload, CLI, wiring, scaling, errors, weights, top-k."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import types
from copy import deepcopy
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn import tasks

import pst_yolo
from helpers import ultralytics_ships
from pst_yolo.integration.model_parsing import PSTConfigError, cfg_dir
from pst_yolo.nn.pst import PST

try:
    from ultralytics.utils.ops import make_divisible
except ImportError:  # older layouts
    from ultralytics.utils import make_divisible

pst_yolo.register()  # normally done by the autoload hook already; idempotent


STOCK = [
    n
    for n in (
        "yolo11n.yaml",
        "yolo12n.yaml",
        "yolov8n.yaml",
        "yolo26n.yaml",
        "yolo11n-seg.yaml",
        "yolo11n-cls.yaml",
        "yolo11n-pose.yaml",
        "yolo11n-obb.yaml",
        "yolo26n-seg.yaml",
        "yolo26n-pose.yaml",
        "yolo26n-obb.yaml",
    )
    if ultralytics_ships(n)
]
SUBPROCESS_TIMEOUT = 180

# Shared by the test process and the plugin-off subprocess, so both describe models the same way.
DESCRIBE_SRC = r"""
import json, sys

def describe(names):
    import torch
    from ultralytics import YOLO
    out = {}
    for name in names:
        model = YOLO(name, verbose=False).model
        stride = getattr(model, "stride", None)
        out[name] = {
            "layers": [
                [type(m).__module__ + "." + type(m).__qualname__, m.type, m.f, m.i, sum(p.numel() for p in m.parameters())]
                for m in model.model
            ],
            "save": list(model.save),
            "params": sum(p.numel() for p in model.parameters()),
            "stride": stride.tolist() if isinstance(stride, torch.Tensor) else stride,
        }
    return json.loads(json.dumps(out))
"""


def _env(**overrides: str) -> dict:
    env = dict(os.environ)
    env.pop("PST_YOLO_AUTOLOAD", None)
    env["OMP_NUM_THREADS"] = "1"  # small models; avoids OpenMP spin-waiting on a busy 2-core machine
    env.update(overrides)
    return env


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def _yaml(name: str, scale: str = "n") -> dict:
    d = yaml.safe_load((cfg_dir() / name).read_text())
    d["scale"] = scale
    return d


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pst_n():
    """A yolo11n-pst DetectionModel for read-only checks."""
    return tasks.DetectionModel("yolo11n-pst.yaml", verbose=False).eval()


# --------------------------------------------------------------------------------------------
# Stock models and the installed package are untouched
# --------------------------------------------------------------------------------------------
def test_register_wraps_the_ultralytics_seams():
    assert pst_yolo.integration.registry.is_registered()
    for fn in (tasks.parse_model, tasks.check_yaml, tasks.BaseModel.load):
        assert getattr(fn, "__pst_yolo_original__", None) is not None, fn
    original = tasks.parse_model
    pst_yolo.register()  # idempotent: no double wrapping
    assert tasks.parse_model is original


@pytest.mark.slow
def test_stock_models_build_exactly_as_without_plugin(tmp_path):
    code = DESCRIBE_SRC + (
        "from ultralytics.nn import tasks\n"
        "print(json.dumps({'pst_loaded': any(k.split('.')[0] == 'pst_yolo' for k in sys.modules),\n"
        "                  'wrapped': hasattr(tasks.parse_model, '__pst_yolo_original__'),\n"
        f"                  'models': describe({STOCK!r})}}))\n"
    )
    proc = _python(code, tmp_path, PST_YOLO_AUTOLOAD="0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    off = json.loads(proc.stdout.strip().splitlines()[-1])
    assert off["pst_loaded"] is False and off["wrapped"] is False  # the reference really is plugin-free

    # this process: plugin registered, so the comparison exercises the wrappers
    assert hasattr(tasks.parse_model, "__pst_yolo_original__")
    ns: dict = {}
    exec(DESCRIBE_SRC, ns)
    on = ns["describe"](STOCK)
    for name in STOCK:
        assert on[name]["layers"], name
        assert on[name] == off["models"][name], name
        assert not any("pst" in row[0].lower() or "pst" in str(row[1]).lower() for row in on[name]["layers"])


def _record_check() -> tuple[int, list[str], list[str]]:
    """Compare every hashed file of the installed ultralytics with its RECORD entry; list unlisted files."""
    dist = importlib.metadata.distribution("ultralytics")
    checked, bad = 0, []
    listed = set()
    for f in dist.files or []:
        path = Path(f.locate()).resolve()
        listed.add(path)
        if f.hash is None:
            continue
        if not path.is_file():
            bad.append(f"{f} (missing)")
            continue
        digest = hashlib.new(f.hash.mode, path.read_bytes()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != f.hash.value:
            bad.append(str(f))
        checked += str(f).endswith(".py")
    root = Path(dist.locate_file("ultralytics")).resolve()
    extra = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.resolve() not in listed
    ]
    return checked, bad, extra


def test_installed_ultralytics_is_not_edited():
    checked, bad, extra = _record_check()
    assert checked > 100  # the RECORD really lists the package's modules
    assert bad == [] and extra == [], (bad, extra)

    pst_yolo.register()
    pst_yolo.integration.registry.register()
    model = YOLO("yolo12n-pst.yaml", verbose=False)
    assert len(pst_yolo.pst_layers(model)) == 2
    pst_yolo.set_topk(model, 2)

    assert _record_check() == (checked, [], [])


# --------------------------------------------------------------------------------------------
# Autoload in fresh interpreters, and its off switch
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_autoload_builds_pst_in_a_fresh_interpreter(tmp_path):
    code = (
        "import sys\n"
        "from ultralytics import YOLO\n"
        "m = YOLO('yolo11n-pst.yaml', verbose=False)\n"
        "print(type(m.model.model[16]).__module__, type(m.model.model[16]).__name__)\n"
        "print(type(m.model.model[13]).__module__)\n"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "pst_yolo.nn.pst PST"
    assert lines[-1] == "pst_yolo.nn.pst"


@pytest.mark.slow
@pytest.mark.parametrize("first", ["from pst_yolo.nn.pst import PST", "import pst_yolo; pst_yolo.set_topk"])
def test_autoload_when_pst_yolo_is_imported_before_ultralytics(tmp_path, first):
    # pst_yolo.pst imports Ultralytics, whose import triggers the registration hook mid-import
    code = (
        f"{first}\n"
        "from ultralytics import YOLO\n"
        "from ultralytics.nn import tasks\n"
        "print(hasattr(tasks.parse_model, '__pst_yolo_original__'))\n"
        "print(type(YOLO('yolo11n-pst.yaml', verbose=False).model.model[13]).__name__)\n"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-2:] == ["True", "PST"]


@pytest.mark.slow
def test_autoload_imports_nothing_heavy_at_start(tmp_path):
    code = (
        "import sys; print(sorted(k for k in ('torch', 'ultralytics', 'pst_yolo.integration.registry', "
        "'pst_yolo.integration.autoload') if k in sys.modules))"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['pst_yolo.integration.autoload']"


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_autoload_switch_values(tmp_path, value):
    proc = _python(
        "import sys; print('pst_yolo.integration.autoload' in sys.modules)", tmp_path, PST_YOLO_AUTOLOAD=value
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.slow
def test_autoload_off_means_no_pst_until_registered(tmp_path):
    code = (
        "import sys\n"
        "from ultralytics import YOLO\n"
        "try:\n"
        "    YOLO('yolo11n-pst.yaml', verbose=False)\n"
        "    print('BUILT')\n"
        "except FileNotFoundError as e:\n"
        "    print('FileNotFoundError', e)\n"
        "print(any(k.split('.')[0] == 'pst_yolo' for k in sys.modules))\n"
        "import pst_yolo; pst_yolo.register()\n"
        "print(type(YOLO('yolo11n-pst.yaml', verbose=False).model.model[13]).__name__)\n"
    )
    proc = _python(code, tmp_path, PST_YOLO_AUTOLOAD="0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-3].startswith("FileNotFoundError") and "-pst.yaml" in lines[-3]
    assert lines[-2] == "False"
    assert lines[-1] == "PST"


@pytest.mark.slow
def test_yolo_console_script_builds_pst_model(tmp_path):
    yolo = Path(sys.executable).parent / ("yolo.exe" if os.name == "nt" else "yolo")
    if not yolo.exists():
        pytest.skip(f"no yolo console script next to {sys.executable}")
    import cv2
    import numpy as np

    assert cv2.imwrite(str(tmp_path / "img.png"), np.full((64, 64, 3), 127, np.uint8))
    fused = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False).fuse(verbose=False)
    n_fused = sum(p.numel() for p in fused.parameters())

    proc = subprocess.run(
        [str(yolo), "predict", "model=yolo11n-pst.yaml", "source=img.png", "imgsz=64", "save=False", "device=cpu"],
        cwd=tmp_path,
        env=_env(YOLO_VERBOSE="true"),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert "YOLO11n-pst summary" in output
    assert f"{n_fused:,} parameters" in output  # the CLI built the same PST model as this process
    assert "64x64" in output


# --------------------------------------------------------------------------------------------
# Wiring and scaling of PST rows
# --------------------------------------------------------------------------------------------
def test_pst_from_and_save_list(pst_n):
    layers = pst_n.model
    assert isinstance(layers[13], PST) and isinstance(layers[16], PST)
    assert layers[13].f == [-1, 10] and layers[16].f == [-1, 6]
    assert layers[13].i == 13 and layers[16].i == 16
    assert layers[13].type == layers[16].type == "pst_yolo.PST"
    for j in (4, 6, 10, 13, 16, 19, 22):
        assert j in pst_n.save, (j, pst_n.save)
    assert pst_n.save == sorted(set(pst_n.save))
    assert sum(isinstance(m, PST) for m in pst_n.modules()) == 2


def test_pst_channels_match_real_inputs(pst_n):
    outputs, inputs = {}, {}
    hooks = [
        pst_n.model[j].register_forward_hook(lambda m, a, o, j=j: outputs.__setitem__(j, o))
        for j in (6, 10, 12, 15, 13, 16)
    ]
    hooks += [pst_n.model[j].register_forward_pre_hook(lambda m, a, j=j: inputs.__setitem__(j, a[0])) for j in (13, 16)]
    try:
        with torch.no_grad():
            pst_n(torch.zeros(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()

    for i, x_from, up_from in ((13, 12, 10), (16, 15, 6)):
        layer = pst_n.model[i]
        x, upper = inputs[i]
        assert x is outputs[x_from] and upper is outputs[up_from]  # wired to the layers named in 'from'
        assert layer.c1 == outputs[x_from].shape[1]
        assert layer.c_up == outputs[up_from].shape[1]
        assert layer.c2 == outputs[i].shape[1]
        assert outputs[up_from].shape[-1] * 2 == x.shape[-1]  # upper is the half-resolution map
        assert outputs[i].shape[-2:] == x.shape[-2:]


@pytest.mark.parametrize(
    "cfg,scale",
    [("yolo11-pst.yaml", s) for s in "nslmx"] + [("yolo12-pst.yaml", s) for s in "nsm"],
)
def test_pst_width_and_depth_scaling(cfg, scale):
    d = _yaml(cfg, scale)
    depth, width, max_channels = d["scales"][scale]
    rows = list(d["backbone"]) + list(d["head"])
    pst_rows = {i: row for i, row in enumerate(rows) if row[2] == "PST"}
    assert len(pst_rows) == 2
    with torch.device("meta"):  # channel bookkeeping only: no weights, no forward
        seq, save = tasks.parse_model(deepcopy(d), ch=3, verbose=False)
    assert len(seq) == len(rows)  # probe layers are gone
    for i, (f, reps, _, args) in pst_rows.items():
        layer = seq[i]
        assert isinstance(layer, PST)
        assert layer.c2 == make_divisible(min(args[0], max_channels) * width, 8), (i, layer.c2)
        assert layer.n == max(round(reps * depth), 1), (i, layer.n)
        assert layer.mlp_ratio == args[1] and layer.e == args[2]
        assert layer.c_ == int(layer.c2 * args[2])
        assert f[1] in save
    # the P3 PST feeds the stock downsampling Conv right after it: that Conv was built for PST's c2
    p3 = max(pst_rows)
    assert seq[p3 + 1].f == -1
    assert seq[p3 + 1].conv.in_channels == seq[p3].c2


# --------------------------------------------------------------------------------------------
# Bad PST rows: errors that name the layer
# --------------------------------------------------------------------------------------------
def _bad(mutate) -> dict:
    d = _yaml("yolo11-pst.yaml", "n")
    mutate(d)
    return d


def _set_row13(row):
    return lambda d: d["head"].__setitem__(2, row)


@pytest.mark.parametrize(
    "row,expected",
    [
        ([-1, 2, "PST", [512, 2, 0.5]], "'from' must list two layers"),
        ([[-1], 2, "PST", [512, 2, 0.5]], "'from' must list two layers"),
        ([[-1, 20], 2, "PST", [512, 2, 0.5]], "points to layer 20"),
        ([[-1, 13], 2, "PST", [512, 2, 0.5]], "points to layer 13"),
        ([[-1, -20], 2, "PST", [512, 2, 0.5]], "points to layer -7"),
        ([[-1, 10], 2, "PST", []], "args must be"),
    ],
)
def test_malformed_pst_row_names_layer(row, expected):
    with pytest.raises(PSTConfigError) as err:
        tasks.DetectionModel(_bad(_set_row13(row)), verbose=False)
    msg = str(err.value)
    assert msg.startswith("layer 13 (PST)"), msg
    assert expected in msg, msg


def test_unknown_scale_in_dict_names_valid_scales():
    with pytest.raises(ValueError) as err:
        tasks.DetectionModel(_bad(lambda d: d.__setitem__("scale", "q")), verbose=False)
    msg = str(err.value)
    assert "'q'" in msg and "n, s, m, l, x" in msg, msg


def test_unknown_scale_in_file_name_is_not_silently_built():
    # yaml_model_load only strips n/s/m/l/x from a name, so 'q' leaves a name nothing resolves
    with pytest.raises(FileNotFoundError, match=r"yolo11q-pst\.yaml"):
        tasks.DetectionModel("yolo11q-pst.yaml", verbose=False)


def test_hidden_width_not_multiple_of_32():
    with pytest.raises(PSTConfigError) as err:
        tasks.DetectionModel(_bad(_set_row13([[-1, 10], 2, "PST", [200, 2, 0.5]])), verbose=False)
    msg = str(err.value)
    assert "layer 13" in msg and "e=0.5" in msg, msg
    assert f"c2={make_divisible(200 * 0.25, 8)}" in msg, msg  # reports the width-scaled c2 (56)
    assert "multiple of 32" in msg


def test_upper_not_half_size_fails_at_build():
    # layer 4 (P3, stride 8) is larger than layer 13's fine input (P4, stride 16), not half of it
    with pytest.raises(ValueError) as err:
        tasks.DetectionModel(_bad(_set_row13([[-1, 4], 2, "PST", [512, 2, 0.5]])), verbose=False)
    msg = str(err.value)
    assert "layer 13" in msg and "half" in msg, msg
    assert "16, 16)" in msg and "32, 32)" in msg, msg  # x and upper sizes as seen by the stride forward


# --------------------------------------------------------------------------------------------
# Loading weights
# --------------------------------------------------------------------------------------------
def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_foreign_scale_weights_raise_and_transfer_nothing():
    model_n = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    model_s = tasks.DetectionModel("yolo11s-pst.yaml", verbose=False)
    before = _state(model_n)
    for weights in (model_s, {"model": model_s, "ema": None}):
        with pytest.raises(ValueError) as err:
            model_n.load(weights, verbose=False)
        msg = str(err.value)
        assert "layer 13" in msg and "yolo11s-pst.yaml" in msg, msg
        assert "model.13." in msg
    after = model_n.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # raised before any transfer


def test_same_scale_weights_transfer_everything():
    src = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    dst = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    key = "model.13.cvup.conv.weight"
    assert not torch.equal(src.state_dict()[key], dst.state_dict()[key])  # random inits differ
    dst.load({"model": src, "ema": None}, verbose=False)
    theirs, ours = src.state_dict(), dst.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)


def test_stock_weights_transfer_to_pst_model():
    """Stock YOLO11 weights (C3k2 at layer 13) start a PST model: matching layers transfer, PST keeps its init."""
    stock = tasks.DetectionModel("yolo11n.yaml", verbose=False)
    model = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    before = _state(model)
    model.load(stock, verbose=False)
    ours, theirs = model.state_dict(), stock.state_dict()
    assert torch.equal(ours["model.0.conv.weight"], theirs["model.0.conv.weight"])
    assert torch.equal(ours["model.10.cv1.conv.weight"], theirs["model.10.cv1.conv.weight"])
    assert not torch.equal(before["model.0.conv.weight"], ours["model.0.conv.weight"])
    assert torch.equal(ours["model.13.cvup.conv.weight"], before["model.13.cvup.conv.weight"])
    assert torch.equal(ours["model.13.cv1.conv.weight"], before["model.13.cv1.conv.weight"])


# --------------------------------------------------------------------------------------------
# Top-k control
# --------------------------------------------------------------------------------------------
def _ks(model) -> list[int]:
    return [layer.k for _, layer in pst_yolo.pst_layers(model)]


def _block_ks(module) -> set[int]:
    return {b.attn.topk for m in module.modules() if isinstance(m, PST) for b in m._blocks()}


def test_set_topk_on_yolo_and_module():
    yolo = YOLO("yolo11n-pst.yaml", verbose=False)
    initial = pst_yolo.get_topk(yolo)
    assert isinstance(initial, int) and _ks(yolo) == [initial, initial]  # two PST layers, one k
    first = 3 if initial != 3 else 5
    assert pst_yolo.set_topk(yolo, first) == initial
    assert _ks(yolo) == [first, first] and _block_ks(yolo.model) == {first}
    assert pst_yolo.get_topk(yolo.model) == first
    assert pst_yolo.set_topk(yolo.model, 2) == first  # a bare nn.Module works too
    assert _ks(yolo) == [2, 2] and _block_ks(yolo.model) == {2}
    assert pst_yolo.set_topk(yolo, 0) == 2
    assert _ks(yolo) == [0, 0]


def test_topk_context_manager_restores():
    model = tasks.DetectionModel("yolo11n-pst.yaml", verbose=False)
    pst_yolo.set_topk(model, 2)
    with pst_yolo.topk(model, 8) as inner:
        assert inner is model
        assert _ks(model) == [8, 8] and _block_ks(model) == {8}
    assert _ks(model) == [2, 2] and _block_ks(model) == {2}

    with pytest.raises(RuntimeError, match="boom"):
        with pst_yolo.topk(model, 0):
            assert _ks(model) == [0, 0]
            raise RuntimeError("boom")
    assert _ks(model) == [2, 2]

    # a per-layer state (what get_topk returns when layers disagree) is restored as it was
    model.model[16].k = 4
    with pst_yolo.topk(model, 1):
        assert _ks(model) == [1, 1]
    assert _ks(model) == [2, 4]


def test_package_topk_is_the_context_manager():
    # regression: a submodule named like the function shadowed it once any name from it was used
    pst_yolo.set_topk  # noqa: B018
    pst_yolo.pst_layers  # noqa: B018
    assert not isinstance(pst_yolo.topk, types.ModuleType)
    assert callable(pst_yolo.topk) and pst_yolo.topk.__name__ == "topk"


@pytest.mark.parametrize("k", [-1, 1.5, "2", True, None])
def test_set_topk_rejects_bad_k(pst_n, k):
    previous = pst_yolo.get_topk(pst_n)
    with pytest.raises(ValueError):
        pst_yolo.set_topk(pst_n, k)
    assert pst_yolo.get_topk(pst_n) == previous


def test_set_topk_rejects_model_without_pst():
    stock = tasks.DetectionModel("yolo11n.yaml", verbose=False)
    with pytest.raises(ValueError, match="no PST layers"):
        pst_yolo.set_topk(stock, 2)
    with pytest.raises(ValueError, match="no PST layers"):
        pst_yolo.get_topk(YOLO("yolo11n.yaml", verbose=False))
    with pytest.raises(ValueError, match="no PST layers"):
        with pst_yolo.topk(stock, 2):
            pass
