"""Checks the evaluation commands (``bench``, ``compare``, ``evaluate``, ``speed``) run on their inputs before
any work starts: a missing or unloadable model, an unreadable dataset or a bad setting is an error that names
it, not a failure after minutes of training or evaluation."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

WEIGHT_SUFFIXES = (".pt",)
CONFIG_SUFFIXES = (".yaml", ".yml")


def _downloadable(name: str) -> bool:
    """A bare name Ultralytics fetches from its release assets (``yolo11n.pt``), as stock ``YOLO()`` does."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return Path(name).parent == Path(".") and Path(name).name in GITHUB_ASSETS_NAMES


def check_model_file(model: Any) -> None:
    """A ``.pt`` path must name an existing file (or an Ultralytics asset name); other objects pass."""
    if not isinstance(model, (str, Path)):
        return
    path = Path(str(model))
    if not str(model).strip():
        raise ValueError("model is empty: give a .pt checkpoint or a .yaml config")
    if path.suffix.lower() in WEIGHT_SUFFIXES and not path.is_file() and not _downloadable(str(model)):
        raise FileNotFoundError(f"weights not found: {model} (no such file)")
    if path.is_dir():
        raise ValueError(f"model {model} is a folder; give a .pt checkpoint or a .yaml config")


def load_model(model: Any, task: Optional[str] = None, quiet: bool = False) -> Any:
    """``YOLO(model)`` (a YOLO object passes through), after :func:`check_model_file`. A file that does not load
    is a ``ValueError`` naming it and Ultralytics' reason (a damaged file, a refused pickle, a bad YAML).
    ``quiet``: without Ultralytics' model summary (a check, not the run)."""
    if hasattr(model, "predict") and hasattr(model, "model"):
        return model
    check_model_file(model)
    from ultralytics import YOLO

    from pst_yolo.integration.runtime import quiet_ultralytics

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
    return check_loaded(model, yolo)


def _export_suffixes() -> set[str]:
    """The file suffixes of Ultralytics' export formats (``.onnx``, ``.torchscript``, ...)."""
    try:
        from ultralytics.engine.exporter import export_formats

        return {s.lower() for s in export_formats()["Suffix"] if s.startswith(".")}
    except Exception:  # (a changed table: accept any suffix, as before)
        return set()


def check_loaded(model: Any, yolo: Any) -> Any:
    """A file that is neither a checkpoint, a config nor an export (a text file, an image) builds a ``YOLO``
    object without a network; refuse it here rather than fail later deep inside."""
    import torch

    path = Path(str(model))
    if isinstance(getattr(yolo, "model", None), torch.nn.Module) or not path.is_file():
        return yolo
    known = _export_suffixes()
    if known and path.suffix.lower() not in known:
        raise ValueError(
            f"model {model} is not a .pt checkpoint, a .yaml config or an exported model (suffix "
            f"{path.suffix or 'none'}); give one of those"
        )
    return yolo


MAX_IMGSZ = 8192  # an image size beyond this needs GBs per image and is no detector's input size


def check_positive(**values: Any) -> None:
    """Each value must be an integer >= 1 (``batch``, ``imgsz``, ``epochs``, ...), ``imgsz`` at most
    :data:`MAX_IMGSZ`; None passes."""
    bad = [f"{k}={v!r}" for k, v in values.items() if v is not None and (isinstance(v, bool) or int(v) < 1)]
    if bad:
        raise ValueError(f"{', '.join(bad)}: must be >= 1")
    imgsz = values.get("imgsz")
    if imgsz is not None and int(imgsz) > MAX_IMGSZ:
        raise ValueError(f"imgsz={imgsz}: at most {MAX_IMGSZ} (larger inputs take GBs of memory per image)")


def check_fraction(**values: Any) -> None:
    """Each value must be in [0, 1] (``conf``, ``iou``); None passes."""
    bad = [f"{k}={v!r}" for k, v in values.items() if v is not None and not 0.0 <= float(v) <= 1.0]
    if bad:
        raise ValueError(f"{', '.join(bad)}: must be between 0 and 1")


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
