"""Fine-aware training: run PST's fine branch during part of training so the gate and fine path learn.

The paper trains coarse-only and switches the fine branch on at inference, so the gate that blends
coarse and fine results is never trained. A schedule here turns the fine branch on in training for

- the last N epochs: ``fine_train=N`` (an integer >= 1), or
- a random share p of the batches: ``fine_train=P`` (a decimal in (0, 1]), decided per batch from
  a generator seeded by the training seed, the epoch and the batch number -- the same on every
  DDP rank, so all ranks run the same graph.

``fine_train=0`` (the default) is the paper's coarse-only training. On the command line it is a key
of ``pst-yolo train``; for ``yolo train`` set ``PST_FINE_TRAIN``; in Python call
``pst_yolo.fine_training(model, "0.5")`` before ``model.train(...)``. This module holds the schedule and
what it does to a model; the trainer callbacks that apply it are in ``pst_yolo.integration.callbacks``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

from pst_yolo.nn.checks import env_error
from pst_yolo.nn.topk import pst_layers

ENV_FINE_TRAIN = "PST_FINE_TRAIN"


@dataclass(frozen=True)
class FineTrainSchedule:
    last_epochs: int = 0
    prob: float = 0.0

    @classmethod
    def parse(cls, value: Any, source: str = "fine_train") -> FineTrainSchedule:
        text = str(value).strip().lower()
        if text in ("", "0", "off", "false", "none"):
            return cls()
        if text.isdigit():
            return cls(last_epochs=int(text))
        try:
            p = float(text)
        except ValueError:
            p = -1.0
        if not 0.0 < p <= 1.0:
            raise ValueError(
                f"{source} must be 0 (coarse-only training), an integer N >= 1 (fine branch in the last N epochs) "
                f"or a probability in (0, 1] (fine branch on that share of batches); got {value!r}"
            )
        return cls(prob=p)

    @property
    def enabled(self) -> bool:
        return self.last_epochs > 0 or self.prob > 0

    def epoch_active(self, epoch: int, epochs: int) -> bool:
        """Last-N-epochs rule (``epoch`` counts from 0)."""
        return self.last_epochs > 0 and epoch >= epochs - self.last_epochs

    def batch_active(self, seed: int, epoch: int, batch: int) -> bool:
        """Per-batch coin flip, identical on every rank for the same (seed, epoch, batch)."""
        return self.prob > 0 and random.Random(f"{seed}/{epoch}/{batch}").random() < self.prob

    def describe(self) -> str:
        if self.last_epochs:
            return f"fine branch on in the last {self.last_epochs} epoch(s)"
        if self.prob:
            return f"fine branch on for a random {self.prob:.0%} of batches"
        return "coarse only (fine branch off in training)"


def env_schedule() -> FineTrainSchedule:
    """The schedule ``PST_FINE_TRAIN`` asks for; read only when a model with PST layers trains."""
    value = os.environ.get(ENV_FINE_TRAIN, "")
    try:
        return FineTrainSchedule.parse(value, source=ENV_FINE_TRAIN)
    except ValueError:
        raise env_error(
            ENV_FINE_TRAIN,
            value,
            "0 (coarse-only training), an integer N >= 1 (fine branch in the last N epochs) or a probability in "
            "(0, 1] (fine branch on that share of batches)",
        ) from None


def set_fine_in_training(model, on: bool) -> None:
    """Run (or stop running) the fine branch in train mode in every PST layer of ``model``."""
    for _, layer in pst_layers(model):
        layer.fine_in_training = on


def _keep_gate_in_graph(attn, inputs, output):
    """Forward hook: on coarse-only training steps, tie the fine-only parameters (the gate) into the
    graph with weight zero. Under a fine-aware schedule the set of used parameters would otherwise
    change from step to step, which DDP with ``static_graph=True`` (Ultralytics' choice with
    ``compile=True``) rejects. The output is unchanged; the gate gets a zero gradient."""
    if attn.training and not attn.fine_in_training:
        gate = attn.gate_conv1d
        return output + 0.0 * (gate.weight.sum() + gate.bias.sum())
    return output


def keep_gate_in_graph(model) -> list:
    """Attach ``_keep_gate_in_graph`` to every PSAttn of ``model``; returns the hook handles."""
    return [
        block.attn.register_forward_hook(_keep_gate_in_graph)
        for _, layer in pst_layers(model)
        for block in layer._blocks()
    ]
