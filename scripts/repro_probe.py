"""Which machine settings change the bits of a training run? (docs/accuracy.md, "Reproducibility")

Trains yolo11n-pst for a few SGD steps on fixed random inputs (same seed, same data) in a fresh
subprocess per setting, and prints a hash of the final weights and the last loss. Equal hashes: the
setting does not change a single bit; different hashes: it does, and a full training run then drifts
apart (training is chaotic: a last-bit difference grows into a different model).

    python scripts/repro_probe.py                 # threads 1 / 2, oneDNN ISA capped at AVX2, deterministic mode

Settings probed: torch's intra-op thread count (Ultralytics trains on min(8, CPUs - 1) threads, so a
2-core machine trains on 1 and a 4-core one on 3); ONEDNN_MAX_CPU_ISA=AVX2 (the convolution kernels a
CPU without AVX-512 would get: a stand-in for "another CPU"); torch.use_deterministic_algorithms.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

STEPS = 5


def _tensors(out) -> list:
    """Every tensor in a (nested) model output: Detect's train-mode output is a list, or a dict of them."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return [out]


def train_once(threads: int, deterministic: bool) -> dict:
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import pst_yolo

    pst_yolo.register()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    torch.manual_seed(0)
    model = DetectionModel("yolo11n-pst.yaml", nc=5, verbose=False).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 160, 160, generator=g)
    loss = torch.zeros(())
    for _ in range(STEPS):
        opt.zero_grad()
        loss = sum((t.float() ** 2).mean() for t in _tensors(model(x)))  # train mode: Detect's raw maps
        loss.backward()
        opt.step()
    digest = hashlib.sha256()
    for v in model.state_dict().values():
        digest.update(v.detach().cpu().numpy().tobytes())
    return {"weights_sha256": digest.hexdigest()[:16], "last_loss": float(loss)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(train_once(int(sys.argv[2]), sys.argv[3] == "1")))
        return
    settings = [
        ("1 thread (Ultralytics on a 2-core CPU)", {}, 1, False),
        ("1 thread, again", {}, 1, False),
        ("2 threads", {}, 2, False),
        ("1 thread, deterministic algorithms", {}, 1, True),
        ("1 thread, ONEDNN_MAX_CPU_ISA=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, 1, False),
    ]
    print(f"yolo11n-pst, {STEPS} SGD steps on fixed inputs, seed 0; one fresh process per row\n")
    print("| setting | weights sha256 (first 16) | last loss |")
    print("|---|---|---:|")
    for label, env, threads, det in settings:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(threads), "1" if det else "0"],
            env={**os.environ, **env, "YOLO_OFFLINE": "1", "PST_YOLO_AUTOLOAD": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {label} | `{r['weights_sha256']}` | {r['last_loss']:.9g} |")


if __name__ == "__main__":
    main()
