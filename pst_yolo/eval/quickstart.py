"""The embedded-default main job: build a PST model and run it on Ultralytics' bundled images.

No downloads, no GPU, no trained weights: the model has random weights, so this shows that the
layer builds, runs coarse-only and fine, and what each costs -- not accuracy (the benchmark does that).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path


def run(model: str = "yolo11n-pst.yaml", imgsz: int = 640, topk: int = 8, device: str = "cpu") -> dict:
    """Print the model summary, then run it on the bundled sample images at k = 0 and k = ``topk``.

    Returns ``{k: {"ms_per_image": float, "boxes": int}}`` plus ``"max_abs_diff"`` between the raw
    head outputs of the two settings (non-zero shows the fine branch changes the result) and ``"fresh_identity"``
    (every PST layer is still at its identity start, where k cannot change anything).
    """
    import torch
    from ultralytics.utils import ASSETS

    from pst_yolo.eval.inputs import check_positive, load_model
    from pst_yolo.integration.registry import register
    from pst_yolo.nn.topk import pst_layers, set_topk

    check_positive(imgsz=imgsz)
    register()
    torch.manual_seed(0)
    yolo = load_model(model)  # (a missing, empty or non-model file is named here, not deep inside predict)
    if not isinstance(yolo.model, torch.nn.Module):
        raise ValueError(f"quickstart needs a PyTorch model (.pt or .yaml) to compare k values; {model} is an export")
    layers = pst_layers(yolo)
    print(f"\n{model}: {len(layers)} PST layer(s): " + ", ".join(f"{n} (c2={m.c2}, n={m.n})" for n, m in layers))
    yolo.info(detailed=False, verbose=True)

    images = sorted(str(p) for p in Path(ASSETS).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    net = yolo.model.eval()
    results: dict = {}
    raw = {}
    for k in (0, topk):
        set_topk(yolo, k)
        yolo.predict(images, imgsz=imgsz, device=device, verbose=False)  # warm-up (first calls are slow)
        t0 = time.perf_counter()
        preds = yolo.predict(images, imgsz=imgsz, device=device, verbose=False)
        ms = (time.perf_counter() - t0) * 1000 / len(images)
        boxes = sum(len(p.boxes) for p in preds)
        results[k] = {"ms_per_image": ms, "boxes": boxes}
        with torch.inference_mode():
            out = net(torch.zeros(1, 3, imgsz, imgsz).uniform_(generator=torch.Generator().manual_seed(0)))
        raw[k] = out[0] if isinstance(out, (list, tuple)) else out
    results["max_abs_diff"] = float((raw[0] - raw[topk]).abs().max())

    print(
        f"\nRan {len(images)} bundled images ({', '.join(Path(i).name for i in images)}) at imgsz={imgsz} on {device}:"
    )
    print(f"{'k':>4}  {'ms/image':>9}  {'boxes (conf>=0.25, random weights)':>36}")
    for k in (0, topk):
        print(f"{k:>4}  {results[k]['ms_per_image']:9.1f}  {results[k]['boxes']:>36}")
    fresh = all(layer.starts_as_identity() for _, layer in layers)
    if results["max_abs_diff"] > 0:
        changed = "non-zero, so the fine branch is on and changes the result"
    elif layers and fresh:
        changed = (
            "zero, because freshly built PST layers start as the identity (their attention adds nothing until "
            "trained, docs/accuracy.md), so k cannot change the output yet; a trained model (model=best.pt) or "
            "PST_INIT=authors shows the fine branch acting"
        )
    else:
        changed = "zero: the fine branch changed nothing"
    results["fresh_identity"] = bool(layers) and fresh
    print(f"max |raw output(k=0) - raw output(k={topk})| = {results['max_abs_diff']:.4g}")
    explained = (
        f"(the largest difference between the network's raw head outputs for one random input at k=0 and "
        f"k={topk}: {changed}. The weights are random, so the boxes and this number say nothing about accuracy.)"
    )
    print(textwrap.fill(explained, 100, initial_indent="  ", subsequent_indent="   "))
    print(NEXT_STEP)
    return results


NEXT_STEP = """
Next steps:
  pst-yolo synth datasets/synth                 # a small generated set, offline (YOLO labels + COCO JSON)
  yolo train model=yolo11n-pst.yaml data=datasets/synth/data.yaml epochs=2 imgsz=128   # (the README's "Try it offline")
  pst-yolo bench                                # yolo11n vs yolo11n-pst at k = 0 and 8, about 15 min on 2 cores"""
