"""The PST layer (``pst``), its ONNX export variants (``onnx_export``), the fine branch's top-k policy and
switch (``topk``) and fine-aware training (``fine_train``). Knows nothing of Ultralytics beyond ``Conv``.

Import-free on purpose: ``pst_yolo.nn.topk`` is read while Ultralytics itself is importing.
"""
