"""Checks the evaluation commands (``bench``, ``compare``, ``evaluate``, ``speed``) run on their inputs before
any work starts: a missing or unloadable model, an unreadable dataset or a bad setting is an error that names
it, not a failure after minutes of training or evaluation."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

from pst_yolo.data.writer import MAX_IMGSZ

WEIGHT_SUFFIXES = (".pt",)
CONFIG_SUFFIXES = (".yaml", ".yml")


def _downloadable(name: str) -> bool:
    """A bare name Ultralytics fetches from its release assets (``yolo11n.pt``), as stock ``YOLO()`` does."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return Path(name).parent == Path(".") and Path(name).name in GITHUB_ASSETS_NAMES


def check_model_file(model: Any) -> Any:
    """A model path must name something that loads: an existing ``.pt`` (or an Ultralytics asset name), a config,
    an exported file or an export folder (:func:`export_model_path`); other objects pass. Returns what to load:
    the path itself, or for a file inside an export folder (an OpenVINO ``.xml``, an ExecuTorch ``.pte``) that
    folder."""
    if not isinstance(model, (str, Path)):
        return model
    path = Path(str(model))
    if not str(model).strip():
        raise ValueError("model is empty: give a .pt checkpoint or a .yaml config")
    if path.suffix.lower() in WEIGHT_SUFFIXES and not path.is_file() and not _downloadable(str(model)):
        raise FileNotFoundError(f"weights not found: {model} (no such file)")
    if path.is_dir() or path.suffix.lower() == ".xml" or runtime_format(model) not in (None, "pt"):
        return export_model_path(model)
    if path.is_file() and path.suffix.lower() not in CONFIG_SUFFIXES and _in_export_folder(path):
        return export_model_path(model)
    return model


def _in_export_folder(path: Path) -> bool:
    """A file no runtime loads by its own name, in a folder that is named like an export (``best.xml`` or
    ``model.ncnn.param`` in ``best_openvino_model/``, ``best.pte`` in ``best_executorch_model/``)."""
    return runtime_format(path) is None and runtime_format(path.parent) not in (None, "pt")


EXPORT_EXPECTED = (
    "a .pt checkpoint, a .yaml config, an exported file (.onnx, .torchscript, .mnn, ...) or an export folder as "
    "`yolo export` writes it ({folders})"
)


def _expected() -> str:
    from pst_yolo.integration.runtime import export_folder_suffixes

    return EXPORT_EXPECTED.format(folders=", ".join(f"*{s}" for s in export_folder_suffixes()[:4]) + ", ...")


def export_model_path(model: str | Path) -> str:
    """The path to load an exported model from, as Ultralytics' ``AutoBackend`` recognises exports (by name: a
    ``.onnx`` file, a ``*_openvino_model`` folder, ...), after checking it is one:

    - a file in an export folder that no runtime loads by its own name (an OpenVINO ``.xml``, an ExecuTorch
      ``.pte``, NCNN's ``.param``) stands for that folder: Ultralytics knows such exports by the folder's name,
      and reads the ``metadata.yaml`` in it (names, input size, k);
    - a folder must be named like an export and hold one (the metadata ``yolo export`` writes into it), else
      it is refused with what is expected."""
    from pst_yolo.integration.runtime import exported_metadata

    path = Path(str(model))
    if path.suffix.lower() == ".xml" and not path.is_file():
        raise FileNotFoundError(f"model not found: {model} (no such file)")
    if path.is_file() and _in_export_folder(path):
        return export_model_path(path.parent)
    if path.suffix.lower() == ".xml":
        raise ValueError(
            f"model {model}: an OpenVINO .xml is loaded through its export folder (named *_openvino_model, with "
            "the metadata.yaml `yolo export format=openvino` writes beside the .xml); give that folder"
        )
    fmt = runtime_format(path)
    if fmt in (None, "pt"):
        raise ValueError(f"model {model} is a folder, not an Ultralytics export; give {_expected()}")
    if not path.exists():
        raise FileNotFoundError(f"model not found: {model} (no such file or folder)")
    if path.is_dir():
        try:
            written = bool(exported_metadata(path))
        except RuntimeError:  # (Ultralytics 8.3 cannot read every format's metadata unloaded: let it try)
            written = True
        if not written:
            raise ValueError(
                f"model {model} is named like an export (format {fmt}) but holds none (no metadata `yolo export` writes); "
                f"give {_expected()}"
            )
    return str(model)


def runtime_format(model: Any) -> str | None:
    """The Ultralytics format a model runs in: ``"pt"`` for a ``.pt`` or a network (a ``YOLO`` object built
    from a checkpoint or config), the export's format (``"onnx"``, ``"openvino"``, ...) for an export path or a
    ``YOLO`` object on one, None for a ``.yaml`` path or a name no runtime loads."""
    import torch

    from pst_yolo.integration.runtime import export_format

    if hasattr(model, "predict") and hasattr(model, "model"):  # a YOLO object: .model is a network or a path
        inner = model.model
        return "pt" if isinstance(inner, torch.nn.Module) else export_format(inner)
    return export_format(model) if isinstance(model, (str, Path)) else None


