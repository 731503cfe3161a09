"""The speed benchmark (pst_yolo/speed.py) and the layer micro-benchmark (scripts/bench_pst_layer.py).

Benchmarks are not timed tests: these run them on tiny sizes and check what they report is complete
and consistent (rows, files, FLOP accounting, ONNX parity), never how fast anything is.
"""

from __future__ import annotations

import csv
import importlib.util
import sys

import pytest
import torch

from helpers import REPO
from pst_yolo.cli import main
from pst_yolo.eval.speed import Case, count_flops, measure_memory_cpu, speed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One small run through the command-line entry point: 2 models x (torch, onnx), PST at k = 0 and 2."""
    project = tmp_path_factory.mktemp("speed")
    argv = [
        "models=yolo11n.yaml,yolo11n-pst.yaml",
        "imgsz=64",
        "batch=1",
        "threads=1",
        "runtime=torch,onnx",
        "topk=0,2",
        "runs=2",
        "warmup=1",
        "memory=False",
        f"project={project}",
        "name=tiny",
    ]
    assert main(["speed", *argv]) == 0
    run_dir = project / "tiny"
    with open(run_dir / "speed.csv") as fh:
        rows = list(csv.DictReader(fh))
    return run_dir, rows


@pytest.mark.slow
def test_speed_writes_table_csv_and_onnx(tiny_run):
    run_dir, rows = tiny_run
    md = (run_dir / "speed.md").read_text()
    assert "| model | k | runtime |" in md and md.count("\n|") >= 7  # header + separator + 6 rows
    got = [(r["model"], r["k"], r["runtime"]) for r in rows]
    assert got == [
        ("yolo11n.yaml", "-", "torch"),
        ("yolo11n-pst.yaml", "0", "torch"),
        ("yolo11n-pst.yaml", "2", "torch"),
        ("yolo11n.yaml", "-", "onnx"),
        ("yolo11n-pst.yaml", "0", "onnx"),
        ("yolo11n-pst.yaml", "2", "onnx"),
    ]
    for r in rows:
        assert float(r["median_ms"]) > 0 and float(r["p90_ms"]) >= float(r["median_ms"]) * 0.999
        assert r["imgsz"] == "64" and r["threads"] == "1"
    # ratios are to the first row of the same runtime
    for rt in ("torch", "onnx"):
        sub = [r for r in rows if r["runtime"] == rt]
        assert float(sub[0]["ratio"]) == 1.0
        for r in sub:
            assert float(r["ratio"]) == pytest.approx(float(r["median_ms"]) / float(sub[0]["median_ms"]), rel=1e-6)
    assert sorted(p.name for p in run_dir.glob("*.onnx")) == [
        "yolo11n-pst_k0.onnx",
        "yolo11n-pst_k2.onnx",
        "yolo11n.onnx",
    ]


@pytest.mark.slow
def test_speed_onnx_graphs_match_eager_and_differ_by_k(tiny_run):
    """Every exported graph gives the eager model's output; the k = 2 graph has the fine branch, k = 0 not."""
    onnx = pytest.importorskip("onnx")
    run_dir, rows = tiny_run
    for r in rows:
        if r["runtime"] == "onnx":
            assert float(r["onnx_max_abs_diff"]) < 1e-3, r
    ops = {k: {n.op_type for n in onnx.load(str(run_dir / f"yolo11n-pst_k{k}.onnx")).graph.node} for k in (0, 2)}
    assert "TopK" in ops[2] and "TopK" not in ops[0]


@pytest.mark.slow
def test_speed_flops_count_attention(tiny_run):
    """GFLOPs include the attention products: at 64x64 the two PST layers of yolo11n-pst add exactly
    4*N*M*d*heads for their coarse attention (P3: N=64, M=16, 1 head; P4: N=16, M=4, 2 heads; d=32)."""
    _, rows = tiny_run
    by = {(r["model"], r["k"], r["runtime"]): r for r in rows}
    stock = float(by[("yolo11n.yaml", "-", "torch")]["attn_gflops"])
    pst0 = float(by[("yolo11n-pst.yaml", "0", "torch")]["attn_gflops"])
    pst2 = float(by[("yolo11n-pst.yaml", "2", "torch")]["attn_gflops"])
    coarse = 4 * 64 * 16 * 32 * 1 + 4 * 16 * 4 * 32 * 2
    c2psa = count_flops("yolo11n.yaml", None, 64)[1] * 1e9  # stock's own attention (C2PSA)
    assert stock * 1e9 == pytest.approx(c2psa, rel=1e-9)
    assert pst0 * 1e9 == pytest.approx(c2psa + coarse, rel=1e-9)
    # k = 2: selection score (2*M*d per head), fine attention over 4k tokens (4*N*4k*d per head) and the
    # projection of the gathered tokens (2*4k*C*2d per head), for each PST layer
    fine = (2 * 16 * 32 + 4 * 64 * 8 * 32 + 2 * 8 * 32 * 64) + 2 * (2 * 4 * 32 + 4 * 16 * 8 * 32 + 2 * 8 * 64 * 64)
    assert pst2 * 1e9 == pytest.approx(c2psa + coarse + fine, rel=1e-9)


def test_speed_train_step_row(tmp_path):
    res = speed(
        models=["yolo11n-pst.yaml"],
        imgsz=64,
        batch=2,
        threads=1,
        topk=[0],
        runs=1,
        warmup=0,
        train_step=True,
        memory=False,
        flops=False,
        project=None,
        verbose=False,
    )
    assert [(r["runtime"], r["k"], r["batch"], r["imgsz"]) for r in res.rows] == [("train", 0, 2, 64)]
    assert res.run_dir is None and res.rows[0]["median_ms"] > 0


