"""Parallel jobs (pst_yolo.eval.parallel) and bench's parallel training: the same bits as one after the other."""

from __future__ import annotations

import os

import pytest
import torch

from pst_yolo.eval import parallel
from pst_yolo.eval.parallel import Job, JobError, run_jobs


def test_jobs_return_their_results_and_print_into_their_logs(tmp_path):
    import helpers

    jobs = [Job(f"sq{x}", helpers.job_square, {"x": x}, log=tmp_path / f"sq{x}.log") for x in (2, 3, 4)]
    assert run_jobs(jobs, jobs=2, threads=1, verbose=False) == {"sq2": 4, "sq3": 9, "sq4": 16}
    assert (tmp_path / "sq3.log").read_text().strip() == "squaring 3"


def test_each_worker_uses_the_thread_count_it_is_given(tmp_path):
    import helpers

    jobs = [Job(f"t{i}", helpers.job_threads, log=tmp_path / f"t{i}.log") for i in range(2)]
    assert run_jobs(jobs, jobs=2, threads=1, verbose=False) == {"t0": 1, "t1": 1}
    assert run_jobs(jobs[:1], jobs=1, threads=2, verbose=False) == {"t0": 2}


def test_a_failing_job_raises_with_its_message_and_log(tmp_path):
    import helpers

    jobs = [Job("bad", helpers.job_fail, {"message": "the reason"}, log=tmp_path / "bad.log")]
    with pytest.raises(JobError, match=r"job bad failed \(log: .*bad\.log\):\nValueError: the reason"):
        run_jobs(jobs, jobs=1, threads=1, verbose=False)


def test_a_worker_that_dies_without_a_result_is_an_error(tmp_path):
    import helpers

    with pytest.raises(JobError, match="job gone ended with exit code 3"):
        run_jobs([Job("gone", helpers.job_die, {"code": 3}, log=tmp_path / "g.log")], jobs=1, threads=1, verbose=False)


def test_progress_reaches_one_display(tmp_path, capsys):
    import helpers

    assert run_jobs([Job("r", helpers.job_report, {"n": 3}, log=tmp_path / "r.log")], jobs=1, threads=1) == {"r": 3}
    out = capsys.readouterr().out  # not a terminal: one line per event
    assert [line.split("] ", 1)[1] for line in out.splitlines() if "] r:" in line] == [
        f"r: started (log: {tmp_path / 'r.log'})",
        "r: step 1/3",
        "r: step 2/3",
        "r: step 3/3",
        "r: done ",
    ]


def test_job_count_fits_the_cores(monkeypatch):
    monkeypatch.setattr(parallel, "cpu_cores", lambda: 8)
    assert parallel.default_jobs(5, threads=2) == 4
    assert parallel.default_jobs(2, threads=2) == 2
    assert parallel.default_jobs(5, threads=16) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert parallel.threads_per_job(2) == 4  # the parent's count where it fits
    assert parallel.threads_per_job(4) == 2  # else lowered so jobs x threads <= cores


def test_bench_refuses_jobs_below_one(tmp_path, cli):
    cli.error("bench", "jobs=0", f"project={tmp_path}", match="jobs=0: must be >= 1")
    assert not list(tmp_path.iterdir())  # refused before anything was generated or trained


@pytest.mark.slow
def test_parallel_bench_gives_the_bits_of_a_sequential_one(tmp_path, one_thread):
    """Both models trained at once in worker processes = trained one after the other here: same weights, same
    COCO stats. The dataset's label cache is written once before the jobs start (else they race on it)."""
    from pst_yolo.eval.bench import bench

    common = dict(synth=_tiny(), epochs=1, batch=4, topk=[0, 8], project=tmp_path, exist_ok=True, verbose=False)
    seq = bench(name="seq", jobs=1, **common)
    par = bench(name="par", jobs=2, **common)
    assert seq.settings["jobs"] == 1 and par.settings["jobs"] == 2
    assert (par.run_dir / "yolo11n.log").is_file() and (par.run_dir / "yolo11n-pst.log").is_file()
    assert not (seq.run_dir / "yolo11n.log").exists()
    assert [(r.model, r.k, r.stats) for r in seq.rows] == [(r.model, r.k, r.stats) for r in par.rows]
    for a, b in zip(seq.rows, par.rows):
        wa = torch.load(a.weights, map_location="cpu", weights_only=False)["model"].float().state_dict()
        wb = torch.load(b.weights, map_location="cpu", weights_only=False)["model"].float().state_dict()
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.model


def _tiny():
    from pst_yolo.data.synth import SynthSpec

    return SynthSpec(train=16, val=4, imgsz=64, seed=0)


@pytest.fixture
def one_thread():
    """The parent at one torch thread, so jobs=2 runs each job at the parent's count on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bench_sizes_its_jobs_by_ultralytics_training_threads(monkeypatch):
    """Ultralytics sets torch to min(8, CPUs - 1) threads for every CPU training, whatever the parent process has."""
    from pst_yolo.eval.bench import resolve_jobs
    from pst_yolo.integration import runtime

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # the parent's own count does not matter
    monkeypatch.setattr(parallel, "cpu_cores", lambda: 2)
    monkeypatch.setattr(runtime, "training_threads", lambda: 1)
    assert resolve_jobs(None, 3) == 2 and resolve_jobs(None, 1) == 1 and resolve_jobs(1, 3) == 1
    monkeypatch.setattr(parallel, "cpu_cores", lambda: 8)
    monkeypatch.setattr(runtime, "training_threads", lambda: 7)
    assert resolve_jobs(None, 3) == 1 and resolve_jobs(5, 3) == 3
    monkeypatch.undo()
    assert runtime.training_threads() == min(8, max(1, (os.cpu_count() or 1) - 1))  # Ultralytics' NUM_THREADS rule
