"""Run independent jobs (trainings, study cells) in parallel worker processes, with one progress display.

    from pst_yolo.eval.parallel import Job, default_jobs, run_jobs
    results = run_jobs([Job("a", train_one, {...}, log=Path("a.log")), ...], jobs=default_jobs(2))

Ultralytics trains on a CPU with ``min(8, CPUs - 1)`` torch threads (its ``select_device`` sets that count for
every training), so on a 2-core machine one core idles while a benchmark trains its models one after the other.
Each job here runs in a fresh (spawned) interpreter at the thread count it is given; a training there computes
at Ultralytics' count, as it would in the parent, so a parallel run gives the bits of a sequential one. What a
worker prints goes to the job's log file; the parent shows one status line (or, when its output is not a
terminal, one line per reported event).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

_QUEUE: Any = None  # in a worker: where report() sends progress (None in the parent: report() does nothing)
_KEY: Optional[str] = None


@dataclass(frozen=True)
class Job:
    """One unit of work: ``func(**kwargs)`` in a worker process. ``func`` must be a module-level function and
    ``kwargs`` and its result picklable; ``log`` receives what the worker prints."""

    key: str
    func: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    log: Optional[Path] = None


class JobError(RuntimeError):
    """A job failed in its worker (its traceback and log file are named in the message)."""


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_jobs(n_jobs: int, threads: Optional[int] = None) -> int:
    """How many jobs to run at once: as many as fit on the cores at ``threads`` torch threads each (default: this
    process's torch thread count, which is what each job then uses), at most ``n_jobs``, at least 1."""
    import torch

    threads = threads or torch.get_num_threads()
    return max(1, min(n_jobs, cpu_cores() // max(1, threads)))


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of ``jobs`` parallel jobs: the parent's count (same bits as running the job here),
    lowered only where ``jobs x threads`` would exceed the cores."""
    import torch

    return max(1, min(torch.get_num_threads(), cpu_cores() // max(1, jobs)))


def report(**fields: Any) -> None:
    """From inside a job: send progress (e.g. ``epoch=3, epochs=8``) to the parent's display. A no-op outside
    a worker, so job functions can call it unconditionally."""
    if _QUEUE is not None:
        _QUEUE.put(("progress", _KEY, fields))


def _worker(job: Job, threads: int, queue: Any) -> None:
    """Entry point of a worker process: its output into the job's log, the parent's thread count, then the job."""
    global _QUEUE, _KEY
    if job.log is not None:
        Path(job.log).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)  # at the descriptor level: C libraries and subprocesses write there too
        os.dup2(fd, 2)
        os.close(fd)
    import torch

    torch.set_num_threads(threads)
    _QUEUE, _KEY = queue, job.key
    try:
        result = job.func(**job.kwargs)
    except BaseException as e:  # every failure goes back to the parent, named
        queue.put(("error", job.key, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None
    queue.put(("done", job.key, result))


class _Status:
    """One status line over all running jobs: rewritten in place on a terminal, else printed per event."""

    def __init__(self, enabled: bool, describe: Callable[[str, Mapping[str, Any]], str]):
        self.enabled = enabled
        self.describe = describe
        self.tty = enabled and sys.stdout.isatty()
        self.state: dict[str, str] = {}
        self.t0 = time.perf_counter()

    def update(self, key: str, fields: Mapping[str, Any]) -> None:
        text = self.describe(key, fields)
        if not self.enabled or self.state.get(key) == text:
            return
        self.state[key] = text
        minutes = (time.perf_counter() - self.t0) / 60
        if self.tty:
            line = f"  [{minutes:4.1f} min] " + " | ".join(self.state.values())
            print("\r" + line[: os.get_terminal_size().columns - 1].ljust(40), end="", flush=True)
        else:
            print(f"  [{minutes:4.1f} min] {text}", flush=True)

    def close(self) -> None:
        """End the status line (a terminal's cursor is still on it)."""
        if self.tty and self.state:
            print(flush=True)


def describe_epochs(key: str, fields: Mapping[str, Any]) -> str:
    """The status of a job that reports ``epoch=`` (a training, a study cell): started, epoch i/n, finished."""
    if "epoch" in fields:
        return f"{key} epoch {fields['epoch']}"
    return f"{key} {'finished' if 'done' in fields else 'started'}"


def _describe(key: str, fields: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in fields.items())
    return f"{key}: {shown}" if shown else key


def run_jobs(
    jobs_to_run: Sequence[Job],
    jobs: Optional[int] = None,
    threads: Optional[int] = None,
    verbose: bool = True,
    describe: Callable[[str, Mapping[str, Any]], str] = _describe,
) -> dict[str, Any]:
    """Run every job in worker processes, at most ``jobs`` at once; returns ``{job.key: result}``.

    ``threads``: torch threads per worker (default ``threads_per_job(jobs)``). The first job to fail stops the
    others and raises ``JobError`` with its traceback and log file; Ctrl-C stops every worker."""
    import multiprocessing as mp

    keys = [j.key for j in jobs_to_run]
    if len(set(keys)) != len(keys):
        raise ValueError(f"job keys must be unique, got {keys}")
    jobs = jobs or default_jobs(len(jobs_to_run))
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1")
    threads = threads or threads_per_job(jobs)
    ctx = mp.get_context("spawn")  # a fresh interpreter: no forked torch thread pools or locks
    queue = ctx.Queue()
    pending = list(jobs_to_run)
    running: dict[str, tuple[Any, Job]] = {}
    results: dict[str, Any] = {}
    status = _Status(verbose, describe)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                job = pending.pop(0)
                proc = ctx.Process(target=_worker, args=(job, threads, queue), name=f"pst-yolo {job.key}", daemon=True)
                proc.start()
                running[job.key] = (proc, job)
                status.update(job.key, {"started": f"(log: {job.log})" if job.log else ""})
            try:
                kind, key, payload = queue.get(timeout=0.5)
            except Exception:  # queue.Empty: look for workers that died without a word
                for key, (proc, job) in list(running.items()):
                    if not proc.is_alive() and key not in results:
                        proc.join()
                        raise JobError(
                            f"job {key} ended with exit code {proc.exitcode} before reporting a result"
                            + (f"; its log: {job.log}" if job.log else "")
                        ) from None
                continue
            if kind == "progress":
                status.update(key, payload)
            elif kind == "error":
                log = running[key][1].log
                raise JobError(f"job {key} failed{f' (log: {log})' if log else ''}:\n{payload}")
            elif kind == "done":
                results[key] = payload
                proc, _ = running.pop(key)
                proc.join()
                status.update(key, {"done": ""})
    finally:
        for proc, _ in running.values():
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=10)
        queue.close()
        status.close()
    return results
