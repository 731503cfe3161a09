"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path, see pyproject.toml)."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


class CLI:
    """``pst-yolo`` run in-process through ``pst_yolo.cli.main``."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> int:
        from pst_yolo.cli import main

        return main([str(a) for a in argv])

    def error(self, *argv: str, match: str, rc: int = 2) -> str:
        self.capsys.readouterr()
        got = self(*argv)
        err = self.capsys.readouterr().err
        assert got == rc, f"exit code {got} (expected {rc}) for {argv}; stderr: {err}"
        assert re.search(match, err), f"{match!r} not in stderr: {err}"
        return err


def ultralytics_ships(name: str) -> bool:
    """Whether the installed Ultralytics has this model config (YOLO26 arrived with 8.4)."""
    from ultralytics.nn import tasks

    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", name)
    return any((Path(tasks.__file__).parent.parent / "cfg" / "models").rglob(unified))


# --------------------------------------------------------------------------------------------------
# PST weights where k shows (shared by the top-k and the task end-to-end tests)
# --------------------------------------------------------------------------------------------------
def pst_gates(module) -> list:
    """The fine-branch gate (a Conv1d) of every PST block in ``module``."""
    import pst_yolo

    return [m.attn.gate_conv1d for _, layer in pst_yolo.pst_layers(module) for m in layer._blocks()]


def randomize_gates(module, seed: int = 0) -> None:
    """A trained-looking gate (non-zero), so "left unchanged" and "updated" are real claims."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for g in pst_gates(module):
            g.weight.copy_(torch.randn(g.weight.shape, generator=gen) * 0.5)
            g.bias.copy_(torch.randn(g.bias.shape, generator=gen))


