"""Checkpoints written by earlier pst-yolo releases keep loading after the layer moved to pst_yolo.nn.pst."""

from __future__ import annotations

import contextlib
import pickle

import torch

import pst_yolo
from pst_yolo.nn import pst as layer_module


@contextlib.contextmanager
def _pickled_as(module: str):
    """Pickle the PST classes under another module path, as pst-yolo 0.1 did (``pst_yolo.pst``)."""
    classes = [layer_module.PST, layer_module.PSAttnBlock, layer_module.PSAttn, layer_module.GateConv1d]
    saved = [c.__module__ for c in classes]
    for c in classes:
        c.__module__ = module
    try:
        yield
    finally:
        for c, m in zip(classes, saved):
            c.__module__ = m


def test_a_checkpoint_pickled_with_the_old_layer_path_loads(tmp_path):
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolo11n-pst.yaml")
    pst_yolo.set_topk(model, 4)
    path = tmp_path / "old.pt"
    with _pickled_as("pst_yolo.pst"):
        model.save(str(path))
    raw = path.read_bytes()
    assert b"pst_yolo.pst" in raw and b"pst_yolo.nn.pst" not in raw  # really the old path
    loaded = YOLO(str(path))
    assert pst_yolo.get_topk(loaded) == 4
    assert type(loaded.model.model[13]) is layer_module.PST
    x = torch.rand(1, 3, 64, 64)
    a, b = model.model.eval()(x), loaded.model.float().eval()(x)
    a, b = (t[0] if isinstance(t, (list, tuple)) else t for t in (a, b))
    torch.testing.assert_close(a, b.to(a.dtype), atol=1e-2, rtol=1e-3)  # (the checkpoint is saved in fp16)


def test_pickle_finds_the_old_name():
    assert pickle.loads(pickle.dumps(layer_module.PST)) is layer_module.PST
    import pst_yolo.pst as old

    assert old.PST is layer_module.PST and old.PSAttn is layer_module.PSAttn
