"""The one seam between pst_yolo and Ultralytics internals.

Everything here relies on names inside ``ultralytics.nn.tasks`` (checked against ultralytics
8.4.x). Nothing on disk is edited: ``register()`` rebinds module attributes in memory, once per
interpreter, and each patch is a wrapper that falls through to the original for stock models.

Internals used, and why:

- ``tasks.parse_model(d, ch, verbose)`` -- builds ``nn.Sequential`` from a model YAML. Its channel
  bookkeeping (width scaling, per-module branches) lives in local variables, so PST rows are
  handed to it as placeholder ``Conv`` rows, which receive exactly the stock width scaling, and
  each placeholder is then swapped for the real PST (see ``_parse_model_with_pst``). Dicts without
  a PST row go straight to the original, so stock models build exactly as without the plugin.
- ``tasks.check_yaml`` -- ``yaml_model_load`` resolves a model YAML name with it (both
  ``YOLO("x.yaml")`` and ``DetectionModel("x.yaml")`` reach it through the ``tasks`` globals).
  The wrapper adds the YAMLs shipped in ``pst_yolo``'s ``cfg/`` folder.
- ``tasks.BaseModel.load`` -- transfers only tensors whose shapes match and skips the rest
  silently; for PST layers a mismatch means weights from another scale, so the wrapper raises.
- ``tasks.LOGGER`` -- the model table printed by ``parse_model`` is replayed with the PST rows
  filled in, so users see the real layers.
- ``tasks.torch_safe_load`` -- every checkpoint load goes through it (``YOLO("best.pt")``,
  AutoBackend for val/predict, resume); ``PST_TOPK``, when set, overrides the saved k there.
- ``AutoBackend.__init__`` and ``BaseValidator.__call__`` -- the places where val and predict get
  their model; each logs one line saying which k every PST layer uses.
- ``callbacks.default_callbacks`` -- ``on_export_start`` logs the k and records it in the export
  metadata (``pst_topk``; k is fixed in the exported graph); the training callbacks run the
  fine-aware training schedule (``pst_yolo.fine_train``).
- ``torch_utils.get_flops`` -- model summaries probe the model with a tiny image where k exceeds the
  coarse tokens; the wrapper keeps the clamp warning for real inputs.
- ``tasks._SafeLoad`` (optional) -- under ``ULTRALYTICS_SAFE_LOAD=1`` only allow-listed classes
  may be unpickled; the PST classes are added to torch's safe globals.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pst_yolo.compat import SUPPORTED, UnsupportedUltralyticsError, require, warn_if_untested
from pst_yolo.policy import describe, env_topk, new_model_topk

# pst_yolo.pst (and pst_yolo.toggle, which imports it) are imported inside the functions below, not
# here: importing pst_yolo.pst imports Ultralytics, whose import of tasks can call register() while
# pst_yolo.pst is still half-initialised.

PST_MODULE_NAMES = frozenset({"PST", "pst_yolo.PST"})
_registered = False


# --------------------------------------------------------------------------------------------
# Shipped configs
# --------------------------------------------------------------------------------------------
def cfg_dir() -> Path:
    """Folder holding the shipped model YAMLs (inside the wheel, or the repo's ``cfg/``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "cfg", here.parent / "cfg"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pst_yolo model configs not found next to {here}")


def shipped_configs() -> list[Path]:
    return sorted(cfg_dir().glob("*.yaml"))


def find_config(name: str | Path) -> Path | None:
    """Path of a shipped YAML for a bare name such as ``yolo11-pst.yaml``, else None."""
    name = Path(name)
    if name.parent != Path(".") or name.exists():
        return None  # an explicit path or a local file: the user's file wins
    path = cfg_dir() / name.name
    return path if path.is_file() else None


# --------------------------------------------------------------------------------------------
# parse_model wrapper
# --------------------------------------------------------------------------------------------
class PSTConfigError(ValueError):
    """A PST row of a model YAML is malformed; the message names the layer and the fix."""


def _check_pst_row(i: int, f: Any, args: Any) -> tuple[int, int]:
    """Validate a PST row and return its absolute (x_from, upper_from)."""
    usage = "PST rows are [[x_from, upper_from], repeats, PST, [c2, mlp_ratio, e]]"
    if not (isinstance(f, (list, tuple)) and len(f) == 2 and all(isinstance(j, int) for j in f)):
        raise PSTConfigError(
            f"layer {i} (PST): 'from' must list two layers, the fine input and the half-resolution "
            f"upper input, e.g. [-1, 6]; got {f!r}. {usage}"
        )
    absolute = tuple(j + i if j < 0 else j for j in f)
    for j, a in zip(f, absolute):
        if a >= i or a < 0:
            raise PSTConfigError(
                f"layer {i} (PST): 'from' entry {j} points to layer {a}, which is not an earlier layer; "
                f"a layer can only read layers 0..{i - 1}. {usage}"
            )
    if not (isinstance(args, (list, tuple)) and args and isinstance(args[0], int) and len(args) <= 3):
        raise PSTConfigError(f"layer {i} (PST): args must be [c2, mlp_ratio, e] with an integer c2; got {args!r}")
    return absolute


def _depth_multiple(d: dict) -> float:
    scales, scale = d.get("scales"), d.get("scale")
    if scales:
        if scale and scale not in scales:
            name = Path(str(d.get("yaml_file", "model.yaml"))).name
            raise PSTConfigError(
                f"model scale '{scale}' (from {name}) is not one of this config's scales "
                f"{', '.join(scales)}; name the model with one of them, e.g. yolo11n-pst.yaml"
            )
        return scales[scale or next(iter(scales))][0]
    return d.get("depth_multiple", 1.0)


def _layer_activation(d: dict):
    """The model's ``activation:`` as parse_model would set it, or None for the default."""
    act = d.get("activation")
    if not act:
        return None
    from ultralytics.nn import tasks

    try:
        return tasks._SafeLoad.activation(act)
    except Exception:  # parse_model accepts any expression here outside restricted loading
        return eval(act, vars(tasks))  # noqa: S307 - same trust model as Ultralytics' own YAML loading


class _ReplayLog(logging.Filter):
    """Holds back the records parse_model logs so they can be replayed with PST rows filled in."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


_ROW = re.compile(r"^\s*(\d+)\s")


def _parse_model_with_pst(original: Callable, d: dict, ch: int, verbose: bool = True):
    flush_pending_patches()
    rows = list(d["backbone"]) + list(d["head"])
    pst_rows = {i: row for i, row in enumerate(rows) if isinstance(row[2], str) and row[2] in PST_MODULE_NAMES}
    if not pst_rows:
        return original(d, ch, verbose)

    from ultralytics.nn import tasks
    from ultralytics.nn.modules import Conv

    from pst_yolo.pst import PST

    depth = _depth_multiple(d)
    froms = {i: _check_pst_row(i, f, args) for i, (f, _, _, args) in pst_rows.items()}

    # Placeholder rows: a Conv from the fine input gets c1 and the width-scaled c2 exactly as stock
    # layers do; probe Convs appended after the last layer (so no index moves) read each upper input
    # to learn its channel count. Both are dropped below.
    shadow = deepcopy(d)
    n_backbone = len(d["backbone"])
    for i, (f, _, _, args) in pst_rows.items():
        section, j = ("backbone", i) if i < n_backbone else ("head", i - n_backbone)
        shadow[section][j] = [f[0], 1, "Conv", [args[0]]]
    shadow["head"] = list(shadow["head"]) + [[froms[i][1], 1, "Conv", [8]] for i in pst_rows]

    replay = _ReplayLog()
    tasks.LOGGER.addFilter(replay)
    try:
        seq, _ = original(shadow, ch, verbose)
    finally:
        tasks.LOGGER.removeFilter(replay)

    layers = list(seq)[: len(rows)]
    probes = dict(zip(pst_rows, list(seq)[len(rows) :]))
    act = _layer_activation(d)
    default_act = Conv.default_act
    if act is not None:
        Conv.default_act = act  # PST's Convs follow the YAML's activation like every other layer
    pst_lines = {}
    try:
        for i, (f, n, _, args) in pst_rows.items():
            placeholder = layers[i]
            c1, c2 = placeholder.conv.in_channels, placeholder.conv.out_channels
            c_up = probes[i].conv.in_channels
            n_ = max(round(n * depth), 1) if n > 1 else n
            try:
                m = PST(c1, c_up, c2, n_, *args[1:], k=new_model_topk())
            except ValueError as e:
                raise PSTConfigError(
                    f"layer {i} (PST): {e}. Fix: change c2 or e in this row so that int(c2 * width * e) "
                    f"is a multiple of 32, or use another scale"
                ) from e
            m.np = sum(p.numel() for p in m.parameters())
            m.i, m.f, m.type = i, list(f), "pst_yolo.PST"
            layers[i] = m
            pst_lines[i] = f"{i:>3}{list(f)!s:>20}{n_:>3}{m.np:10.0f}  {m.type:<45}{[c1, c_up, c2, n_, *args[1:]]!s:<30}"
    finally:
        Conv.default_act = default_act

    save = sorted({j % i for i, layer in enumerate(layers) for j in ([layer.f] if isinstance(layer.f, int) else layer.f) if j != -1})
    for record in replay.records:  # the model table, with the real PST rows and without the probes
        match = _ROW.match(record.getMessage())
        if match:
            i = int(match.group(1))
            if i >= len(rows):
                continue
            if i in pst_lines:
                record.msg, record.args = pst_lines[i], ()
        tasks.LOGGER.handle(record)
    return nn.Sequential(*layers), save


# --------------------------------------------------------------------------------------------
# Other wrappers
# --------------------------------------------------------------------------------------------
def _check_yaml_with_shipped(original: Callable, file, *args, **kwargs):
    if isinstance(file, (str, Path)):
        shipped = find_config(file)
        if shipped is not None:
            return str(shipped)
    return original(file, *args, **kwargs)


def _load_with_pst_check(original: Callable, self, weights, verbose: bool = True):
    """BaseModel.load, but a PST layer whose tensors do not fit is an error, not a silent skip."""
    from pst_yolo.pst import PST

    source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
    if isinstance(source, nn.Module):
        theirs = source.state_dict()
        ours = self.state_dict()
        their_layers = getattr(source, "model", None)
        for i, layer in enumerate(getattr(self, "model", [])):
            if not isinstance(layer, PST):
                continue
            if isinstance(their_layers, nn.Sequential) and i < len(their_layers) and not isinstance(their_layers[i], PST):
                continue  # no PST there (e.g. stock YOLO weights): the usual partial transfer skips this layer
            prefix = f"model.{i}."
            for key, value in ours.items():
                if key.startswith(prefix) and key in theirs and theirs[key].shape != value.shape:
                    raise ValueError(
                        f"layer {i} (PST): checkpoint tensor '{key}' has shape {tuple(theirs[key].shape)} but this "
                        f"model's has {tuple(value.shape)}. The weights come from another scale or width: build "
                        f"the model from the matching config (e.g. yolo11s-pst.yaml for yolo11s-pst weights)"
                    )
    return original(self, weights, verbose)


def _torch_safe_load_with_env_topk(original: Callable, *args, **kwargs):
    from pst_yolo.pst import PST, GateConv1d, PSAttn, PSAttnBlock
    from pst_yolo.toggle import pst_layers

    flush_pending_patches()
    with contextlib.suppress(AttributeError):  # torch < 2.4 has no allow-list (ULTRALYTICS_SAFE_LOAD=1)
        torch.serialization.add_safe_globals([PST, PSAttnBlock, PSAttn, GateConv1d])
    ckpt, file = original(*args, **kwargs)
    k = env_topk()
    if k is not None and isinstance(ckpt, dict):
        for key in ("model", "ema"):
            if isinstance(ckpt.get(key), nn.Module):
                for _, layer in pst_layers(ckpt[key]):
                    layer.k = k
    return ckpt, file


def flush_pending_patches() -> None:
    """Apply patches that waited for a module that was mid-import at register() time.

    Every val/predict/export needs a model first, built by parse_model or loaded by
    torch_safe_load, so flushing there patches the validator and AutoBackend before their use."""
    from pst_yolo._autoload import flush

    flush()


def _log_topk(model: Any) -> list:
    from ultralytics.utils import LOGGER

    from pst_yolo.toggle import pst_layers

    layers = pst_layers(model) if isinstance(model, nn.Module) else []
    if layers:
        LOGGER.info(describe(layers))
    return layers


def _autobackend_init_logging_topk(original: Callable, self, *args, **kwargs):
    original(self, *args, **kwargs)
    _log_topk(getattr(self, "model", None))


def _validator_call_logging_topk(original: Callable, self, trainer=None, model=None, *args, **kwargs):
    if trainer is not None:  # validation inside training uses the EMA model directly, not AutoBackend
        ema = getattr(trainer, "ema", None)
        _log_topk(ema.ema if ema is not None else getattr(trainer, "model", None))
    return original(self, trainer, model, *args, **kwargs)


def _on_export_start(exporter) -> None:
    layers = _log_topk(getattr(exporter, "model", None))
    if layers and isinstance(getattr(exporter, "metadata", None), dict):
        exporter.metadata["pst_topk"] = {name.removeprefix("model."): layer.k for name, layer in layers}


def _get_flops_quietly(original: Callable, model, *args, **kwargs):
    """get_flops probes with a tiny image where k exceeds the coarse tokens: no clamp warning then."""
    from pst_yolo.pst import quiet_topk_clamp

    if not isinstance(model, nn.Module):
        return original(model, *args, **kwargs)
    with quiet_topk_clamp(model):
        return original(model, *args, **kwargs)


CALLBACK_EVENTS = ("on_export_start", "on_pretrain_routine_end", "on_train_epoch_start", "on_train_batch_start",
                   "on_train_end")


def _add_default_callbacks(module) -> None:
    """Callbacks every Ultralytics trainer/exporter gets (they copy ``default_callbacks`` on creation)."""
    from pst_yolo import fine_train

    wanted = {
        "on_export_start": _on_export_start,
        "on_pretrain_routine_end": fine_train.on_pretrain_routine_end,
        "on_train_epoch_start": fine_train.on_train_epoch_start,
        "on_train_batch_start": fine_train.on_train_batch_start,
        "on_train_end": fine_train.on_train_end,
    }
    for event, fn in wanted.items():
        if fn not in module.default_callbacks[event]:
            module.default_callbacks[event].append(fn)


def _wrap(owner: Any, name: str, wrapper: Callable, method: bool = False) -> None:
    original = getattr(owner, name)
    if getattr(original, "__pst_yolo_original__", None) is not None:
        return  # already wrapped

    if method:

        def patched(self, *args, **kwargs):
            return wrapper(original, self, *args, **kwargs)

    else:

        def patched(*args, **kwargs):
            return wrapper(original, *args, **kwargs)

    patched.__name__ = getattr(original, "__name__", name)
    patched.__doc__ = getattr(original, "__doc__", None)
    patched.__wrapped__ = original
    patched.__pst_yolo_original__ = original
    setattr(owner, name, patched)


def _patch_when_imported(module: str, patch: Callable) -> None:
    """Run ``patch(module)`` once the module has been imported. An internal missing there is reported as
    one warning rather than raised: that import belongs to the user's (maybe stock-only) program."""
    from pst_yolo._autoload import when_imported
    from pst_yolo.compat import UnsupportedUltralyticsError

    def guarded(mod) -> None:
        try:
            patch(mod)
        except UnsupportedUltralyticsError as e:
            warnings.warn(f"{e}. pst-yolo's hook there is off in this process", stacklevel=2)

    when_imported(module, guarded)


def _patch_default_callbacks(module) -> None:
    callbacks = require(module, "default_callbacks", "ultralytics.utils.callbacks.base.default_callbacks")
    missing = [e for e in CALLBACK_EVENTS if e not in callbacks]
    if missing:
        import ultralytics

        raise UnsupportedUltralyticsError(
            f"pst-yolo adds to the callback events {', '.join(missing)}, which ultralytics "
            f"{ultralytics.__version__} no longer has. Supported: {SUPPORTED}"
        )
    _add_default_callbacks(module)


def register() -> None:
    """Make Ultralytics understand PST rows and the shipped configs. Idempotent; in-memory only.

    Warns once if the installed Ultralytics/torch are outside the tested range (``pst_yolo.compat``);
    raises ``UnsupportedUltralyticsError``, naming the internal, if one that pst-yolo wraps is missing
    or has another signature -- before anything is patched.
    """
    global _registered
    if _registered:
        return
    import ultralytics
    from ultralytics.nn import tasks

    warn_if_untested(ultralytics.__version__, torch.__version__)
    eager = [  # (owner, name, dotted name, leading parameters, wrapper, is a method)
        (tasks, "parse_model", "ultralytics.nn.tasks.parse_model", ("d", "ch", "verbose"), _parse_model_with_pst, False),
        (tasks, "check_yaml", "ultralytics.nn.tasks.check_yaml", ("file",), _check_yaml_with_shipped, False),
        (getattr(tasks, "BaseModel", None), "load", "ultralytics.nn.tasks.BaseModel.load", ("self", "weights"),
         _load_with_pst_check, True),
        (tasks, "torch_safe_load", "ultralytics.nn.tasks.torch_safe_load", ("weight",), _torch_safe_load_with_env_topk,
         False),
    ]
    require(tasks, "BaseModel", "ultralytics.nn.tasks.BaseModel")
    require(tasks, "LOGGER", "ultralytics.nn.tasks.LOGGER")
    for owner, name, where, params, _, _ in eager:  # check all before patching any
        require(owner, name, where, params)
    for owner, name, _, _, wrapper, method in eager:
        _wrap(owner, name, wrapper, method=method)
    # These modules may be mid-import right now (register() can run from inside Ultralytics' own
    # import chain), so they are checked and patched once they have finished executing.
    _patch_when_imported("ultralytics.nn.autobackend", lambda mod: _wrap(
        require(mod, "AutoBackend", "ultralytics.nn.autobackend.AutoBackend"), "__init__",
        _autobackend_init_logging_topk, method=True))
    _patch_when_imported("ultralytics.engine.validator", lambda mod: _wrap(
        require(mod, "BaseValidator", "ultralytics.engine.validator.BaseValidator"), "__call__",
        _validator_call_logging_topk, method=True))
    _patch_when_imported("ultralytics.utils.callbacks.base", _patch_default_callbacks)
    _patch_when_imported("ultralytics.utils.torch_utils", lambda mod: (
        require(mod, "get_flops", "ultralytics.utils.torch_utils.get_flops", ("model", "imgsz")),
        _wrap(mod, "get_flops", _get_flops_quietly)))
    _registered = True


def is_registered() -> bool:
    return _registered
