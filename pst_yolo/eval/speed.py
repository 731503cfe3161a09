"""``pst-yolo speed``: latency, FLOPs and peak memory of PST models next to stock YOLO, same process.

    from pst_yolo.eval.speed import speed
    result = speed(models=["yolo11n.yaml", "yolo11n-pst.yaml"], imgsz=640, batch=1, threads=2,
                   runtime=["torch", "onnx"], topk=[0, 8])
    print(result.markdown)            # also written to result.run_dir / speed.md and speed.csv

    pst-yolo speed models=yolo11n.yaml,yolo11n-pst.yaml imgsz=640 batch=1 threads=2 runtime=torch,onnx topk=0,8
    pst-yolo speed models=yolo11n.yaml,yolo11n-pst.yaml train_step=True          # batch 8, 320, fwd+bwd

What is measured, per model (a model with PST layers once per k in ``topk``, a stock model once) and
runtime:

- ``torch``: the fused (Conv+BN folded) model in eval mode under ``torch.inference_mode()``.
- ``onnx``: the model exported by Ultralytics' own ONNX exporter (``YOLO(...).export(format="onnx")``,
  its default opset and onnxslim), run by ONNX Runtime with ``intra_op_num_threads = threads``.
- ``onnx-mha``: the same, exported with ``PST_ONNX_ATTENTION=ort``: PST's coarse attention becomes
  ONNX Runtime's ``com.microsoft::MultiHeadAttention`` (a blocked CPU kernel; ONNX Runtime only).
- ``openvino``, ``ncnn``, ``mnn``, ``executorch``, ``torchscript``, ``litert``: the model exported by
  Ultralytics (``YOLO(...).export(format=...)``, through pst-yolo's export guard, see
  ``pst_yolo/integration/export_formats.py``) and run by Ultralytics' ``AutoBackend`` with its own runtime
  settings (``threads`` does not apply: OpenVINO's LATENCY hint, MNN's (cpu_count + 1) // 2 threads, ...),
  at the runtime's default precision, which the ``dtype`` column names (OpenVINO infers in bf16 on CPUs
  with AVX512-BF16 or AMX). CPU only; each needs its package (``pip install "pst-yolo[deploy]"``).
- ``train`` (``train_step=True``): one training step, forward + Ultralytics' detection loss on
  synthetic targets + backward (no optimizer step), model in train mode. PST layers train coarse-only
  as in the default recipe; a k > 0 row is fine-aware training (``fine_in_training``).

Latency: all cases of one runtime are timed in one loop, interleaved (one call of each case per
round, order rotated), after ``warmup`` rounds; median and p90 of ``runs`` rounds. On CUDA each
call is followed by ``torch.cuda.synchronize()``. Ratios are to the first case of the same runtime
(normally the stock model), so machine load hits numerator and denominator alike.

GFLOPs: ``pst_yolo.flops.count_flops``, one forward at batch 1 and ``imgsz`` with the case's k,
counted analytically from the shapes: every convolution and every matrix product, attention included
(scaled-dot-product attention is its two matrix products, 4·N·M·d per head); elementwise work
(softmax, activations, normalisation) is not counted. ``attn GFLOPs`` is the part in attention and other matrix products.
Ultralytics' own figure (thop) leaves the attention products out.

Peak memory (``mem`` column says which): ``torch`` and ``train`` on CPU: the peak of live tensor
bytes allocated through PyTorch's CPU allocator during one call after a warm-up call, from the
profiler's allocation/free events (``alloc``; deterministic; activations, workspaces and, in training,
gradients, not the weights; oneDNN-internal scratch is not seen). ``onnx*`` and the other exported
runtimes: the growth of the resident set (``VmHWM`` after resetting it, minus ``VmRSS`` before) over
``warmup`` + 3 calls in a fresh subprocess that builds the same session (``rss``; includes the
runtime's arena and one-time caches; noisier). CUDA: torch's ``max_memory_allocated`` growth over 3 calls (``cuda``); ONNX Runtime
on CUDA is not measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from pst_yolo.eval.exported import working_directory
from pst_yolo.eval.inputs import check_model_file, check_positive, load_model, runtime_format
from pst_yolo.integration.runtime import quiet_ultralytics
from pst_yolo.nn.checks import environment_variable

# Formats exported by Ultralytics and run through its AutoBackend (runtime name = Ultralytics format name)
EXPORT_RUNTIMES = ("openvino", "ncnn", "mnn", "executorch", "torchscript", "litert")
RUNTIMES = ("torch", "onnx", "onnx-mha") + EXPORT_RUNTIMES
# The distribution whose version a table names, per exported runtime
RUNTIME_PACKAGES = {
    "openvino": "openvino",
    "ncnn": "ncnn",
    "mnn": "MNN",
    "executorch": "executorch",
    "litert": "ai-edge-litert",
}
DEFAULT_RUNTIMES = ("torch", "onnx")

__all__ = ("SpeedResult", "markdown_table", "speed")


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class SpeedResult:
    rows: list[dict]
    run_dir: Path | None
    markdown: str
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    model: str
    k: int | None  # None: the model has no PST layers
    runtime: str  # torch | onnx | onnx-mha | train | an Ultralytics export format (EXPORT_RUNTIMES)

    @property
    def label(self) -> str:
        return self.model if self.k is None else f"{self.model} k={self.k}"


# --------------------------------------------------------------------------------------------------
# Building the cases
# --------------------------------------------------------------------------------------------------
def _has_pst(model_name: str) -> bool:
    from pst_yolo.nn.topk import pst_layers

    return bool(pst_layers(_detection_model(model_name)))


def _detection_model(model_name: str):
    """A fresh DetectionModel (the nn.Module) from a YAML name or a checkpoint.

    YAML models get the same random weights every time (seed 0, without touching the caller's RNG),
    so the exported ONNX graph and the eager model of a case can be compared number for number.
    """
    import torch

    from pst_yolo.integration.registry import register

    register()
    with quiet_ultralytics(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = load_model(model_name, task="detect").model
    if not isinstance(net, torch.nn.Module):  # an export: speed exports .pt / .yaml models itself
        raise ValueError(f"{model_name} is an exported model; speed times .pt checkpoints and .yaml configs")
    return net


def _input(batch: int, imgsz: int):
    """The benchmark input: uniform [0, 1) images, the same in every runtime."""
    import torch

    return torch.rand(batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))


def _set_k(module, k: int | None, train: bool = False) -> None:
    if k is None:
        return
    from pst_yolo.nn.topk import pst_layers

    for _, layer in pst_layers(module):
        layer.k = k
        if train:
            layer.fine_in_training = k > 0


def build_torch(model_name: str, k: int | None, device: str = "cpu", half: bool = False):
    """The fused eval-mode model of a case, on ``device``."""
    import torch

    m = _detection_model(model_name)
    _set_k(m, k)
    with torch.no_grad():  # folding BN is no training step (older Ultralytics recorded it in autograd)
        m = m.fuse(verbose=False).eval().to(device)
    if half:
        m = m.half()
    for p in m.parameters():
        p.requires_grad_(False)
    return m, torch.float16 if half else torch.float32


def export_onnx(
    model_name: str,
    k: int | None,
    imgsz: int,
    batch: int,
    out_dir: Path,
    opset: int | None = None,
    device: str = "cpu",
    half: bool = False,
    attention: str = "standard",
) -> Path:
    """Export a case with Ultralytics' exporter (its default opset unless given) into ``out_dir``.

    ``attention="ort"`` writes PST's coarse attention as com.microsoft::MultiHeadAttention
    (``PST_ONNX_ATTENTION=ort``; ONNX Runtime only), "standard" as portable MatMul/Softmax/MatMul.
    """
    from pst_yolo.integration.registry import register
    from pst_yolo.nn.onnx_export import ENV_ONNX_ATTENTION

    register()
    from ultralytics import YOLO

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet_ultralytics(), environment_variable(ENV_ONNX_ATTENTION, attention):
        y = YOLO(model_name, task="detect")
        y.model = _detection_model(model_name)  # the seeded weights build_torch uses too
        _set_k(y.model, k)
        kw = {"format": "onnx", "imgsz": imgsz, "batch": batch, "device": device}
        if half:
            kw["half"] = True
        if opset:
            kw["opset"] = opset
        stem = Path(model_name).stem + ("" if k is None else f"_k{k}") + ("_mha" if attention == "ort" else "")
        work = out_dir / f".export_{stem}"
        work.mkdir(exist_ok=True)
        with working_directory(work):  # a YAML-built model is exported into the working directory
            f = Path(y.export(**kw)).resolve()
    dst = out_dir / f"{stem}.onnx"
    os.replace(f, dst)
    shutil.rmtree(work, ignore_errors=True)
    return dst


def _exported(runtime: str) -> bool:
    """Whether a runtime runs an exported artifact (ONNX Runtime or an Ultralytics export format)."""
    return runtime.startswith("onnx") or runtime in EXPORT_RUNTIMES


def export_format(model_name: str, k: int | None, imgsz: int, batch: int, out_dir: Path, fmt: str) -> Path:
    """Export a case (the seeded weights ``build_torch`` uses) to Ultralytics format ``fmt``; the artifact's path."""
    from pst_yolo.eval.exported import export
    from pst_yolo.integration.registry import register

    register()
    from ultralytics import YOLO

    with quiet_ultralytics():
        y = YOLO(model_name, task="detect")
        y.model = _detection_model(model_name)
        _set_k(y.model, k)
        stem = Path(model_name).stem + ("" if k is None else f"_k{k}")
        return export(y, fmt, imgsz, Path(out_dir) / f"{fmt}_{stem}", batch=batch)


def onnx_session(path: Path, threads: int, device: str = "cpu"):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device != "cpu":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("runtime=onnx on CUDA needs onnxruntime-gpu (CUDAExecutionProvider not available)")
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), so, providers=providers)


