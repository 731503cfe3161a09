"""Checkpoints written by the PST authors' fork of Ultralytics: load them today, convert them.

The authors (repository inlmouse/P2HCT, a fork of Ultralytics 8.3.105) release ``.pt`` files that
pickle their fork's classes -- ``ultralytics.nn.modules.block.PST``, ``PSAttnBlock``, ``PSAttn`` and
their copies of ``DetectionModel``, ``Conv``, ... -- so today's Ultralytics fails to unpickle them
(``AttributeError: Can't get attribute 'PST' on <module 'ultralytics.nn.modules.block'>``).

This module never unpickles an old module object into a today's class. It:

1. unpickles with a restricted unpickler: every ``ultralytics.*`` and ``torch.nn.modules.*`` class
   becomes an inert stand-in that only keeps its ``__dict__`` (no code of those classes runs); torch
   tensors, containers and a few plain value types load as usual; anything else is refused;
2. reads the stand-in model's own ``yaml`` dict and rebuilds the model from it with today's
   ``parse_model`` (wrapped by ``pst_yolo.integration.model_parsing``, so PST rows build pst-yolo's layer,
   whose parameter names are the authors');
3. loads the stand-ins' tensors with ``strict=True`` after a per-layer comparison, so a mismatch is
   an error naming the layer; keeps the stored dtype (fp16 stays fp16, as Ultralytics would) and
   the metadata (names, train_args, date, version, ...).

Top-k: the authors' layers store ``topk`` = 0, their *training* setting (their recipe trains coarse
only and switches the fine branch on by hand before validation, with k = 8 as the paper's best
trade-off). So a loaded authors' checkpoint gets ``AUTHORS_TOPK`` (8), unless ``PST_TOPK`` is set;
``pst_yolo.set_topk`` after loading wins as usual. The k in force is logged in the ``PST top-k:`` line.

Ultralytics internals relied on (checked against 8.4.x), and why:

- ``ultralytics.nn.tasks.torch_safe_load`` -- every checkpoint load goes through it;
  ``checkpoints.torch_safe_load_with_env_topk`` wraps it and calls ``load_after_failure`` when the stock
  load fails. If it stopped going through there, the authors' files would fail with Ultralytics' error.
- ``ultralytics.nn.tasks.parse_model`` (through ``register()``) -- rebuilds the model from their yaml.
- ``ultralytics.nn.tasks.{Detection,Classification,Segmentation,Pose,OBB}Model`` -- rebuilt with
  ``(cfg=yaml dict, ch, nc, verbose)``, the constructor signature Ultralytics itself uses.
- The checkpoint dict layout (``model``/``ema``/``train_args``/``date``/``version``/...) and the model
  attributes ``yaml``, ``names``, ``args``, ``stride``, ``task`` that ``load_checkpoint`` reads.
- ``ultralytics.nn.tasks.guess_model_task`` -- the task recorded for files without ``train_args``
  (Ultralytics < 8.4 reads ``YOLO(...).task`` from there only).
- ``ultralytics.utils.SETTINGS['weights_dir']`` -- where a bare checkpoint name was looked up.
- The pickled layout of ``torch.nn.Module`` (``_parameters``, ``_buffers``, ``_modules``,
  ``_non_persistent_buffers_set``) -- the stand-ins' tensors are read from it. Stable across torch 1.x/2.x.
"""

from __future__ import annotations

import copy
import datetime as _dt
import pathlib
import pickle
import re
import types
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from pst_yolo.integration.runtime import quiet_ultralytics
from pst_yolo.nn.topk import DEFAULT_TOPK, describe, env_topk, pst_layers

AUTHORS_TOPK = DEFAULT_TOPK  # k for the authors' checkpoints (their saved topk is a training setting)
FORK_PST_CLASSES = frozenset(f"ultralytics.nn.modules.block.{n}" for n in ("PST", "PSAttnBlock", "PSAttn"))

