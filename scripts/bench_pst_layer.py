#!/usr/bin/env python
"""Micro-benchmark: the PST layer of pst_yolo.nn.pst against its plain formulation.

The plain formulation (``pst_yolo.nn.reference: plain_pst / plain_psattn``) is explicit
matmul-softmax-matmul on strided views with the kv projection of the whole fine map; the tests check
both against the naive loop reference, and this script checks the two agree before timing them.

The layer and its input shapes are taken from a real model: by default the P3 PST layer (the last
one) of yolo11n-pst at 640x640, i.e. x [1, 256, 80, 80], upper [1, 128, 40, 40], hidden 32, 1 head.
Both formulations run in the same process, interleaved, after warm-up; medians are reported.

    python scripts/bench_pst_layer.py                                   # yolo11n P3, k = 0 and 8, eval
    python scripts/bench_pst_layer.py model=yolo11s-pst.yaml imgsz=640 k=0,8 runs=30 threads=2
    python scripts/bench_pst_layer.py train=True batch=8 imgsz=320     # forward + backward, train mode
    python scripts/bench_pst_layer.py imgsz=64 runs=2 warmup=1          # smoke test (what CI runs)
    python scripts/bench_pst_layer.py scope=model                       # whole models, see below

``scope=model`` times whole fused models in eager inference instead: the stock model (``stock=``,
default yolo11n.yaml), the PST model with every PSAttn computed by the plain formulation, the PST
model with the fast attention but the fine keys/values projected from the whole fine map (the
optimisations one at a time), and the PST model as shipped; ratios are to the stock model.

Keys: model, layer (index in the model; default the last PST), imgsz, batch, k (comma list), threads,
runs, warmup, train (forward+backward in train mode instead of inference), fuse (fold BN, default
True for inference), csv (also write the rows to this file), scope (layer | model), stock.
"""

from __future__ import annotations

import copy
import csv
import statistics
import sys
import time

from pst_yolo.cli.args import CLIError, Key, int_list, parse_kv, to_bool

KEYS = (
    Key("model", str),
    Key("layer", int),
    Key("imgsz", int),
    Key("batch", int),
    Key("k", int_list),
    Key("threads", int),
    Key("runs", int),
    Key("warmup", int),
    Key("train", to_bool),
    Key("fuse", to_bool),
    Key("csv", str),
    Key("scope", str),
    Key("stock", str),
)