def _train_batch(imgsz: int, batch: int, device: str, seed: int = 0) -> dict:
    """Synthetic training batch: random images, 4 boxes per image in normalised xywh."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n = 4 * batch
    xy = 0.2 + 0.6 * torch.rand(n, 2, generator=g)
    wh = 0.05 + 0.3 * torch.rand(n, 2, generator=g)
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g).to(device),
        "cls": torch.randint(0, 80, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(4).float().to(device),
    }


def build_train_step(model_name: str, k: int | None, imgsz: int, batch: int, device: str = "cpu"):
    """A callable doing one forward + loss + backward of the case in train mode."""
    from ultralytics.cfg import get_cfg

    m = _detection_model(model_name).to(device)
    m.args = get_cfg()  # the loss reads its hyper-parameters (box, cls, dfl gains) from model.args
    m.train()
    _set_k(m, k, train=True)
    data = _train_batch(imgsz, batch, device)

    def step():
        m.zero_grad(set_to_none=True)
        loss, _ = m.loss(data)
        loss.sum().backward()

    step.before_memory = lambda: m.zero_grad(set_to_none=True)  # so a measured step frees nothing older
    return step


def _runner(case: Case, imgsz: int, batch: int, threads: int, device: str, half: bool, onnx_path: Path | None):
    """A no-argument callable running one inference (or training step) of ``case``."""
    import torch

    if case.runtime == "train":
        return build_train_step(case.model, case.k, imgsz, batch, device)
    if case.runtime in EXPORT_RUNTIMES:
        from pst_yolo.eval.exported import default_precision, load_backend

        backend = load_backend(onnx_path)
        x_in = _input(batch, imgsz)

        def run_export():
            return backend(x_in)

        run_export.precision = default_precision(backend)
        return run_export
    if case.runtime == "torch":
        m, dtype = build_torch(case.model, case.k, device, half)
        x = _input(batch, imgsz).to(device, dtype)

        def run_torch():
            with torch.inference_mode():
                return m(x)

        return run_torch
    import numpy as np

    sess = onnx_session(onnx_path, threads, device)
    inp = sess.get_inputs()[0]
    dtype = np.float16 if "float16" in inp.type else np.float32
    x = _input(batch, imgsz).numpy().astype(dtype)
    return lambda: sess.run(None, {inp.name: x})


def _onnx_vs_torch(run_onnx: Callable[[], Any], case: Case, imgsz: int, batch: int, device: str, half: bool) -> float:
    """Max abs difference between an exported model's output (ONNX Runtime or AutoBackend) and the eager
    fused model's, same input."""
    import numpy as np
    import torch

    m, dtype = build_torch(case.model, case.k, device, half)
    with torch.inference_mode():
        ref = m(_input(batch, imgsz).to(device, dtype))
    ref = (ref[0] if isinstance(ref, (list, tuple)) else ref).float().cpu().numpy()
    out = run_onnx()
    out = out[0] if isinstance(out, (list, tuple)) else out
    out = out.float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out, dtype=np.float32)
    return float(np.abs(out - ref).max())


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------
def count_flops(model_name: str, k: int | None, imgsz: int) -> tuple[float, float]:
    """(total GFLOPs, GFLOPs in matrix products / attention) of one batch-1 forward at ``imgsz``."""
    from pst_yolo.eval.flops import count_flops as count

    m = _detection_model(model_name)
    _set_k(m, k)
    c = count(m, imgsz)
    return c.gflops, c.matmul_gflops


