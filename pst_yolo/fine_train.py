"""Fine-aware training: run PST's fine branch during part of training so the gate and fine path learn.

The paper trains coarse-only and switches the fine branch on at inference, so the gate that blends
coarse and fine results is never trained. A schedule here turns the fine branch on in training for

- the last N epochs: ``fine_train=N`` (an integer >= 1), or
- a random share p of the batches: ``fine_train=P`` (a decimal in (0, 1]), decided per batch from
  a generator seeded by the training seed, the epoch and the batch number -- the same on every
  DDP rank, so all ranks run the same graph.

``fine_train=0`` (the default) is the paper's coarse-only training. On the command line it is a key
of ``pst-yolo train``; for ``yolo train`` set ``PST_FINE_TRAIN``; in Python call
``pst_yolo.fine_training(model, "0.5")`` before ``model.train(...)``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

ENV_FINE_TRAIN = "PST_FINE_TRAIN"


@dataclass(frozen=True)
class FineTrainSchedule:
    last_epochs: int = 0
    prob: float = 0.0

    @classmethod
    def parse(cls, value: Any, source: str = "fine_train") -> "FineTrainSchedule":
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
    return FineTrainSchedule.parse(os.environ.get(ENV_FINE_TRAIN, ""), source=ENV_FINE_TRAIN)


def _set_fine_in_training(trainer, on: bool) -> None:
    from pst_yolo.toggle import pst_layers

    for _, layer in pst_layers(_unwrap(trainer.model)):
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
    from pst_yolo.toggle import pst_layers

    return [
        block.attn.register_forward_hook(_keep_gate_in_graph)
        for _, layer in pst_layers(model)
        for block in layer._blocks()
    ]


def _unwrap(model):
    model = getattr(model, "module", model)  # DDP wraps the model
    return getattr(model, "_orig_mod", model)  # so does torch.compile


def _schedule_of(trainer) -> FineTrainSchedule:
    schedule = getattr(trainer, "_pst_fine_schedule", None)
    if schedule is None:
        schedule = env_schedule()
        trainer._pst_fine_schedule = schedule
    return schedule


def on_pretrain_routine_end(trainer) -> None:
    """With a fine-aware schedule, keep the used-parameter set fixed from step to step (DDP)."""
    schedule = _schedule_of(trainer)
    if schedule.enabled:
        from ultralytics.utils import LOGGER

        LOGGER.info(f"PST fine-aware training: {schedule.describe()}")
        trainer._pst_gate_hooks = keep_gate_in_graph(_unwrap(trainer.model))


def on_train_epoch_start(trainer) -> None:
    schedule = _schedule_of(trainer)
    trainer._pst_fine_batch = 0
    if schedule.last_epochs:
        on = schedule.epoch_active(trainer.epoch, trainer.epochs)
        if on != getattr(trainer, "_pst_fine_on", False):
            from ultralytics.utils import LOGGER

            LOGGER.info(f"PST fine-aware training: {'fine branch on' if on else 'coarse only'} from epoch {trainer.epoch + 1}")
        trainer._pst_fine_on = on
        _set_fine_in_training(trainer, on)


def on_train_batch_start(trainer) -> None:
    schedule = _schedule_of(trainer)
    if schedule.prob:
        batch = getattr(trainer, "_pst_fine_batch", 0)
        trainer._pst_fine_batch = batch + 1
        _set_fine_in_training(trainer, schedule.batch_active(int(trainer.args.seed), trainer.epoch, batch))


def on_train_end(trainer) -> None:
    _set_fine_in_training(trainer, False)  # the saved model trains coarse-only again by default
    for handle in getattr(trainer, "_pst_gate_hooks", []):
        handle.remove()


def fine_training(model: Any, schedule: Any) -> FineTrainSchedule:
    """Attach a fine-aware training schedule to an Ultralytics ``YOLO`` object before ``.train()``."""
    parsed = schedule if isinstance(schedule, FineTrainSchedule) else FineTrainSchedule.parse(schedule)

    def pin(trainer) -> None:  # this model's schedule wins over PST_FINE_TRAIN
        trainer._pst_fine_schedule = parsed

    model.add_callback("on_pretrain_routine_start", pin)
    return parsed
