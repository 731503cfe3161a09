"""The layer's import path in pst-yolo 0.1: checkpoints written then pickle ``pst_yolo.pst.PST`` (and its
blocks), so this name stays importable and such checkpoints keep loading. The code is in ``pst_yolo.nn.pst``."""

from pst_yolo.nn.pst import PST, GateConv1d, PSAttn, PSAttnBlock  # noqa: F401