# The authors' config names (scale letter removed) and the pst-yolo config meant to build the same network
# (``verify_layout`` checks it). Their "yolo11-pst" is a YOLO12 backbone (A2C2f area attention): pst-yolo calls it
# yolo12-pst. Their "yolo11-cls-pst" equals pst-yolo's only at scale m: at n and s pst-yolo's is narrower (PST and
# the layer-10 conv at 512 channels before width scaling, theirs at 1024). Either way their checkpoints load,
# rebuilt from their own yaml.
AUTHORS_LAYOUTS = {
    "yolo11-pst": "yolo12{scale}-pst.yaml",
    "yolo11-cls-pst": "yolo11{scale}-cls-pst.yaml",
    "r18-pst": "resnet18-pst.yaml",
    "r50-pst": "resnet50-pst.yaml",
    "r101-pst": "resnet101-pst.yaml",
    "r18-cls-pst": "resnet18-cls-pst.yaml",
    "r50-cls-pst": "resnet50-cls-pst.yaml",
    "r101-cls-pst": "resnet101-cls-pst.yaml",
}
# Scales at which the config above is known (checked with the fork's code) NOT to build the same network.
WIDER_THAN_OURS = {"yolo11-cls-pst": "ns"}
_TASK_MODELS = ("DetectionModel", "ClassificationModel", "SegmentationModel", "PoseModel", "OBBModel")
_METADATA_ATTRS = ("names", "args", "stride", "task", "pt_path")  # model attributes Ultralytics reads


class AuthorsCheckpointError(ValueError):
    """The file is not a checkpoint of the authors' fork, or it does not rebuild; the message says why."""


# --------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------
class StandIn:
    """An unpickled object of a class we do not run (the fork's modules, torch's nn modules).

    Only its state is kept: ``__dict__`` for modules (``_parameters``, ``_buffers``, ``_modules``, plain
    attributes), ``_args`` for objects pickled as a constructor call. ``fork_name`` is the pickled
    ``module.qualname``."""

    fork_name = "?"

    def __init__(self, *args: Any) -> None:
        self._args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = state[0]  # (dict, slots) form
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.fork_name}>"


_STAND_INS: dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (StandIn,), {"fork_name": key, "__module__": __name__})
    return _STAND_INS[key]


class ForeignGlobalError(pickle.UnpicklingError):
    """The pickle names a global that checkpoints of the authors' fork never contain."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"'{name}' is not a type an Ultralytics checkpoint of the authors' fork contains; refusing to "
            "unpickle it (pst-yolo reads those checkpoints without running pickled code)"
        )


_PLAIN_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("__builtin__", "slice"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch.serialization", "_get_layout"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
}
_PATH_CLASSES = {"PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path"}


class _ForkUnpickler(pickle.Unpickler):
    """Unpickler for the fork's checkpoints: stand-ins for modules, real objects only for plain data."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "ultralytics" or module.startswith(("ultralytics.", "torch.nn.modules.")):
            return _stand_in(module, name)
        if module == "torch._utils" and name.startswith("_rebuild_"):
            return super().find_class(module, name)  # tensors and parameters
        if module == "torch" and isinstance(
            getattr(torch, name, None), (torch.dtype, torch.layout, torch.memory_format)
        ):
            return getattr(torch, name)
        if module == "pathlib" and name in _PATH_CLASSES:
            return pathlib.PurePath if name.startswith("Pure") else pathlib.Path  # cross-platform, as Ultralytics
        if (module, name) in _PLAIN_GLOBALS or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise ForeignGlobalError(f"{module}.{name}")


_PICKLE_MODULE = types.ModuleType("pst_yolo_fork_pickle")
_PICKLE_MODULE.Unpickler = _ForkUnpickler
_PICKLE_MODULE.load = lambda f, **kw: _ForkUnpickler(f, **kw).load()
_PICKLE_MODULE.UnpicklingError = pickle.UnpicklingError