def time_interleaved(
    runners: dict[Any, Callable[[], Any]], runs: int, warmup: int, sync: Callable[[], None] | None = None
) -> dict[Any, list[float]]:
    """Seconds per call of each runner: ``warmup`` + ``runs`` rounds, one call of each per round, order rotated."""
    keys = list(runners)
    out: dict[Any, list[float]] = {key: [] for key in keys}
    for i in range(warmup + runs):
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:
            if sync:
                sync()
            t0 = time.perf_counter()
            runners[key]()
            if sync:
                sync()
            dt = time.perf_counter() - t0
            if i >= warmup:
                out[key].append(dt)
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _read_status_kb(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def _memory_child(spec_json: str) -> None:
    """Subprocess entry: build one case, print the resident-set growth (bytes) over its first calls."""
    spec = json.loads(spec_json)
    import torch

    torch.set_num_threads(spec["threads"])
    case = Case(spec["model"], spec["k"], spec["runtime"])
    run = _runner(
        case,
        spec["imgsz"],
        spec["batch"],
        spec["threads"],
        "cpu",
        False,
        Path(spec["onnx"]) if spec.get("onnx") else None,
    )
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
    except OSError:
        print(json.dumps({"peak_bytes": None}))
        return
    base = _read_status_kb("VmRSS")
    for _ in range(spec["calls"]):
        run()
    peak = _read_status_kb("VmHWM")
    print(json.dumps({"peak_bytes": (peak - base) * 1024}))


def measure_memory_cpu(
    case: Case, imgsz: int, batch: int, threads: int, onnx_path: Path | None, calls: int
) -> float | None:
    """Peak resident-set growth of ``calls`` calls of ``case`` in a fresh process (bytes), None if unknown."""
    if not sys.platform.startswith("linux"):
        return None
    spec = {
        "model": case.model,
        "k": case.k,
        "runtime": case.runtime,
        "imgsz": imgsz,
        "batch": batch,
        "threads": threads,
        "onnx": str(onnx_path) if onnx_path else None,
        "calls": calls,
    }
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), YOLO_VERBOSE="false")
    code = "import sys; from pst_yolo.eval.speed import _memory_child; _memory_child(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement of {case.label} ({case.runtime}) failed:\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")][-1]
    return json.loads(line)["peak_bytes"]