@pytest.mark.slow
def test_speed_openvino_runtime():
    """runtime=openvino (one of the Ultralytics-exported runtimes): one row per case, ratios to stock, the
    exported graph gives the eager numbers (fp32 runtimes: 1e-3 px; bf16, OpenVINO's default on
    AVX512-BF16 CPUs: 2% of the box scale), the runtime's version in the table's head."""
    from pst_yolo.eval.export_matrix import available, install_hint

    if not available("openvino"):
        pytest.skip(install_hint("openvino"))
    res = speed(
        models=["yolo11n.yaml", "yolo11n-pst.yaml"],
        imgsz=64,
        batch=1,
        threads=1,
        runtime=["openvino"],
        topk=[0, 2],
        runs=2,
        warmup=1,
        memory=False,
        flops=False,
        project=None,
        verbose=False,
    )
    assert [(r["model"], r["k"], r["runtime"]) for r in res.rows] == [
        ("yolo11n.yaml", "-", "openvino"),
        ("yolo11n-pst.yaml", 0, "openvino"),
        ("yolo11n-pst.yaml", 2, "openvino"),
    ]
    assert res.rows[0]["ratio"] == 1.0 and all(r["median_ms"] > 0 for r in res.rows)
    for r in res.rows:
        assert r["dtype"] in ("fp32", "bf16", "fp16")
        bound = 1e-3 if r["dtype"] == "fp32" else 0.02 * 64 * 4  # boxes are pixels, up to ~4x imgsz untrained
        assert r["onnx_max_abs_diff"] < bound, r
    assert "| export vs torch max abs diff |" in res.markdown
    assert f"openvino {res.settings['runtimes']['openvino']}" in res.markdown


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS via /proc is Linux-only")
def test_memory_measured_in_a_fresh_process():
    peak = measure_memory_cpu(Case("yolo11n-pst.yaml", 2, "torch"), 64, 1, 1, None, calls=2)
    assert peak is not None and 0 < peak < 2**31


@pytest.mark.parametrize(
    "argv, message",
    [
        (["model=yolo11n.yaml"], "unknown key 'model'"),
        (["runtime=tensorrt", "project=x"], "unknown runtime"),
        (["half=True"], "half=True needs a CUDA device"),
        (["topk=a"], "non-negative integers"),
        (["imgsz=100"], "multiple of 32"),
        (["runtime=torch,openvino", "device=mps"], "runtime openvino runs on the CPU only here; use device=cpu"),
    ],
)
def test_speed_cli_errors(argv, message, cli):
    cli.error("speed", *argv, match=message)


def test_layer_microbenchmark_script_runs(tmp_path):
    """scripts/bench_pst_layer.py at a tiny size: both formulations agree, every field is filled in."""
    spec = importlib.util.spec_from_file_location("bench_pst_layer", REPO / "scripts" / "bench_pst_layer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "layer.csv"
    assert bench.main(["imgsz=64", "runs=1", "warmup=0", "k=0,3", "threads=1", f"csv={out}"]) == 0
    rows = bench.run(imgsz=64, k=[3], runs=1, warmup=0, threads=1, train=True, batch=2)
    with open(out) as fh:
        rows += list(csv.DictReader(fh))
    assert len(rows) == 2 + 4
    for r in rows:
        assert float(r["max_abs_diff"]) < 1e-4, r
        assert float(r["fast_ms"]) > 0 and float(r["plain_ms"]) > 0
    assert torch.get_num_threads() >= 1


def test_layer_microbenchmark_model_scope(tmp_path):
    """scope=model: stock, plain, and the PST model with each optimisation, whole models at a tiny size."""
    spec = importlib.util.spec_from_file_location("bench_pst_layer", REPO / "scripts" / "bench_pst_layer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.run_models(imgsz=64, k=[0, 2], runs=1, warmup=0, threads=1)
    assert [(r["variant"], r["k"]) for r in rows] == [
        ("stock", "-"),
        ("plain formulation", 0),
        ("shipped", 0),
        ("plain formulation", 2),
        ("fast attention, whole-map fine projection", 2),
        ("shipped", 2),
    ]
    assert rows[0]["ratio_to_stock"] == 1.0
    assert all(r["max_abs_diff_to_shipped"] is None or r["max_abs_diff_to_shipped"] < 1e-4 for r in rows)
    assert bench.main(["scope=model", "train=True"]) == 2  # layer-only keys are refused


def test_torch_memory_is_allocator_peak_and_deterministic():
    """CPU torch memory comes from the profiler's allocation events: repeatable to the byte, and a
    training step (activations kept for backward + gradients) needs more than an inference."""
    from pst_yolo.eval.speed import _input, build_torch, build_train_step, measure_memory_torch_cpu

    m, _ = build_torch("yolo11n-pst.yaml", 2)
    x = _input(1, 64)

    def infer():
        with torch.inference_mode():
            m(x)

    a, b = measure_memory_torch_cpu(infer), measure_memory_torch_cpu(infer)
    assert a == b and a > x.numel() * 4  # at least one activation bigger than the input
    step = build_train_step("yolo11n-pst.yaml", 0, 64, 2)
    t1, t2 = measure_memory_torch_cpu(step), measure_memory_torch_cpu(step)
    assert t1 == t2 and t1 > 2 * a