def check_checkpoint_file(path: Path) -> None:
    """Refuse, before unpickling anything, a file that cannot be a PyTorch checkpoint: empty, text, random bytes
    or a truncated zip. ``torch.save`` writes a zip archive holding ``<name>/data.pkl`` (older PyTorch: a pickle,
    whose first byte is the PROTO opcode 0x80)."""
    size = path.stat().st_size
    if size == 0:
        raise AuthorsCheckpointError(f"{path} is empty (0 bytes), not a checkpoint; download it again")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise AuthorsCheckpointError(
                f"{path} is a damaged or truncated zip archive ({e}), not a whole checkpoint; download it again"
            ) from None
        if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            raise AuthorsCheckpointError(f"{path} is a zip archive but not a PyTorch checkpoint (no data.pkl inside)")
        return
    if not head.startswith(b"\x80"):
        kind = "a text file" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "not a PyTorch file"
        raise AuthorsCheckpointError(
            f"{path} is {kind} (it starts with {head!r}), not a checkpoint written by torch.save; give the .pt file"
        )


def read_fork_checkpoint(file: str | Path) -> Any:
    """The checkpoint with stand-ins in place of every module object (see ``StandIn``)."""
    return torch.load(file, map_location="cpu", pickle_module=_PICKLE_MODULE, weights_only=False)