def measure_memory_torch_cpu(run: Callable[[], Any]) -> float:
    """Peak bytes of live tensors allocated through PyTorch's CPU allocator during one call (after one
    warm-up call), from the profiler's allocation/free events; deterministic, unlike the RSS."""
    from torch.profiler import ProfilerActivity, profile

    run()
    prep = getattr(run, "before_memory", None)
    if prep:
        prep()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return float(peak)


def measure_memory_cuda(run: Callable[[], Any], calls: int) -> float:
    import torch

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(calls):
        run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------
def _as_list(v, conv=str) -> list:
    if v is None:
        return []
    if isinstance(v, (str, int)):
        v = [v]
    return [conv(x) for x in v]


def _loadavg() -> str:
    """1-minute load average (other processes competing for the CPUs), or '?'."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (OSError, AttributeError):
        return "?"


@dataclass
class _Plan:
    """What one ``speed`` call measures: validated settings and the cases, in table order."""

    cases: list[Case]
    runtimes: list[str]
    imgsz: int
    batch: int
    threads: int
    device: str
    half: bool

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def _check_input_memory(batch: int, imgsz: int) -> None:
    """Refuse a batch whose input tensor alone (float32) is larger than the memory available now."""
    from pst_yolo.data.writer import available_memory

    need, have = batch * 3 * imgsz * imgsz * 4, available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"batch={batch} at imgsz={imgsz} needs {need / 2**30:.1f} GiB for the input alone, but "
            f"{have / 2**30:.1f} GiB of memory is available; use a smaller batch"
        )


def _plan(models, imgsz, batch, threads, runtime, topk, device, half, train_step) -> _Plan:
    """Check the arguments (errors say what to change) and list the cases to measure."""
    import torch

    models = _as_list(models)
    runtimes = ["train"] if train_step else _as_list(runtime)
    ks = _as_list(topk, int)
    if not models:
        raise ValueError("models= is empty")
    for m in models:
        check_model_file(m)
        if runtime_format(m) not in (None, "pt"):  # speed exports each model itself, per runtime=
            raise ValueError(f"model {m} is an export; speed takes .pt/.yaml models and exports them per runtime=")
    bad = [r for r in runtimes if r not in RUNTIMES + ("train",)]
    if bad:
        raise ValueError(f"unknown runtime {bad}; choose from {', '.join(RUNTIMES)}")
    if any(k < 0 for k in ks) or not ks:
        raise ValueError(f"topk must be non-negative integers, got {ks}")
    imgsz = imgsz or (320 if train_step else 640)
    batch = batch or (8 if train_step else 1)
    if imgsz % 32:
        raise ValueError(f"imgsz must be a multiple of 32, got {imgsz}")
    device = "cpu" if str(device) in ("cpu", "") else (f"cuda:{device}" if str(device).isdigit() else str(device))
    export_rts = [r for r in runtimes if r in EXPORT_RUNTIMES]
    if export_rts and device != "cpu":
        raise ValueError(f"runtime {', '.join(export_rts)} runs on the CPU only here; use device=cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device} asked for, but CUDA is not available")
    if half and not device.startswith("cuda"):
        raise ValueError("half=True needs a CUDA device (fp16 convolutions on CPU are not a deployment path)")
    if half and train_step:
        raise ValueError("half=True is for inference; training steps run in float32 here")
    most = max(os.cpu_count() or 1, 2)  # more threads than cores measure contention (2, the default, always passes)
    if threads > most:
        raise ValueError(f"threads={threads}: this machine has {os.cpu_count()} CPU(s); give at most {most}")
    _check_input_memory(batch, imgsz)
    model_ks = {m: (ks if _has_pst(m) else [None]) for m in models}
    cases = [Case(m, k, rt) for rt in runtimes for m in models for k in model_ks[m]]
    return _Plan(cases, runtimes, imgsz, batch, threads, device, half)


def _export_all(plan: _Plan, onnx_dir: Path, opset: int | None, log: Callable) -> dict[Case, Path]:
    """Export every ONNX or other exported-runtime case (Ultralytics' own exporter) into ``onnx_dir``."""
    paths: dict[Case, Path] = {}
    for c in plan.cases:
        if c.runtime in EXPORT_RUNTIMES:
            log(f"exporting {c.label} to {c.runtime} ...")
            paths[c] = export_format(c.model, c.k, plan.imgsz, plan.batch, onnx_dir, c.runtime)
        elif c.runtime.startswith("onnx"):
            log(f"exporting {c.label} to ONNX ({c.runtime}) ...")
            paths[c] = export_onnx(
                c.model,
                c.k,
                plan.imgsz,
                plan.batch,
                onnx_dir,
                opset,
                plan.device.split(":")[-1] if plan.cuda else "cpu",
                plan.half,
                attention="ort" if c.runtime == "onnx-mha" else "standard",
            )
    return paths


def _time_all(
    plan: _Plan, onnx_paths: dict[Case, Path], runs: int, warmup: int, memory: bool, log: Callable
) -> dict[Case, dict]:
    """Latency of every case (interleaved per runtime), export-vs-eager parity, and in-process peak memory."""
    import torch

    stats: dict[Case, dict] = {}
    for rt in plan.runtimes:
        rt_cases = [c for c in plan.cases if c.runtime == rt]
        runners = {
            c: _runner(c, plan.imgsz, plan.batch, plan.threads, plan.device, plan.half, onnx_paths.get(c))
            for c in rt_cases
        }
        log(f"timing {len(rt_cases)} {rt} cases: {warmup} warm-up + {runs} timed rounds, interleaved ...")
        times = time_interleaved(runners, runs, warmup, torch.cuda.synchronize if plan.cuda else None)
        for c in rt_cases:
            s = stats.setdefault(c, {})
            if _exported(rt):  # the exported graph must give the eager model's numbers
                s["onnx_max_abs_diff"] = _onnx_vs_torch(runners[c], c, plan.imgsz, plan.batch, plan.device, plan.half)
            s["dtype"] = getattr(runners[c], "precision", "fp16" if plan.half else "fp32")
            s.update(
                median_ms=statistics.median(times[c]) * 1e3,
                p90_ms=_percentile(times[c], 0.9) * 1e3,
                min_ms=min(times[c]) * 1e3,
            )
            if memory and not _exported(rt):
                peak = measure_memory_cuda(runners[c], 3) if plan.cuda else measure_memory_torch_cpu(runners[c])
                s["peak_mem_mb"] = peak / 2**20
        del runners
    return stats


def _measure_onnx_memory(
    plan: _Plan, stats: dict[Case, dict], onnx_paths: dict[Case, Path], warmup: int, log: Callable
) -> None:
    """Peak resident-set growth of each exported case (ONNX and the others) in a fresh process (CPU only)."""
    for c in plan.cases:
        if _exported(c.runtime):
            log(f"peak memory of {c.label} ({c.runtime}) in a fresh process ...")
            b = measure_memory_cpu(c, plan.imgsz, plan.batch, plan.threads, onnx_paths.get(c), calls=warmup + 3)
            stats[c]["peak_mem_mb"] = None if b is None else b / 2**20


def _rows(plan: _Plan, stats: dict[Case, dict], flops: bool, runs: int) -> list[dict]:
    """One table row per case: sizes, latency and memory, with ratios to the first case of its runtime."""
    flop_cache: dict[tuple, tuple[float, float]] = {}
    params_cache: dict[str, int] = {}
    rows = []
    for c in plan.cases:
        if c.model not in params_cache:
            params_cache[c.model] = sum(p.numel() for p in _detection_model(c.model).parameters())
        if flops and (c.model, c.k) not in flop_cache:
            flop_cache[(c.model, c.k)] = count_flops(c.model, c.k, plan.imgsz)
        base = next(b for b in plan.cases if b.runtime == c.runtime)
        s, sb = stats[c], stats[base]
        gfl = flop_cache.get((c.model, c.k), (None, None))
        mem, mem_b = s.get("peak_mem_mb"), sb.get("peak_mem_mb")
        rows.append(
            {
                "model": c.model,
                "k": "-" if c.k is None else c.k,
                "runtime": c.runtime,
                "device": plan.device,
                "dtype": s.get("dtype", "fp16" if plan.half else "fp32"),
                "imgsz": plan.imgsz,
                "batch": plan.batch,
                "threads": plan.threads,
                "params_M": params_cache[c.model] / 1e6,
                "gflops": gfl[0],
                "attn_gflops": gfl[1],
                "median_ms": s["median_ms"],
                "p90_ms": s["p90_ms"],
                "min_ms": s["min_ms"],
                "ratio": s["median_ms"] / sb["median_ms"],
                "peak_mem_mb": mem,
                "mem_method": None
                if mem is None
                else ("cuda" if plan.cuda else "rss" if _exported(c.runtime) else "alloc"),
                "mem_ratio": (mem / mem_b) if (mem is not None and mem_b) else None,
                "onnx_max_abs_diff": s.get("onnx_max_abs_diff"),
                "runs": runs,
            }
        )
    return rows


def speed(
    models: Sequence[str] | str = ("yolo11n.yaml", "yolo11n-pst.yaml"),
    imgsz: int | None = None,
    batch: int | None = None,
    threads: int = 2,
    runtime: Sequence[str] | str = DEFAULT_RUNTIMES,
    topk: Sequence[int] | int = (0, 8),
    device: str = "cpu",
    half: bool = False,
    runs: int = 20,
    warmup: int = 5,
    train_step: bool = False,
    memory: bool = True,
    flops: bool = True,
    opset: int | None = None,
    project: str | Path | None = "runs/speed",
    name: str = "exp",
    verbose: bool = True,
) -> SpeedResult:
    """Benchmark ``models`` (each PST model at every k in ``topk``) in each runtime; see the module doc.

    ``imgsz``/``batch`` default to 640/1, or 320/8 with ``train_step=True`` (which replaces the
    runtimes by one ``train`` runtime). ``project=None`` writes nothing to disk except temporary
    ONNX files. Returns the rows, the run folder (with speed.md, speed.csv and the ONNX files) and a
    Markdown table.
    """
    import tempfile

    import torch

    from pst_yolo.eval.tables import machine_description

    check_positive(threads=threads, runs=runs, imgsz=imgsz, batch=batch)
    if warmup < 0:
        raise ValueError(f"warmup={warmup}: must be >= 0")
    plan = _plan(models, imgsz, batch, threads, runtime, topk, device, half, train_step)
    torch.set_num_threads(threads)
    log = print if verbose else (lambda *a, **k: None)
    load_start = _loadavg()
    run_dir = None
    if project is not None:
        from pst_yolo.data.writer import run_folder

        run_dir = run_folder(Path(project) / name, "speed", numbered=True, key="name")
    with tempfile.TemporaryDirectory(prefix="pst_speed_") as tmp:
        onnx_paths = _export_all(plan, run_dir or Path(tmp), opset, log)
        stats = _time_all(plan, onnx_paths, runs, warmup, memory, log)
        if memory and not plan.cuda:
            _measure_onnx_memory(plan, stats, onnx_paths, warmup, log)
        rows = _rows(plan, stats, flops, runs)

    machine = torch.cuda.get_device_name(torch.device(plan.device)) if plan.cuda else machine_description()
    settings = {
        "machine": machine,
        "torch": torch.__version__,
        "runs": runs,
        "warmup": warmup,
        "threads": threads,
        "imgsz": plan.imgsz,
        "batch": plan.batch,
        "device": plan.device,
        "train_step": train_step,
        "load": f"{load_start} -> {_loadavg()}",
    }
    with contextlib.suppress(ImportError):
        import onnxruntime

        settings["onnxruntime"] = onnxruntime.__version__
    import importlib.metadata

    settings["runtimes"] = {
        rt: importlib.metadata.version(RUNTIME_PACKAGES[rt]) for rt in plan.runtimes if rt in RUNTIME_PACKAGES
    }
    md = markdown_table(rows, settings)
    if run_dir is not None:
        from pst_yolo.data.writer import write_csv, write_text

        write_text(run_dir / "speed.md", md + "\n")
        header = list(rows[0])
        write_csv(run_dir / "speed.csv", header, [[r.get(k, "") for k in header] for r in rows])
        log(f"results written to {run_dir}")
    return SpeedResult(rows, run_dir, md, settings)


def _fmt(v, spec: str, none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def markdown_table(rows: list[dict], settings: dict | None = None) -> str:
    """The rows as a Markdown table (ratios are to the first row of the same runtime)."""
    head = ""
    if settings:
        head = (
            f"{settings['machine']}; torch {settings['torch']}"
            + (f", onnxruntime {settings['onnxruntime']}" if "onnxruntime" in settings else "")
            + "".join(f", {rt} {v}" for rt, v in settings.get("runtimes", {}).items())
            + f"; {settings['threads']} threads, batch {settings['batch']}, {settings['imgsz']}x{settings['imgsz']}; "
            f"median / p90 of {settings['runs']} interleaved runs after {settings['warmup']} warm-up; "
            f"1-min load average {settings.get('load', '?')} (start -> end)\n\n"
        )
    lines = [
        "| model | k | runtime | params | GFLOPs (attn) | median ms | p90 ms | latency vs first | peak mem MiB "
        "| mem vs first | export vs torch max abs diff |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gf = "n/a" if r["gflops"] is None else f"{r['gflops']:.2f} ({r['attn_gflops']:.2f})"
        lines.append(
            f"| {r['model']} | {r['k']} | {r['runtime']} ({r['device']}, {r['dtype']}) | {r['params_M']:.2f} M | {gf} | "
            f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['ratio']:.2f}x | "
            f"{_fmt(r['peak_mem_mb'], '.1f')}{'' if r['mem_method'] is None else ' (' + r['mem_method'] + ')'} | "
            f"{_fmt(r['mem_ratio'], '.2f', 'n/a')}{'x' if r['mem_ratio'] is not None else ''} | "
            f"{_fmt(r['onnx_max_abs_diff'], '.1e', '-')} |"
        )
    return head + "\n".join(lines)
