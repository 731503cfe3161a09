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
