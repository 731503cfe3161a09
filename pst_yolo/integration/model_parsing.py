"""Ultralytics seam: building models from YAMLs with PST rows, and finding the shipped YAMLs.

Internals relied on (ultralytics 8.3.138 - 8.4.x), and why:

- ``tasks.parse_model(d, ch, verbose)`` -- builds ``nn.Sequential`` from a model YAML. Its channel
  bookkeeping (width scaling, per-module branches) lives in local variables, so PST rows are handed to
  it as placeholder ``Conv`` rows, which receive exactly the stock width scaling, and each placeholder
  is then swapped for the real PST. Dicts without a PST row go straight to the original, so stock
  models build exactly as without the plugin. If Ultralytics renames it or changes its arguments,
  ``register()`` reports it (``compat.require``); if it changes how it scales a ``Conv`` row, PST
  layers would get other widths (the config tests compare parameter counts with stock).
- ``tasks.check_yaml`` -- ``yaml_model_load`` resolves a model YAML name with it (``YOLO("x.yaml")``
  and ``DetectionModel("x.yaml")`` both reach it through the ``tasks`` globals). The wrapper adds the
  YAMLs shipped in ``pst_yolo``'s ``cfg/`` folder; without it, bare names like ``yolo11n-pst.yaml``
  would not be found.
- ``tasks.LOGGER`` -- the model table printed by ``parse_model`` is replayed with the PST rows filled
  in, so users see the real layers (cosmetic if it changes).
- ``tasks._SafeLoad.activation`` (optional) -- how ``parse_model`` turns a YAML's ``activation:`` into
  a module, so PST's convolutions follow it like every other layer.
"""

from __future__ import annotations

import logging
import re
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable

from torch import nn

from pst_yolo.integration.import_hooks import flush
from pst_yolo.nn.pst import INITS, PST, new_layer_init
from pst_yolo.nn.topk import new_model_topk

# nn.pst imports Ultralytics, whose import of tasks runs register(), which imports this module: so the
# registry imports this module only inside register(), after Ultralytics has finished importing.

PST_MODULE_NAMES = frozenset({"PST", "pst_yolo.PST"})


# --------------------------------------------------------------------------------------------------
# Shipped configs
# --------------------------------------------------------------------------------------------------
def cfg_dir() -> Path:
    """Folder holding the shipped model YAMLs (inside the wheel, or the repo's ``cfg/``)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "cfg", package.parent / "cfg"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pst_yolo model configs not found next to {package}")


def shipped_configs() -> list[Path]:
    return sorted(cfg_dir().glob("*.yaml"))


def find_config(name: str | Path) -> Path | None:
    """Path of a shipped YAML for a bare name such as ``yolo11-pst.yaml``, else None."""
    name = Path(name)
    if name.parent != Path(".") or name.exists():
        return None  # an explicit path or a local file: the user's file wins
    path = cfg_dir() / name.name
    return path if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# parse_model and check_yaml
# --------------------------------------------------------------------------------------------------
class PSTConfigError(ValueError):
    """A PST row of a model YAML is malformed; the message names the layer and the fix."""


def _check_pst_row(i: int, f: Any, args: Any) -> tuple[int, int]:
    """Validate a PST row and return its absolute (x_from, upper_from)."""
    usage = "PST rows are [[x_from, upper_from], repeats, PST, [c2, mlp_ratio, e]] or [c2, mlp_ratio, e, init]"
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
    if not (isinstance(args, (list, tuple)) and args and isinstance(args[0], int) and len(args) <= 4):
        raise PSTConfigError(
            f"layer {i} (PST): args must be [c2, mlp_ratio, e] (or [c2, mlp_ratio, e, init]) with an integer c2; "
            f"got {args!r}"
        )
    if len(args) == 4 and args[3] not in INITS:
        raise PSTConfigError(f"layer {i} (PST): init (the 4th arg) must be one of {', '.join(INITS)}; got {args[3]!r}")
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

    safe = getattr(tasks, "_SafeLoad", None)
    try:
        return safe.activation(act)
    except Exception:  # parse_model accepts any expression here outside restricted loading (as stock does)
        if safe is not None and safe.restricted():
            raise  # under ULTRALYTICS_SAFE_LOAD=1 no YAML text is evaluated
        return eval(act, vars(tasks))


class _ReplayLog(logging.Filter):
    """Holds back the records parse_model logs so they can be replayed with PST rows filled in."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


_ROW = re.compile(r"^\s*(\d+)\s")


def parse_model_with_pst(original: Callable, d: dict, ch: int, verbose: bool = True):
    """``tasks.parse_model`` that also builds PST rows (dicts without one go to the original untouched)."""
    flush()  # patches waiting for a module that was mid-import at register() time (see registry)
    rows = list(d["backbone"]) + list(d["head"])
    pst_rows = {i: row for i, row in enumerate(rows) if isinstance(row[2], str) and row[2] in PST_MODULE_NAMES}
    if not pst_rows:
        return original(d, ch, verbose)

    from ultralytics.nn import tasks
    from ultralytics.nn.modules import Conv

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
    k = new_model_topk()  # PST_TOPK, read here because this model has PST rows; a bad value names the variable
    # how rows without a 4th arg start (PST_INIT, else identity): read here for the same reason
    row_init = {i: args[3] if len(args) == 4 else None for i, (_, _, _, args) in pst_rows.items()}
    default_init = new_layer_init() if None in row_init.values() else None
    try:
        for i, (f, n, _, args) in pst_rows.items():
            placeholder = layers[i]
            c1, c2 = placeholder.conv.in_channels, placeholder.conv.out_channels
            c_up = probes[i].conv.in_channels
            n_ = max(round(n * depth), 1) if n > 1 else n
            try:
                m = PST(c1, c_up, c2, n_, *args[1:3], k=k, init=row_init[i] or default_init)
            except ValueError as e:
                raise PSTConfigError(
                    f"layer {i} (PST): {e}. Fix: change c2 or e in this row so that int(c2 * width * e) "
                    f"is a multiple of 32, or use another scale"
                ) from e
            m.np = sum(p.numel() for p in m.parameters())
            m.i, m.f, m.type = i, list(f), "pst_yolo.PST"
            layers[i] = m
            pst_lines[i] = (
                f"{i:>3}{list(f)!s:>20}{n_:>3}{m.np:10.0f}  {m.type:<45}{[c1, c_up, c2, n_, *args[1:]]!s:<30}"
            )
    finally:
        Conv.default_act = default_act

    save = sorted(
        {
            j % i
            for i, layer in enumerate(layers)
            for j in ([layer.f] if isinstance(layer.f, int) else layer.f)
            if j != -1
        }
    )
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


def check_yaml_with_shipped(original: Callable, file, *args, **kwargs):
    """``tasks.check_yaml`` that also finds the YAMLs shipped with pst-yolo by bare name."""
    if isinstance(file, (str, Path)):
        shipped = find_config(file)
        if shipped is not None:
            return str(shipped)
    return original(file, *args, **kwargs)
