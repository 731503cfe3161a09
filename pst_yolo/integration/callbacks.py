"""Ultralytics seam: what PST adds to training, validation, prediction and export runs.

Internals relied on (ultralytics 8.3.138 - 8.4.x), and why:

- ``callbacks.base.default_callbacks`` -- every trainer and exporter copies it when created, so the
  callbacks below reach runs started from Python, the ``yolo`` command and DDP workers alike:
  ``on_export_start`` logs the k and records it in the export metadata (``pst_topk``; k is fixed in
  the exported graph; this needs the exporter to have built ``exporter.metadata`` before the callback,
  true from 8.3.138), then hands the exporter to ``export_formats.prepare_export`` (per format: the
  default graph, the top-k/gather-free one, or a clear error; that module lists the exporter attributes
  it uses); the training events run the fine-aware training schedule. If an event disappears,
  ``register()`` reports it.
- ``AutoBackend.__init__`` and ``BaseValidator.__call__`` -- the places where val and predict get their
  model; each logs one line saying which k every PST layer uses (cosmetic if they change).
- ``torch_utils.get_flops`` -- model summaries extrapolate GFLOPs from tiny proxy images, where k exceeds
  the coarse tokens (a clamp warning, kept for real inputs) and the fine branch's cost, which grows with k
  and not with the image area, is scaled as if it did: the summaries of one model at k = 0 / 4 / 8 / 16
  read 7.6 / 8.3 / 7.7 / 13.6. With the fine branch on, the wrapper profiles the full-size input once
  instead (thop, as Ultralytics; cosmetic if it changes).
- trainer attributes ``model``, ``ema``, ``args.seed``, ``epoch``, ``epochs`` (through ``runtime``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from pst_yolo.integration.runtime import log, trainer_network, trainer_progress
from pst_yolo.nn.fine_train import FineTrainSchedule, env_schedule, keep_gate_in_graph, set_fine_in_training
from pst_yolo.nn.onnx_export import onnx_attention_mode
from pst_yolo.nn.topk import describe, pst_layers


# --------------------------------------------------------------------------------------------------
# Which k runs: one log line per val / predict / export, and the export metadata
# --------------------------------------------------------------------------------------------------
def log_topk(model: Any) -> list:
    """Log ``PST top-k: layer 13 k=8, ...`` for a model with PST layers; returns its (name, layer) pairs."""
    layers = pst_layers(model) if isinstance(model, nn.Module) else []
    if layers:
        log(describe(layers))
    return layers


def autobackend_init_logging_topk(original: Callable, self, *args, **kwargs):
    original(self, *args, **kwargs)
    log_topk(getattr(self, "model", None))


def validator_call_logging_topk(original: Callable, self, trainer=None, model=None, *args, **kwargs):
    if trainer is not None:  # validation inside training uses the EMA model directly, not AutoBackend
        ema = getattr(trainer, "ema", None)
        log_topk(ema.ema if ema is not None else getattr(trainer, "model", None))
    return original(self, trainer, model, *args, **kwargs)


def on_export_start(exporter) -> None:
    layers = log_topk(getattr(exporter, "model", None))
    if layers:
        onnx_attention_mode()  # a bad PST_ONNX_ATTENTION is reported now, not from inside the ONNX tracer
    if layers and isinstance(getattr(exporter, "metadata", None), dict):
        exporter.metadata["pst_topk"] = {name.removeprefix("model."): layer.k for name, layer in layers}
    if layers:
        from pst_yolo.integration.export_formats import prepare_export  # (loads the layer: see registry)

        prepare_export(exporter, layers)  # per format: default graph, top-k/gather-free graph, or a clear error


def get_flops_quietly(original: Callable, model, *args, **kwargs):
    """Ultralytics' GFLOPs for its model summaries, right for PST models with the fine branch on.

    get_flops extrapolates from tiny proxy images: there k exceeds the coarse tokens (no clamp warning
    then) and the fine branch's cost, linear in k and independent of the image area, would be scaled
    with the area. So with any PST layer at k > 0 the full-size input is profiled once, the same way.
    """
    from pst_yolo.nn.pst import quiet_topk_clamp  # (the layer imports Ultralytics: see registry)

    if not isinstance(model, nn.Module):
        return original(model, *args, **kwargs)
    with quiet_topk_clamp(model):
        if any(layer.k > 0 for _, layer in pst_layers(model)):
            full = _full_size_gflops(model, args[0] if args else kwargs.get("imgsz", 640))
            if full is not None:
                return full
        return original(model, *args, **kwargs)


def _full_size_gflops(model: nn.Module, imgsz: Any) -> float | None:
    """thop's count of one batch-1 forward at ``imgsz`` (Ultralytics' convention: 2 FLOPs per MAC), on a copy
    of the model so thop's bookkeeping never touches it; None if thop is missing or fails (Ultralytics' own
    estimate is used then)."""
    import copy

    import torch

    try:
        import thop
    except ImportError:
        return None
    try:
        h, w = (imgsz, imgsz) if not isinstance(imgsz, (list, tuple)) else imgsz
        p = next(model.parameters())
        im = torch.zeros((1, p.shape[1], int(h), int(w)), device=p.device, dtype=p.dtype)
        return thop.profile(copy.deepcopy(model), inputs=[im], verbose=False)[0] / 1e9 * 2
    except Exception:
        return None


# --------------------------------------------------------------------------------------------------
# Fine-aware training
# --------------------------------------------------------------------------------------------------
@dataclass
class _FineTrainState:
    """What the schedule needs to remember about one training run (kept beside the trainer, not on it)."""

    schedule: FineTrainSchedule
    fine_on: bool = False
    batch: int = 0
    hooks: list = field(default_factory=list)


_RUNS: weakref.WeakKeyDictionary[Any, _FineTrainState] = weakref.WeakKeyDictionary()
_PINNED: weakref.WeakKeyDictionary[Any, FineTrainSchedule] = weakref.WeakKeyDictionary()


def _state(trainer) -> _FineTrainState:
    state = _RUNS.get(trainer)
    if state is None:
        schedule = _PINNED.get(trainer)
        if schedule is None:  # PST_FINE_TRAIN is read only for a model with PST layers: never breaks a stock one
            net = trainer_network(trainer)
            schedule = env_schedule() if isinstance(net, nn.Module) and pst_layers(net) else FineTrainSchedule()
        state = _RUNS[trainer] = _FineTrainState(schedule)
    return state


def on_pretrain_routine_end(trainer) -> None:
    """With a fine-aware schedule, keep the used-parameter set fixed from step to step (DDP)."""
    state = _state(trainer)
    if state.schedule.enabled:
        log(f"PST fine-aware training: {state.schedule.describe()}")
        state.hooks = keep_gate_in_graph(trainer_network(trainer))


def on_train_epoch_start(trainer) -> None:
    state = _state(trainer)
    state.batch = 0
    if state.schedule.last_epochs:
        _, epoch, epochs = trainer_progress(trainer)
        on = state.schedule.epoch_active(epoch, epochs)
        if on != state.fine_on:
            log(f"PST fine-aware training: {'fine branch on' if on else 'coarse only'} from epoch {epoch + 1}")
        state.fine_on = on
        set_fine_in_training(trainer_network(trainer), on)


def on_train_batch_start(trainer) -> None:
    state = _state(trainer)
    if state.schedule.prob:
        seed, epoch, _ = trainer_progress(trainer)
        batch, state.batch = state.batch, state.batch + 1
        set_fine_in_training(trainer_network(trainer), state.schedule.batch_active(seed, epoch, batch))


def on_train_end(trainer) -> None:
    set_fine_in_training(trainer_network(trainer), False)  # the saved model trains coarse-only by default
    state = _RUNS.pop(trainer, None)
    for handle in state.hooks if state else []:
        handle.remove()


def fine_training(model: Any, schedule: Any) -> FineTrainSchedule:
    """Attach a fine-aware training schedule to an Ultralytics ``YOLO`` object before ``.train()``.

    ``schedule``: ``"N"`` (fine branch in the last N epochs), ``"P"`` in (0, 1] (that share of batches),
    ``"0"`` (coarse only), or a ``FineTrainSchedule``. It wins over ``PST_FINE_TRAIN`` for this model."""
    parsed = schedule if isinstance(schedule, FineTrainSchedule) else FineTrainSchedule.parse(schedule)

    def pin(trainer) -> None:
        _PINNED[trainer] = parsed

    model.add_callback("on_pretrain_routine_start", pin)
    return parsed


CALLBACK_EVENTS = {
    "on_export_start": on_export_start,
    "on_pretrain_routine_end": on_pretrain_routine_end,
    "on_train_epoch_start": on_train_epoch_start,
    "on_train_batch_start": on_train_batch_start,
    "on_train_end": on_train_end,
}


def add_default_callbacks(default_callbacks: dict) -> None:
    """Add the callbacks above to Ultralytics' ``default_callbacks`` (once)."""
    for event, fn in CALLBACK_EVENTS.items():
        if fn not in default_callbacks[event]:
            default_callbacks[event].append(fn)