def load_model(model: Any, task: Optional[str] = None, quiet: bool = False) -> Any:
    """``YOLO(model)`` (a YOLO object passes through), after :func:`check_model_file`. A file that does not load
    is a ``ValueError`` naming it and Ultralytics' reason (a damaged file, a refused pickle, a bad YAML).
    ``quiet``: without Ultralytics' model summary (a check, not the run)."""
    if hasattr(model, "predict") and hasattr(model, "model"):
        return model
    model = check_model_file(model)
    from ultralytics import YOLO

    from pst_yolo.integration.runtime import check_model_kind, quiet_ultralytics

    try:
        with quiet_ultralytics() if quiet else contextlib.nullcontext():
            yolo = YOLO(str(model), task=task) if task else YOLO(str(model))
    except FileNotFoundError as e:
        if Path(str(model)).suffix.lower() in CONFIG_SUFFIXES:
            raise FileNotFoundError(
                f"model config not found: {model} (a path to a .yaml file, or a name Ultralytics or pst-yolo "
                "ships, such as yolo11n.yaml or yolo11n-pst.yaml)"
            ) from e
        raise
    except ValueError:
        raise
    except Exception as e:  # TypeError for a damaged or refused checkpoint, KeyError for a broken YAML, ...
        raise ValueError(f"model {model} cannot be loaded: {str(e).strip() or type(e).__name__}") from e
    return check_model_kind(model, yolo)


# --------------------------------------------------------------------------------------------------
# Settings: one rule per kind of value, shared by the Python API (check_*) and the command line's converters
# (pst_yolo.cli.args); each raises a ValueError that says what the value must be, without the key's name.
# --------------------------------------------------------------------------------------------------
MAX_SEED = 2**32 - 1  # NumPy's seeds (Ultralytics seeds NumPy with the training seed) stop here


def positive(value: Any) -> int:
    """A count (``batch``, ``epochs``, ``runs``, ...): an integer >= 1."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError("must be >= 1")
    return int(value)


def image_size(value: Any) -> int:
    """An input size in pixels: an integer from 1 to :data:`MAX_IMGSZ`."""
    size = positive(value)
    if size > MAX_IMGSZ:
        raise ValueError(f"at most {MAX_IMGSZ} (larger inputs take GBs of memory per image)")
    return size


def non_negative(value: Any) -> int:
    """A count where 0 means none or off (``workers``, ``warmup``, ``precise_bn``, ...): an integer >= 0."""
    if isinstance(value, bool) or int(value) != value or int(value) < 0:
        raise ValueError("must be >= 0")
    return int(value)


def seed(value: Any) -> int:
    """A random seed: an integer from 0 to :data:`MAX_SEED`."""
    if non_negative(value) > MAX_SEED:
        raise ValueError(f"at most {MAX_SEED} (2**32 - 1, the largest seed NumPy takes)")
    return int(value)


def fraction(value: Any) -> float:
    """A threshold or share (``conf``, ``iou``, an opacity): a number from 0 to 1 (NaN is not one)."""
    if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError("must be between 0 and 1")
    return float(value)


def _check_each(rule, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is not None:
            try:
                rule(value)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{key}={value!r}: {e}") from None


def check_positive(**values: Any) -> None:
    """Each value must be an integer >= 1 (``batch``, ``imgsz``, ``epochs``, ...), ``imgsz`` at most
    :data:`MAX_IMGSZ`; None passes."""
    _check_each(positive, {k: v for k, v in values.items() if k != "imgsz"})
    _check_each(image_size, {k: v for k, v in values.items() if k == "imgsz"})


def check_non_negative(**values: Any) -> None:
    """Each value must be an integer >= 0 (``workers``, ``warmup``, ...); None passes."""
    _check_each(non_negative, values)


def check_seed(**values: Any) -> None:
    """Each value must be a seed from 0 to :data:`MAX_SEED`; None passes."""
    _check_each(seed, values)


def check_fraction(**values: Any) -> None:
    """Each value must be in [0, 1] (``conf``, ``iou``); None passes."""
    _check_each(fraction, values)


def check_dataset_arg(data: Any) -> None:
    """``data=`` for Ultralytics validation: an existing data.yaml / ImageFolder, or a dataset YAML name that
    Ultralytics ships (``coco8.yaml``: it fetches the images itself, as stock ``yolo val`` does)."""
    if data is None or not str(data).strip():
        raise ValueError("data= is empty: give a data.yaml or an ImageFolder root")
    path = Path(str(data))
    if path.exists():
        return
    from ultralytics.utils import ROOT

    if path.parent == Path(".") and (ROOT / "cfg" / "datasets" / path.name).is_file():
        return
    raise FileNotFoundError(
        f"data={data}: no such file or folder (give a data.yaml, an ImageFolder root, or a dataset name "
        "Ultralytics ships, such as coco8.yaml)"
    )


def export_path_of(yolo: Any) -> str | None:
    """The path a ``YOLO`` object on an exported model loads (its ``.model``), else None (a network)."""
    inner = getattr(yolo, "model", None)
    return str(inner) if isinstance(inner, (str, Path)) else None


def export_k(yolo: Any) -> int | None:
    """The k every PST layer of an exported model was exported at (k is fixed in the exported graph; its
    metadata's ``pst_topk``); None for a network, an export without PST layers, or layers at different k."""
    from pst_yolo.integration.runtime import export_topk

    path = export_path_of(yolo)
    ks = set((export_topk(path) or {}).values()) if path else set()
    return ks.pop() if len(ks) == 1 else None


def check_export_topk(yolo: Any, topk: Any) -> None:
    """``topk=`` on an exported model: its k was fixed when it was exported, so only that k can run."""
    from pst_yolo.integration.runtime import export_topk

    path = export_path_of(yolo)
    if topk is None or path is None:
        return
    layers = export_topk(path)
    if not layers:
        raise ValueError(f"topk={topk}: {path} is an export without PST layers (no pst_topk in its metadata)")
    if set(layers.values()) != {int(topk)}:
        fixed = ", ".join(f"layer {name} k={k}" for name, k in layers.items())
        raise ValueError(
            f"topk={topk}: an export's k is fixed when it is exported ({path}: {fixed}); leave topk unset, or "
            f"export the .pt again at that k (pst-yolo export model=best.pt format=... topk={topk})"
        )