def make_attention_matter(module, seed: int = 0, imgsz: int = 64) -> None:
    """Fresh layers start as the identity (attention adds nothing) or, with the authors' init, with tiny attention
    weights (std 0.02): either way k barely moves the outputs. Give the projections and the gate ordinary-sized
    weights and open each branch so the fine branch visibly counts.
    ``imgsz``: the size of the random batches that calibrate BatchNorm and the head."""
    import torch

    import pst_yolo

    randomize_gates(module, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, layer in pst_yolo.pst_layers(module):
            for block in layer._blocks():
                for conv in (block.attn.q.conv, block.attn.kv.conv, block.attn.proj.conv):
                    conv.weight.copy_(
                        torch.randn(conv.weight.shape, generator=gen) * 0.1 / conv.weight[0].numel() ** 0.5
                    )
                # a fresh layer starts as the identity (its branches' closing BatchNorm scales are 0): open them
                for conv in (block.attn.proj, block.mlp[1]):
                    conv.bn.weight.fill_(1.0)
        # A fresh Detect head's class convs have zero weights and biases of about -10 (a prior for rare
        # objects), where the sigmoid is flat: both hide every feature change, so make them ordinary.
        for conv in module.model[-1].modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.bias is not None:
                conv.bias.zero_()
                if not conv.weight.any():
                    conv.weight.copy_(
                        torch.randn(conv.weight.shape, generator=gen) * 0.1 / conv.weight[0].numel() ** 0.5
                    )
        # Untrained BatchNorm statistics (mean 0, var 1) let activations shrink to ~1e-6 by the neck;
        # calibrate them on one random batch so features, and so the effect of k, are of ordinary size.
        bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in bns:
            bn.momentum = 1.0
        module.train()
        module(torch.rand(4, 3, imgsz, imgsz, generator=gen))
        module.eval()
        for bn in bns:
            bn.momentum = 0.03
        # Scale each head output conv so its logits stay within a few units, like a trained head's
        # (huge box-distribution logits would turn float rounding into visible box differences).
        head = module.model[-1]
        finals = [seq[-1] for seq in (*head.cv2, *head.cv3)]
        peaks = {}
        hooks = [c.register_forward_hook(lambda m, i, o: peaks.__setitem__(m, float(o.abs().max()))) for c in finals]
        module(torch.rand(2, 3, imgsz, imgsz, generator=gen))
        for h in hooks:
            h.remove()
        for conv in finals:
            conv.weight.mul_(4.0 / max(peaks[conv], 1e-6))


def tree_state(root: Path) -> dict[str, str]:
    """What is under ``root`` (hidden entries too): relative path -> sha256 of a file's bytes, ``link:<target>``
    for a symlink (not followed), ``dir`` for a folder. Equal states: nothing was added, removed or changed."""
    import hashlib
    import os

    state = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                state[rel] = f"link:{os.readlink(p)}"
            elif p.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


# --------------------------------------------------------------------------------------------------
# Model outputs (shared by the config tests)
# --------------------------------------------------------------------------------------------------
def output_shapes(obj):
    """Nested shapes of a model output (tensors, lists/tuples, dicts)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (list, tuple)):
        return [output_shapes(o) for o in obj]
    if isinstance(obj, dict):
        return {k: output_shapes(v) for k, v in obj.items()}
    return type(obj).__name__


def all_finite(obj) -> bool:
    """Every tensor in a nested model output is finite."""
    import torch

    if isinstance(obj, torch.Tensor):
        return bool(torch.isfinite(obj).all())
    if isinstance(obj, (list, tuple)):
        return all(all_finite(o) for o in obj)
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    return True


def run_with_layer_shapes(model, x):
    """Model output and the output shape of every layer (``model.model`` entries), without gradients."""
    import torch

    shapes = {}
    hooks = [
        m.register_forward_hook(lambda mod, a, out, i=i: shapes.__setitem__(i, output_shapes(out)))
        for i, m in enumerate(model.model)
    ]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return out, shapes


# --------------------------------------------------------------------------------------------------
# Jobs for pst_yolo.eval.parallel (module-level, so a spawned worker can import them)
# --------------------------------------------------------------------------------------------------
def job_square(x: int) -> int:
    print(f"squaring {x}")  # goes to the job's log
    return x * x


def job_threads() -> int:
    import torch

    return torch.get_num_threads()


def job_fail(message: str) -> None:
    raise ValueError(message)


def job_die(code: int) -> None:
    os._exit(code)  # no result, no traceback: as a worker killed by the OS


def job_report(n: int) -> int:
    from pst_yolo.eval.parallel import report

    for i in range(n):
        report(step=f"{i + 1}/{n}")
    return n


def save_trained_at(path: Path, cfg: str, imgsz: int, nc: int = 5) -> Path:
    """A checkpoint of ``cfg`` (``nc`` classes, as the generated sets have) that records ``imgsz`` as its training
    size, as a trained one would (Ultralytics keeps the train args in the checkpoint); random weights."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    model = YOLO(cfg)
    model.model = type(model.model)({**yaml_model_load(cfg), "nc": nc}, nc=nc, verbose=False)
    model.ckpt = {"train_args": {"imgsz": imgsz, "task": model.task}}
    model.save(str(path))
    return path


# --------------------------------------------------------------------------------------------------
# A model scored against its own detections (the export scoring tests)
# --------------------------------------------------------------------------------------------------
def self_scored_scene(root: Path, imgsz: int = 128, images: int = 16) -> dict:
    """A PST model (``parity_model``: seeded random weights, PST's layers redrawn at unit scale) saved as a
    checkpoint ``weights``, ``images`` noise images in ``images``, and ``annotations``: a COCO JSON whose objects are
    that checkpoint's own 20 most confident detections per image. PyTorch fp32 scores AP 1 on it, and any export that
    computes something else scores less.

    At k = 0: this random model's fine branch ranks coarse tokens whose top-k scores are often nearly tied (one of
    three random inputs tried at k = 8), and which of them a runtime keeps then turns on its last bits, so PyTorch
    and ONNX Runtime can select different tokens in fp32 (a trained model's scores are far apart: docs/export.md,
    every fp32 runtime scores the main job's model at k = 8 to PyTorch's AP in four decimals). The k = 8 graphs are
    checked against PyTorch on inputs without such ties in tests/eval/test_export_matrix.py. Noise images, not drawn
    shapes: flat regions make exactly equal token scores."""
    import json

    import cv2
    import numpy as np
    import torch
    from ultralytics import YOLO

    from pst_yolo.eval.export_matrix import parity_model

    folder = root / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    listed = []
    for i in range(images):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (imgsz, imgsz, 3), dtype=np.uint8))
        listed.append({"id": i + 1, "file_name": f"{i}.png", "width": imgsz, "height": imgsz})
    weights = root / "pst.pt"
    # In float32 (YOLO.save would round the weights to fp16 first), with the size it was made for, as training
    # records it.
    torch.save({"model": parity_model(k=0).model, "train_args": {"imgsz": imgsz, "task": "detect"}}, weights)
    yolo = YOLO(str(weights))
    objects = []
    for im in listed:
        r = yolo.predict(cv2.imread(str(folder / im["file_name"])), imgsz=imgsz, conf=0.001, max_det=20, verbose=False)
        for (x1, y1, x2, y2), c in zip(r[0].boxes.xyxy.tolist(), r[0].boxes.cls.tolist()):
            box = [x1, y1, x2 - x1, y2 - y1]
            objects.append({"id": len(objects) + 1, "image_id": im["id"], "category_id": int(c) + 1, "bbox": box})
    names = [{"id": i + 1, "name": name} for i, name in yolo.names.items()]  # matched by name, as evaluate does
    annotations = root / "own_detections.json"
    annotations.write_text(json.dumps({"images": listed, "annotations": objects, "categories": names}))
    return {"images": folder, "annotations": annotations, "weights": weights}