def layer_and_inputs(model: str, layer: int | None, imgsz: int, batch: int):
    """The PST layer ``layer`` of ``model`` (a fresh copy) and random inputs of the shapes it sees at imgsz."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.integration.registry import register
    from pst_yolo.nn.pst import PST

    register()
    net = DetectionModel(model, verbose=False).eval()
    idx = [i for i, m in enumerate(net.model) if isinstance(m, PST)]
    if not idx:
        raise ValueError(f"{model} has no PST layer")
    i = idx[-1] if layer is None else layer
    if not isinstance(net.model[i], PST):
        raise ValueError(f"layer {i} of {model} is {type(net.model[i]).__name__}, not PST; PST layers: {idx}")
    shapes = {}
    hook = net.model[i].register_forward_hook(lambda m, a, o: shapes.update(x=a[0][0].shape, up=a[0][1].shape))
    with torch.inference_mode():
        net(torch.zeros(1, 3, imgsz, imgsz))
    hook.remove()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shapes["x"][1:], generator=g)
    up = torch.randn(batch, *shapes["up"][1:], generator=g)
    return copy.deepcopy(net.model[i]), x, up, i


def _randomize_bn_(module) -> None:
    """Non-trivial BN statistics, so that folding and the affine fine projection are really exercised."""
    import torch

    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            if isinstance(m, torch.nn.Conv1d):  # a trained-looking gate instead of the zero init
                m.weight.copy_(0.05 * torch.randn(m.weight.shape, generator=g))


def _fuse_(module) -> None:
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    for m in module.modules():
        if isinstance(m, Conv) and hasattr(m, "bn"):
            m.conv = fuse_conv_and_bn(m.conv, m.bn)
            delattr(m, "bn")
            m.forward = m.forward_fuse


def run(
    model: str = "yolo11n-pst.yaml",
    layer: int | None = None,
    imgsz: int = 640,
    batch: int = 1,
    k: list[int] | tuple[int, ...] = (0, 8),
    threads: int = 2,
    runs: int = 20,
    warmup: int = 3,
    train: bool = False,
    fuse: bool = True,
    csv_path: str | None = None,
) -> list[dict]:
    """Time the PST layer (and its attention) against the plain formulation; return one row per case."""
    import torch

    from pst_yolo.nn.reference import plain_psattn, plain_pst

    torch.set_num_threads(threads)
    pst, x, up, idx = layer_and_inputs(model, layer, imgsz, batch)
    _randomize_bn_(pst)
    if train:
        pst.train()
        pst.fine_in_training = True  # otherwise k would not matter in train mode
    else:
        pst.eval()
        if fuse:
            _fuse_(pst)

    # the attention sub-layer alone, on the inputs it sees inside the layer
    with torch.no_grad():
        xa, ua = pst.cv1(x), pst.cvup(up)
    attn = pst.attnlayer_0.attn

    rows = []
    for kk in k:
        pst.k = kk
        m_eff = min(kk, up.shape[-2] * up.shape[-1])
        cases = {
            "PST layer": (lambda: pst([x, up]), lambda: plain_pst(pst, x, up), x, up),
            "PSAttn": (lambda: attn(xa, ua), lambda m_eff=m_eff: plain_psattn(attn, xa, ua, m_eff), xa, ua),
        }
        for name, (fast, plain, xin, uin) in cases.items():
            if train:
                fast_f, plain_f = _fwd_bwd(pst, fast), _fwd_bwd(pst, plain)
                ctx = torch.enable_grad
            else:
                fast_f, plain_f = fast, plain
                ctx = torch.inference_mode
            with ctx():
                if train:
                    torch.manual_seed(0)
                out_fast, out_plain = fast(), plain()
                err = (out_fast - out_plain).abs().max().item()
                t = {"fast": [], "plain": []}
                for i in range(warmup + runs):
                    for key, f in (
                        (("fast", fast_f), ("plain", plain_f))
                        if i % 2 == 0
                        else (
                            ("plain", plain_f),
                            ("fast", fast_f),
                        )
                    ):
                        t0 = time.perf_counter()
                        f()
                        if i >= warmup:
                            t[key].append(time.perf_counter() - t0)
            med_f, med_p = statistics.median(t["fast"]), statistics.median(t["plain"])
            rows.append(
                {
                    "model": model,
                    "layer": idx,
                    "module": name,
                    "mode": "train fwd+bwd" if train else ("eval, fused" if fuse else "eval"),
                    "x": "x".join(map(str, xin.shape)),
                    "upper": "x".join(map(str, uin.shape)),
                    "k": kk,
                    "threads": threads,
                    "runs": runs,
                    "fast_ms": med_f * 1e3,
                    "plain_ms": med_p * 1e3,
                    "speedup": med_p / med_f,
                    "fast_min_ms": min(t["fast"]) * 1e3,
                    "plain_min_ms": min(t["plain"]) * 1e3,
                    "max_abs_diff": err,
                }
            )
    if csv_path:
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return rows


def _fwd_bwd(module, f):
    def step():
        module.zero_grad(set_to_none=True)
        f().square().mean().backward()

    return step


def run_models(
    model: str = "yolo11n-pst.yaml",
    stock: str = "yolo11n.yaml",
    imgsz: int = 640,
    batch: int = 1,
    k: list[int] | tuple[int, ...] = (0, 8),
    threads: int = 2,
    runs: int = 20,
    warmup: int = 3,
    csv_path: str | None = None,
) -> list[dict]:
    """Whole-model eager inference: stock vs PST plain vs PST with each optimisation (see module doc)."""
    import torch

    from pst_yolo.eval.speed import _input, build_torch, time_interleaved
    from pst_yolo.nn.pst import PSAttn
    from pst_yolo.nn.reference import plain_psattn

    torch.set_num_threads(threads)
    x = _input(batch, imgsz)

    def variant(net, name):
        net = copy.deepcopy(net)
        for m in net.modules():
            if not isinstance(m, PSAttn):
                continue
            if name == "plain formulation":

                def fwd(xx, up, m=m):
                    return plain_psattn(m, xx, up, min(m.topk, up.shape[-2] * up.shape[-1]))

                m.forward = fwd
            elif name == "fast attention, whole-map fine projection":
                m._kv_affine = lambda: None
        return net

    nets = {("stock", None): build_torch(stock, None)[0]}
    for kk in k:
        pst = build_torch(model, kk)[0]
        names = ["plain formulation", "fast attention, whole-map fine projection", "shipped"]
        for name in names if kk > 0 else [names[0], names[2]]:
            nets[(name, kk)] = variant(pst, name)
    with torch.inference_mode():
        outs = {key: net(x)[0] for key, net in nets.items()}

    def call(net):
        def f():
            with torch.inference_mode():
                net(x)

        return f

    times = time_interleaved({key: call(net) for key, net in nets.items()}, runs, warmup)
    base = statistics.median(times[("stock", None)])
    rows = []
    for (name, kk), t in times.items():
        ref = outs[("shipped", kk)] if kk is not None else None
        rows.append(
            {
                "model": stock if kk is None else model,
                "variant": name,
                "k": "-" if kk is None else kk,
                "imgsz": imgsz,
                "batch": batch,
                "threads": threads,
                "runs": runs,
                "median_ms": statistics.median(t) * 1e3,
                "min_ms": min(t) * 1e3,
                "ratio_to_stock": statistics.median(t) / base,
                "max_abs_diff_to_shipped": None if ref is None else (outs[(name, kk)] - ref).abs().max().item(),
            }
        )
    if csv_path:
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return rows


def markdown_models(rows: list[dict]) -> str:
    lines = [
        "| model | variant | k | median ms | min ms | vs stock (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['k']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
            f"{r['ratio_to_stock']:.2f}x |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| module | mode | x | upper | k | fast (ms) | plain (ms) | speed-up | speed-up of minima | max abs diff |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['module']} | {r['mode']} | {r['x']} | {r['upper']} | {r['k']} | {r['fast_ms']:.2f} | "
            f"{r['plain_ms']:.2f} | {r['speedup']:.2f}x | {r['plain_min_ms'] / r['fast_min_ms']:.2f}x | "
            f"{r['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse_kv(sys.argv[1:] if argv is None else argv, KEYS, "bench_pst_layer")
    except CLIError as e:
        print(f"bench_pst_layer: error: {e}", file=sys.stderr)
        return 2
    if "csv" in opts:
        opts["csv_path"] = opts.pop("csv")
    scope = opts.pop("scope", "layer")
    if scope == "model":
        bad = [key for key in ("layer", "train", "fuse") if key in opts]
        if bad:
            print(f"bench_pst_layer: error: scope=model does not take {', '.join(bad)}", file=sys.stderr)
            return 2
        rows = run_models(**opts)
        r0 = rows[0]
        print(f"whole models, eager, fused; {r0['threads']} threads, median of {r0['runs']} runs (interleaved)")
        print(markdown_models(rows))
        return 0
    if scope != "layer" or "stock" in opts:
        print("bench_pst_layer: error: scope is layer or model; stock= only with scope=model", file=sys.stderr)
        return 2
    rows = run(**opts)
    r0 = rows[0]
    print(f"{r0['model']} layer {r0['layer']}, {r0['threads']} threads, median of {r0['runs']} runs (interleaved)")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