def _iter_stand_ins(obj: Any, seen: set[int] | None = None) -> Iterable[StandIn]:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, StandIn):
        yield obj
        obj = obj.__dict__
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _iter_stand_ins(v, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _iter_stand_ins(v, seen)


def is_fork_checkpoint(ckpt: Any) -> bool:
    """True when the unpickled checkpoint holds the fork's PST classes."""
    return any(s.fork_name in FORK_PST_CLASSES for s in _iter_stand_ins(ckpt))


def _stand_in_state_dict(module: StandIn, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """What ``nn.Module.state_dict()`` of the pickled module would return, read from its ``__dict__``."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    d = module.__dict__
    skip = d.get("_non_persistent_buffers_set") or set()
    for name, p in (d.get("_parameters") or {}).items():
        if p is not None:
            out[prefix + name] = p.detach()
    for name, b in (d.get("_buffers") or {}).items():
        if b is not None and name not in skip:
            out[prefix + name] = b.detach()
    for name, child in (d.get("_modules") or {}).items():
        if isinstance(child, StandIn):
            out.update(_stand_in_state_dict(child, f"{prefix}{name}."))
    return out


def _is_plain(value: Any) -> bool:
    """Data that survives the trip into today's checkpoint format unchanged (no stand-ins inside)."""
    if value is None or isinstance(
        value,
        (
            bool,
            int,
            float,
            complex,
            str,
            bytes,
            torch.Tensor,
            pathlib.PurePath,
            _dt.date,
            _dt.timedelta,
            torch.dtype,
            torch.device,
        ),
    ):
        return True
    if type(value).__module__.startswith("numpy"):
        return True
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_plain(v) for v in value)
    return False


# --------------------------------------------------------------------------------------------
# Rebuilding
# --------------------------------------------------------------------------------------------
def _layer_of(key: str) -> str:
    """``model.11.attnlayer_0.attn.q.conv.weight`` -> ``11``."""
    parts = key.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "model" else parts[0]


def _check_tensors(theirs: dict, ours: dict, stand_in_layers: dict, rebuilt: nn.Module) -> None:
    """Raise AuthorsCheckpointError naming every layer whose tensors differ in names or shapes."""
    problems: dict[str, list[str]] = {}
    for key in theirs.keys() - ours.keys():
        problems.setdefault(_layer_of(key), []).append(f"'{key}' is in the checkpoint but not in the rebuilt model")
    for key in ours.keys() - theirs.keys():
        problems.setdefault(_layer_of(key), []).append(f"'{key}' is in the rebuilt model but not in the checkpoint")
    for key in theirs.keys() & ours.keys():
        if theirs[key].shape != ours[key].shape:
            problems.setdefault(_layer_of(key), []).append(
                f"'{key}' has shape {tuple(theirs[key].shape)} in the checkpoint, {tuple(ours[key].shape)} rebuilt"
            )
    if not problems:
        return
    layers = list(getattr(rebuilt, "model", []))
    lines = []
    for layer in sorted(problems, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
        theirs_type = getattr(stand_in_layers.get(layer), "fork_name", "?").rsplit(".", 1)[-1]
        ours_type = type(layers[int(layer)]).__name__ if layer.isdigit() and int(layer) < len(layers) else "?"
        details = "; ".join(sorted(problems[layer])[:4]) + (" ..." if len(problems[layer]) > 4 else "")
        lines.append(f"  layer {layer} (checkpoint: {theirs_type}, rebuilt: {ours_type}): {details}")
    raise AuthorsCheckpointError(
        "the checkpoint's weights do not fit the model its own yaml builds with today's Ultralytics:\n"
        + "\n".join(lines)
        + "\nNothing was loaded. If a layer's channel count equals nc, the fork (Ultralytics 8.3.105) left it"
        " unscaled where Ultralytics 8.4 scales it (load it with ultralytics<8.4); otherwise please report the"
        " file's yaml (ckpt['model'].yaml)."
    )


def rebuild_model(stand_in: StandIn) -> nn.Module:
    """Today's model with the stand-in's weights: built from its own ``yaml``, loaded with strict=True.

    The dtype of the stored tensors is kept (fp16 checkpoints give an fp16 model, like Ultralytics'
    own loading before ``load_checkpoint`` calls ``.float()``); train/eval mode too."""
    from ultralytics.nn import tasks

    from pst_yolo.integration.registry import register

    register()
    kind = stand_in.fork_name.rsplit(".", 1)[-1]
    if kind not in _TASK_MODELS:
        raise AuthorsCheckpointError(
            f"the checkpoint's model is a {stand_in.fork_name}; expected one of {', '.join(_TASK_MODELS)}"
        )
    cfg = stand_in.__dict__.get("yaml")
    if not isinstance(cfg, dict) or not {"backbone", "head"} <= cfg.keys():
        raise AuthorsCheckpointError(
            "the checkpoint's model has no 'yaml' dict with backbone and head, so it cannot be rebuilt"
        )
    cfg = copy.deepcopy(cfg)
    try:
        with quiet_ultralytics():  # (ClassificationModel prints its summary even with verbose=False)
            model = getattr(tasks, kind)(cfg=cfg, ch=cfg.get("ch", 3), nc=cfg.get("nc"), verbose=False)
    except Exception as e:  # e.g. a module today's Ultralytics no longer has
        raise AuthorsCheckpointError(
            f"the checkpoint's own yaml ({Path(str(cfg.get('yaml_file', '?'))).name}) does not build with today's "
            f"Ultralytics: {type(e).__name__}: {e}"
        ) from e

    theirs = _stand_in_state_dict(stand_in)
    seq = stand_in.__dict__.get("_modules", {}).get("model")
    stand_in_layers = dict(seq.__dict__.get("_modules", {})) if isinstance(seq, StandIn) else {}
    _check_tensors(theirs, model.state_dict(), stand_in_layers, model)
    float_dtypes = {t.dtype for t in theirs.values() if t.is_floating_point()}
    if len(float_dtypes) == 1:
        model.to(float_dtypes.pop())  # e.g. fp16, as stored; mixed dtypes load into fp32 (lossless)
    model.load_state_dict(theirs, strict=True)
    model.train(bool(stand_in.__dict__.get("training", False)))

    for attr in _METADATA_ATTRS:
        value = stand_in.__dict__.get(attr)
        if value is not None and _is_plain(value):
            setattr(model, attr, value)
    return model


def saved_topk(stand_in: StandIn) -> list[int]:
    """The ``topk`` values the fork's PSAttn modules were saved with (usually [0])."""
    return sorted(
        {
            s.__dict__.get("topk")
            for s in _iter_stand_ins(stand_in)
            if s.fork_name == "ultralytics.nn.modules.block.PSAttn" and isinstance(s.__dict__.get("topk"), int)
        }
    )


def equivalent_config(cfg: dict) -> str | None:
    """pst-yolo's name for the authors' config in ``cfg['yaml_file']`` (``yolo11n-pst.yaml`` -> ``yolo12n-pst.yaml``),
    by name only; ``verify_layout`` checks that it builds the same network."""
    pattern = AUTHORS_LAYOUTS.get(_their_config(cfg))
    if pattern is None:
        return None
    return pattern.format(scale=cfg.get("scale") or "")


def _their_config(cfg: dict) -> str:
    """The authors' config name without the scale letter (``yolo11n-cls-pst.yaml`` -> ``yolo11-cls-pst``)."""
    return re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(str(cfg.get("yaml_file", ""))).stem)


def _layout_note(cfg: dict) -> str:
    """`` = pst-yolo's yolo12n-pst.yaml`` for the log line; ``, wider than ...`` where the namesake differs."""
    ours = equivalent_config(cfg)
    if ours is None:
        return ""
    if (cfg.get("scale") or "?") in WIDER_THAN_OURS.get(_their_config(cfg), ""):
        return f", wider than pst-yolo's {ours}"
    return f" = pst-yolo's {ours}"


def _absolute_from(f: Any, i: int) -> Any:
    """A layer's ``from`` with relative indices made absolute ([6, -1] at layer 8 -> [6, 7])."""
    if isinstance(f, int):
        return f + i if f < 0 else f
    return [j + i if j < 0 else j for j in f]


def _layer_signature(model: nn.Module) -> list[tuple]:
    """Per layer: type, absolute inputs, and the names and shapes of its tensors."""
    sd = model.state_dict()
    return [
        (
            getattr(m, "type", type(m).__name__),
            _absolute_from(getattr(m, "f", -1), i),
            sorted((k, tuple(v.shape)) for k, v in sd.items() if _layer_of(k) == str(i)),
        )
        for i, m in enumerate(getattr(model, "model", []))
    ]


def verify_layout(model: nn.Module) -> str | None:
    """The shipped pst-yolo config that builds exactly ``model``'s network (same layers, inputs, tensor names and
    shapes), or None when there is none."""

    from pst_yolo.integration.model_parsing import find_config

    name = equivalent_config(getattr(model, "yaml", {}) or {})
    if name is None or find_config(re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", name)) is None:
        return None  # (Ultralytics finds yolo12n-pst.yaml as yolo12-pst.yaml, scale n)
    with quiet_ultralytics():
        ours = type(model)(cfg=name, ch=model.yaml.get("ch", 3), nc=model.yaml.get("nc"), verbose=False)
    return name if _layer_signature(ours) == _layer_signature(model) else None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _apply_topk(models: list[nn.Module], k: int) -> None:
    for m in models:
        for _, layer in pst_layers(m):
            layer.k = k


def load_fork_checkpoint(file: str | Path, topk: int | None = None, log: bool = True, _read: Any = None) -> dict:
    """A checkpoint of the authors' fork, as today's checkpoint dict (``model``/``ema`` rebuilt).

    ``topk``: k for every PST layer; default ``PST_TOPK`` if set, else ``AUTHORS_TOPK``.
    Raises AuthorsCheckpointError when the file is not such a checkpoint or does not rebuild.
    """
    from ultralytics import __version__ as today
    from ultralytics.utils import LOGGER

    ckpt = read_fork_checkpoint(file) if _read is None else _read
    if not isinstance(ckpt, dict) or not is_fork_checkpoint(ckpt):
        raise AuthorsCheckpointError(
            f"{file} is not a checkpoint of the PST authors' fork (no ultralytics.nn.modules.block.PST inside)"
        )
    out: dict[str, Any] = {}
    models, dropped, ks = [], [], []
    for key, value in ckpt.items():
        if isinstance(value, StandIn) and value.fork_name.rsplit(".", 1)[-1] in _TASK_MODELS:
            ks += saved_topk(value)
            out[key] = rebuild_model(value)
            models.append(out[key])
        elif _is_plain(value):
            out[key] = value
        else:
            dropped.append(key)  # e.g. objects of classes that no longer exist; Ultralytics reads none of them
    if not models:
        raise AuthorsCheckpointError(f"{file} holds no model (keys: {', '.join(map(str, ckpt))})")
    if not isinstance(out.get("train_args"), dict):
        # Files written by the fork's YOLO.save() (not its trainer) have no train_args, and Ultralytics < 8.4 takes
        # YOLO(...).task from them only (else 'detect'): record the task, nothing else.
        from ultralytics.nn.tasks import guess_model_task

        out["train_args"] = {"task": guess_model_task(models[0])}
    source = "topk argument" if topk is not None else "PST_TOPK" if env_topk() is not None else "AUTHORS_TOPK"
    k = topk if topk is not None else env_topk()
    k = AUTHORS_TOPK if k is None else k
    _apply_topk(models, k)
    if log:
        model = out.get("ema") if isinstance(out.get("ema"), nn.Module) else out["model"]
        cfg = model.yaml
        n = len(model.state_dict())
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        LOGGER.info(
            f"pst-yolo: {Path(file).name} was written by the PST authors' fork (Ultralytics {ckpt.get('version', '?')}, "
            f"config {Path(str(cfg.get('yaml_file', '?'))).name}"
            + _layout_note(cfg)
            + f"); rebuilt with Ultralytics {today}, {n} tensors loaded (strict), {dtype}. "
            f"Their saved topk {sorted(set(ks)) or '?'} is a training setting; inference k={k} ({source} "
            f"{'wins' if source != 'AUTHORS_TOPK' else '= pst-yolo default for their weights'}; set PST_TOPK or "
            f"pst_yolo.set_topk to change it)" + (f"; dropped non-data entries {dropped}" if dropped else "")
        )
        LOGGER.info(describe(pst_layers(model)))
    return out


def _resolve_local(weight: Any) -> Path | None:
    """The local file a torch_safe_load(weight) call read, without downloading anything."""
    if not isinstance(weight, (str, Path)):
        return None
    path = Path(weight)
    if path.is_file():
        return path
    from ultralytics.utils import SETTINGS

    cached = Path(SETTINGS.get("weights_dir", ".")) / path.name
    return cached if cached.is_file() else None


def load_after_failure(error: BaseException, weight: Any = None, *args: Any, **kwargs: Any) -> tuple[dict, str]:
    """Called when Ultralytics' own torch_safe_load(weight, ...) raised ``error``: load the file as an authors'
    checkpoint if it is one, else re-raise ``error`` unchanged."""
    weight = kwargs.get("weight", weight)
    file = _resolve_local(weight)
    if file is None:
        raise error
    try:
        ckpt = read_fork_checkpoint(file)
    except Exception:
        ckpt = None  # not readable as the fork's checkpoint either: the original error is the one to show
    if not (isinstance(ckpt, dict) and is_fork_checkpoint(ckpt)):
        raise error
    return load_fork_checkpoint(file, _read=ckpt), str(file)


# --------------------------------------------------------------------------------------------
# Converting
# --------------------------------------------------------------------------------------------
@dataclass
class ConvertReport:
    """What ``convert`` wrote."""

    source: Path
    out: Path
    task: str
    nc: int
    params: int
    dtype: str
    their_config: str
    their_version: str
    layout: str | None
    topk: int
    pst_line: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        layout = (
            f"pst-yolo's {self.layout}"
            if self.layout
            else "no shipped pst-yolo config (the network is kept as in their yaml)"
        )
        if self.layout and self.their_config.startswith("yolo11") and self.layout.startswith("yolo12"):
            layout += " (the authors call this YOLO12-backbone layout 'yolo11-pst' / YOLOv11-PST)"
        lines = [
            f"converted {self.source} -> {self.out}",
            f"  source:  the PST authors' fork (Ultralytics {self.their_version}), their config {self.their_config}",
            f"  layout:  {layout}",
            f"  model:   {self.task}, {self.nc} classes, {self.params / 1e6:.2f} M parameters, {self.dtype}",
            f"  {self.pst_line}",
            f"  written in today's format: YOLO('{self.out}') loads it with stock Ultralytics + pst-yolo",
            *[f"  note: {n}" for n in self.notes],
        ]
        return "\n".join(lines)


def convert(source: str | Path, out: str | Path, overwrite: bool = False, topk: int | None = None) -> ConvertReport:
    """Write an authors' checkpoint as a today's Ultralytics + pst-yolo checkpoint (same weights and dtype).

    ``topk``: the k saved with it (default ``PST_TOPK`` if set, else ``AUTHORS_TOPK``). The layout is recorded in
    ``ckpt['pst_yolo']`` and, when a shipped config builds the same network, as the model's ``yaml_file``.
    Refuses to replace an existing ``out`` unless ``overwrite`` is true.
    """
    from ultralytics import __version__ as today
    from ultralytics.nn.tasks import guess_model_task

    from pst_yolo import __version__ as ours_version
    from pst_yolo.data.writer import check_sources, resolve_target, save_torch

    source, out = Path(source), Path(out)
    if source.is_dir():
        raise ValueError(f"source={source} is a folder; give the authors' .pt checkpoint file")
    if not source.is_file():
        raise FileNotFoundError(f"source checkpoint {source} does not exist")
    if out.is_dir():
        raise ValueError(f"out={out} is a folder; give the path of the .pt file to write")
    if out.suffix != ".pt":
        raise ValueError(f"out must be a .pt file (Ultralytics loads checkpoints by that suffix), got {out}")
    check_sources(resolve_target(out), [source])  # (out= the source itself would replace what is read)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=true to replace it")
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 0):
        raise ValueError(f"topk must be a non-negative integer (0 = coarse only), got {topk!r}")
    check_checkpoint_file(source)
    not_theirs = (
        f"{source} is not a checkpoint of the PST authors' fork ({{}}); checkpoints written by pst-yolo "
        "or stock Ultralytics need no conversion: load them with YOLO(path)"
    )
    try:
        their = read_fork_checkpoint(source)
    except ForeignGlobalError as e:
        raise AuthorsCheckpointError(not_theirs.format(f"it pickles {e.name}")) from e
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise AuthorsCheckpointError(
            f"{source} cannot be read as a PyTorch checkpoint ({type(e).__name__}: {str(e).strip()[:200]}): "
            "damaged or truncated; download it again"
        ) from e
    if not (isinstance(their, dict) and is_fork_checkpoint(their)):
        raise AuthorsCheckpointError(not_theirs.format("no ultralytics.nn.modules.block.PST inside"))
    ckpt = load_fork_checkpoint(source, topk=topk, log=False, _read=their)
    model = ckpt["ema"] if isinstance(ckpt.get("ema"), nn.Module) else ckpt["model"]
    their_config = Path(str(model.yaml.get("yaml_file", "?"))).name
    layout = verify_layout(model)
    notes = []
    if layout is None and equivalent_config(model.yaml):
        notes.append(
            f"their {their_config} is not the network pst-yolo's {equivalent_config(model.yaml)} builds; "
            "the checkpoint keeps theirs (rebuilt from its own yaml)"
        )
    if layout:
        model.yaml["yaml_file"] = layout  # model summaries name it, and retraining from it builds the same layout
    k = pst_layers(model)[0][1].k if pst_layers(model) else 0
    saved = {
        **{key: value for key, value in ckpt.items() if key not in ("model", "ema")},
        "model": model,
        "ema": None,
        "date": _dt.datetime.now().astimezone().isoformat(),
        "version": today,
        "pst_yolo": {
            "version": ours_version,
            "converted_from": {
                "file": source.name,
                "date": their.get("date"),
                "version": their.get("version"),
                "config": their_config,
            },
            "layout": layout,
            "topk": k,
        },
    }
    save_torch(out, saved)  # a unique temporary name beside out, then one rename: never a half-written out
    return ConvertReport(
        source=source,
        out=out,
        task=guess_model_task(model),
        nc=int(model.yaml.get("nc", 0)),
        params=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        their_config=their_config,
        their_version=str(their.get("version", "?")),
        layout=layout,
        topk=k,
        pst_line=describe(pst_layers(model)),
        notes=notes,
    )
