"""Fine-aware training under DistributedDataParallel: CPU, gloo backend, 2 processes.

Ultralytics wraps the model in DDP with ``find_unused_parameters=True`` normally and with
``find_unused_parameters=False, static_graph=True`` when ``compile=True``. Coarse-only steps leave
the gate unused while fine steps use it; both wrappings must train through a schedule that mixes
them, with every rank ending on the same weights.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow  # trains models / runs subprocesses

SCHEDULE = (False, True, False, True)  # fine branch off / on per step, as a p-per-batch schedule gives


def _tensors(out) -> list:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


def _worker(rank: int, world: int, init_file: str, static_graph: bool, result_file: str) -> None:
    os.environ["YOLO_OFFLINE"] = "1"
    torch.set_num_threads(1)
    # File rendezvous: no TCP port to race for on a busy machine.
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        from torch.nn.parallel import DistributedDataParallel as DDP
        from ultralytics.nn.tasks import DetectionModel

        import pst_yolo
        from pst_yolo.nn.fine_train import keep_gate_in_graph

        torch.manual_seed(0)
        model = DetectionModel("yolo11n-pst.yaml", verbose=False).train()
        if static_graph:  # what the fine-aware schedule attaches in training
            keep_gate_in_graph(model)
            ddp = DDP(model, find_unused_parameters=False, static_graph=True)
        else:
            ddp = DDP(model, find_unused_parameters=True)
        gates = [b.attn.gate_conv1d.weight for _, layer in pst_yolo.pst_layers(model) for b in layer._blocks()]
        gate0 = [g.detach().clone() for g in gates]
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step, fine in enumerate(SCHEDULE):
            for _, layer in pst_yolo.pst_layers(model):
                layer.fine_in_training = fine
            gen = torch.Generator().manual_seed(100 * step + rank)  # each rank its own data
            loss = sum(t.float().square().mean() for t in _tensors(ddp(torch.rand(2, 3, 64, 64, generator=gen))))
            opt.zero_grad()
            loss.backward()
            opt.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        if rank == 0:
            torch.save(
                {
                    "same": torch.equal(gathered[0], gathered[1]),
                    "gate_moved": any(not torch.equal(a, b.detach()) for a, b in zip(gate0, gates)),
                },
                result_file,
            )
        # Both ranks leave together: a rank tearing down gloo while its peer is still in a collective
        # was seen to abort ("terminate called without an active exception") on a loaded machine.
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("static_graph", [False, True], ids=["find_unused", "static_graph_compile"])
def test_ddp_fine_aware_training_two_processes(static_graph, tmp_path):
    result = tmp_path / "result.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "rendezvous"), static_graph, str(result)), nprocs=2, join=True)
    out = torch.load(result)
    assert out["same"], "ranks ended with different weights"
    assert out["gate_moved"], "fine steps did not train the gate"
