"""The plugin stays out of stock models' way: ``PST_TOPK``, ``PST_INIT``, ``PST_FINE_TRAIN`` and ``PST_ONNX_ATTENTION`` are read
only for models with PST layers, and a bad value is reported as a bad environment variable (name, value,
allowed values). The layer refuses a bad k the way ``set_topk`` does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import pst_yolo
from pst_yolo.nn.pst import PST, PSAttn

BAD_ENV = {"PST_TOPK": "abc", "PST_INIT": "zeros", "PST_FINE_TRAIN": "sometimes", "PST_ONNX_ATTENTION": "tensorrt"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A stock yolo11n checkpoint and a yolo11n-pst one (k=4), built here from the YAMLs: nothing downloaded."""
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    YOLO("yolo11n.yaml").save(str(root / "stock.pt"))
    pst = YOLO("yolo11n-pst.yaml")
    pst_yolo.set_topk(pst, 4)
    pst.save(str(root / "pst.pt"))
    return root / "stock.pt", root / "pst.pt"


class _Trainer:
    """What the training callbacks read of an Ultralytics trainer (weak-referenceable, like the real one)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.args, self.epoch, self.epochs, self.ema = model, SimpleNamespace(seed=0), 0, 2, None


@pytest.fixture()
def bad_env(monkeypatch):
    for name, value in BAD_ENV.items():
        monkeypatch.setenv(name, value)


def test_a_stock_checkpoint_and_config_load_whatever_pst_variables_say(checkpoints, bad_env):
    from ultralytics import YOLO

    stock, _ = checkpoints
    for model in (YOLO(str(stock)), YOLO("yolo11n.yaml")):
        assert not pst_yolo.pst_layers(model)
        with torch.no_grad():
            model.model.eval()(torch.zeros(1, 3, 64, 64))


def test_a_stock_model_trains_whatever_pst_fine_train_says(bad_env):
    """The training callbacks run for every trainer; for one without PST layers they read nothing."""
    from ultralytics import YOLO

    from pst_yolo.integration import callbacks

    trainer = _Trainer(YOLO("yolo11n.yaml").model)
    callbacks.on_pretrain_routine_end(trainer)
    callbacks.on_train_epoch_start(trainer)
    callbacks.on_train_batch_start(trainer)
    callbacks.on_train_end(trainer)


def test_a_pst_model_names_the_bad_variable(checkpoints, monkeypatch):
    from ultralytics import YOLO

    from pst_yolo.integration import callbacks

    _, pst = checkpoints
    monkeypatch.setenv("PST_TOPK", "abc")
    for source in ("yolo11n-pst.yaml", str(pst)):
        with pytest.raises(ValueError) as err:
            YOLO(source)
        msg = str(err.value)
        assert "environment variable PST_TOPK='abc' is not valid" in msg and "non-negative integer" in msg, msg
        assert "c2 or e" not in msg  # not a config problem
    monkeypatch.delenv("PST_TOPK")
    monkeypatch.setenv("PST_INIT", "zeros")
    with pytest.raises(ValueError) as err:
        YOLO("yolo11n-pst.yaml")  # a layer being built reads it ...
    assert "environment variable PST_INIT='zeros' is not valid: PST_INIT must be one of authors, identity" in str(
        err.value
    ) and "c2 or e" not in str(err.value)
    assert pst_yolo.pst_layers(YOLO(str(pst)))  # ... a checkpoint's layers are not built: their weights stand
    monkeypatch.delenv("PST_INIT")
    monkeypatch.setenv("PST_FINE_TRAIN", "sometimes")
    trainer = _Trainer(YOLO(str(pst)).model)
    with pytest.raises(ValueError, match=r"environment variable PST_FINE_TRAIN='sometimes' is not valid.*0 \("):
        callbacks.on_pretrain_routine_end(trainer)
    monkeypatch.setenv("PST_ONNX_ATTENTION", "tensorrt")
    with pytest.raises(ValueError, match=r"environment variable PST_ONNX_ATTENTION='tensorrt'.*one of standard, ort"):
        callbacks.on_export_start(SimpleNamespace(model=trainer.model, metadata={}))


def test_the_cli_reports_the_variable_for_a_pst_model_only(checkpoints, cli, monkeypatch, tmp_path):
    stock, pst = checkpoints
    monkeypatch.setenv("PST_TOPK", "abc")
    common = ("runtime=torch", "imgsz=64", "runs=1", "warmup=0", "memory=false", "flops=false", f"project={tmp_path}")
    assert cli("speed", f"models={stock}", *common) == 0
    cli.error("speed", f"models={pst}", *common, match="environment variable PST_TOPK='abc' is not valid")


def test_ultralytics_own_command_reports_the_variable_in_one_line(checkpoints, tmp_path):
    """`PST_TOPK=abc yolo val model=pst.pt`: the error is raised inside Ultralytics' command line, which would
    print a traceback through its internals; the autoload hook makes it one line and exit status 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    yolo = Path(sys.executable).parent / "yolo"
    if not yolo.is_file():
        pytest.skip("Ultralytics' yolo script is not next to this Python")
    env = {**os.environ, "PST_TOPK": "abc"}
    proc = subprocess.run(
        [str(yolo), "predict", f"model={checkpoints[1]}", "source=nothing.jpg"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "yolo: error: environment variable PST_TOPK='abc' is not valid: PST_TOPK must be a non-negative integer "
        "(0 = coarse attention only, e.g. 8). Fix or unset it (pst-yolo reads it only for models with PST layers)"
    )


# --------------------------------------------------------------------------------------------------
# k on the layer
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [-5, 2.5, "8", True, None])
def test_the_layer_refuses_a_bad_k_like_set_topk(k):
    with pytest.raises(ValueError, match="top-k must be a non-negative integer"):
        PST(32, 32, 64, k=k)
    layer = PST(32, 32, 64, n=2, k=4)
    with pytest.raises(ValueError, match="top-k must be a non-negative integer"):
        layer.k = k
    attn = layer._blocks()[1].attn
    with pytest.raises(ValueError, match="top-k must be a non-negative integer"):
        attn.topk = k
    with pytest.raises(ValueError, match="top-k must be a non-negative integer"):
        PSAttn(32, 1, topk=k)
    with pytest.raises(ValueError, match="top-k must be a non-negative integer"):
        pst_yolo.set_topk(layer, k)
    assert layer.k == 4 and all(b.attn.topk == 4 for b in layer._blocks())  # unchanged by the refused values


def test_the_layer_takes_numpy_integers_and_zero():
    import numpy as np

    layer = PST(32, 32, 64, k=np.int64(3))
    assert layer.k == 3 and type(layer.k) is int
    layer.k = 0
    assert layer._blocks()[0].attn.topk == 0
