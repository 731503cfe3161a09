"""Named helpers for the parts of Ultralytics' run-time objects pst-yolo reaches into.

Every attribute of a ``YOLO`` object's predictor, an ``AutoBackend``, a trainer, or Ultralytics' logger
and console that pst-yolo reads or changes is read or changed here, each with the reason, so a change in
Ultralytics shows up in one place. (The functions it patches are in ``registry``; this module patches
nothing.)
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from torch import nn


# --------------------------------------------------------------------------------------------------
# A YOLO object and its predictor
# --------------------------------------------------------------------------------------------------
def is_yolo_object(obj: Any) -> bool:
    """An Ultralytics ``YOLO`` (``engine.model.Model``) rather than the network itself. It is an ``nn.Module``
    too, but its ``train()`` starts a training run, so code that means the network must use ``.model``."""
    return isinstance(getattr(obj, "model", None), nn.Module) and hasattr(obj, "predictor") and hasattr(obj, "trainer")


def predictor_backend(yolo: Any) -> Any:
    """The ``AutoBackend`` a ``YOLO`` object's cached predictor runs (``yolo.predictor.model``), or None.

    ``YOLO.predict`` builds the predictor on first use and re-uses it, with its own copy of the network."""
    return getattr(getattr(yolo, "predictor", None), "model", None)


def backend_network(backend: Any) -> Optional[nn.Module]:
    """The PyTorch network inside an ``AutoBackend`` (its ``.model`` when ``.format`` is ``"pt"``), else None
    (an exported model: ONNX, OpenVINO, ... runs outside PyTorch)."""
    if backend is None or getattr(backend, "format", "pt") != "pt":
        return None
    net = getattr(backend, "model", None)
    return net if isinstance(net, nn.Module) else None


def backend_metadata(backend: Any) -> dict:
    """The metadata an ``AutoBackend`` read from an exported model (``pst_topk`` among it), else ``{}``."""
    metadata = getattr(backend, "metadata", None)
    return metadata if isinstance(metadata, dict) else {}


def _format_runner(backend: Any) -> Any:
    """The per-format runner inside an ``AutoBackend`` (``.backend``: one class per format in 8.4.x); older
    versions keep the runtime's objects on the ``AutoBackend`` itself."""
    return getattr(backend, "backend", backend)


def backend_precision(backend: Any) -> str:
    """The precision an ``AutoBackend``'s runtime computes in by default: "fp32", or what OpenVINO's CPU
    plugin chose (``ov_compiled_model``'s ``INFERENCE_PRECISION_HINT``: bf16 on CPUs with AVX512-BF16 or
    AMX, where Ultralytics keeps OpenVINO's default; it forces f32 on ARM64 only)."""
    from pst_yolo.integration.precision import compiled_precision

    compiled = getattr(_format_runner(backend), "ov_compiled_model", None)
    return "fp32" if compiled is None else compiled_precision(compiled)


def openvino_in_fp32(backend: Any, xml: Any) -> None:
    """Recompile the OpenVINO model of an ``AutoBackend`` (its ``ov_compiled_model``) from ``xml`` with
    ``INFERENCE_PRECISION_HINT=f32``, for an fp32 comparison; nothing happens for other runtimes."""
    runner = _format_runner(backend)
    if getattr(runner, "ov_compiled_model", None) is None:
        return
    import openvino as ov

    runner.ov_compiled_model = ov.Core().compile_model(
        str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    )


def exported_metadata(path: Any) -> dict:
    """The Ultralytics metadata of an export, read without loading it (for formats that do not run here,
    such as CoreML on Linux): ``nn.backends.base.BaseBackend.read_metadata``, new in the 8.4 backends."""
    try:
        from ultralytics.nn.backends.base import BaseBackend
    except ImportError as e:  # Ultralytics 8.3: ONNX keeps it in the model's metadata_props, folders in metadata.yaml
        p = Path(str(path))
        if p.suffix == ".onnx":
            import onnx

            return {prop.key: prop.value for prop in onnx.load(str(p), load_external_data=False).metadata_props}
        if p.is_dir() and (p / "metadata.yaml").is_file():
            import yaml

            metadata = yaml.safe_load((p / "metadata.yaml").read_text())
            return metadata if isinstance(metadata, dict) else {}
        if p.is_dir():  # a folder export keeps its metadata in metadata.yaml: without one it has none
            return {}
        raise RuntimeError(
            "reading this export's metadata without loading it needs Ultralytics 8.4 (nn.backends)"
        ) from e
    metadata = BaseBackend.read_metadata(path)
    return metadata if isinstance(metadata, dict) else {}


def _export_suffixes() -> tuple[str, ...]:
    """The endings of Ultralytics' export formats (``.onnx``, ``_openvino_model``, ...), from its format table."""
    try:
        from ultralytics.engine.exporter import export_formats

        return tuple(s.lower() for s in export_formats()["Suffix"])
    except Exception:  # (a changed table: accept any file or folder, as before)
        return ()


MODEL_SUFFIXES = (".pt", ".pth", ".yaml", ".yml")  # checkpoints and configs, besides the export formats


def check_model_name(model: Any) -> None:
    """Refuse an existing file or folder that by its name is neither a checkpoint, a config nor an export (a text
    file, an image, a plain folder), without loading it: ``YOLO()`` would accept it as an export it cannot run."""
    path = Path(str(model))
    known = _export_suffixes()
    if known and path.exists() and not path.name.lower().endswith(MODEL_SUFFIXES + known):
        what = "a folder" if path.is_dir() else f"a file with suffix {path.suffix or 'none'}"
        raise ValueError(
            f"model {model} is {what}, not a .pt checkpoint, a .yaml config or an exported model; give one of those"
        )


def check_model_kind(model: Any, yolo: Any) -> Any:
    """Refuse what ``YOLO(model)`` accepted although it is no model (:func:`check_model_name`): it built a
    ``YOLO`` object without a network, which would fail later deep inside prediction. Returns ``yolo``."""
    if not isinstance(getattr(yolo, "model", None), nn.Module):
        check_model_name(model)
    return yolo


def export_format(path: Any) -> Optional[str]:
    """The Ultralytics format a model path is in, as ``AutoBackend`` decides it from the name (``"pt"`` for a
    checkpoint, ``"onnx"``, ``"openvino"`` for ``*_openvino_model``, ...), or None for a name it does not know
    (a ``.yaml`` config among them). 8.3 returns one flag per row of ``export_formats()``, 8.4 the name."""
    from ultralytics.engine.exporter import export_formats
    from ultralytics.nn.autobackend import AutoBackend

    if Path(str(path)).suffix.lower() in (".yaml", ".yml"):
        return None
    try:
        found = AutoBackend._model_type(str(path))
    except Exception:  # (a name it refuses outright)
        return None
    if isinstance(found, (list, tuple)):  # 8.3: [pt, torchscript, onnx, ..., triton]
        names = [*export_formats()["Argument"], "triton"]
        found = next((n for n, hit in zip(names, found) if hit), None)
    if found in ("-", "pt"):  # AutoBackend matches ".pt" anywhere in the name: an ExecuTorch best.pte is no checkpoint
        return "pt" if Path(str(path)).suffix.lower() == ".pt" else None
    return found


def export_folder_suffixes() -> list[str]:
    """The name endings of Ultralytics' folder exports (``_openvino_model``, ``_ncnn_model``, ...)."""
    from ultralytics.engine.exporter import export_formats

    return [s for s in export_formats()["Suffix"] if not s.startswith(".")]


def export_topk(path: Any) -> Optional[dict]:
    """The k of each PST layer an export was written with (``pst_topk`` in its metadata, ``{"13": 8, ...}``;
    k is fixed in the exported graph), or None for an export without PST layers or unreadable metadata."""
    try:
        found = _literal(exported_metadata(path).get("pst_topk"))
    except Exception:
        return None
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else None


def export_batch(path: Any) -> Optional[int]:
    """The batch size a fixed-shape export takes (its metadata's ``batch``; Ultralytics' validator runs such an
    export at it, and 8.3's backends do not split a larger batch), or None for a dynamic export or none known."""
    try:
        metadata = exported_metadata(path)
    except Exception:
        return None
    args = _literal(metadata.get("args"))
    if _literal(metadata.get("dynamic")) or (isinstance(args, dict) and args.get("dynamic")):
        return None
    batch = _literal(metadata.get("batch"))
    return batch if isinstance(batch, int) and batch > 0 else None


def export_quantization(path: Any) -> Optional[str]:
    """How an export was quantized when it was written: ``int8``, ``fp16``, ``w8a16``, ``w8a32`` (its metadata's
    ``args.quantize``: 8, 16, ...; ``args.int8`` / ``args.half`` in releases before ``quantize``), else None."""
    try:
        args = _literal(exported_metadata(path).get("args"))
    except Exception:
        return None
    if not isinstance(args, dict):
        return None
    quantize = args.get("quantize")
    if quantize in (8, 16, "8", "16"):
        return {"8": "int8", "16": "fp16"}[str(quantize)]
    if isinstance(quantize, str) and quantize.startswith("w8"):
        return quantize
    return "int8" if args.get("int8") else "fp16" if args.get("half") else None


def predictor_network(yolo: Any) -> Optional[nn.Module]:
    """The network copy a ``YOLO`` object's predictor runs, if it is a PyTorch one and not ``yolo.model``
    itself: a k set on ``yolo.model`` alone would silently not reach later predictions."""
    net = backend_network(predictor_backend(yolo))
    return net if net is not None and net is not getattr(yolo, "model", None) else None


def predictor_imgsz(yolo: Any) -> Any:
    """The input size the predictor settled on (an export's fixed size wins over the requested one)."""
    return getattr(getattr(getattr(yolo, "predictor", None), "args", None), "imgsz", None)


# --------------------------------------------------------------------------------------------------
# The image size a model was trained at
# --------------------------------------------------------------------------------------------------
DEFAULT_IMGSZ = 640  # Ultralytics' default, for a model that records no size (a .yaml config)


class ImageSizeWarning(UserWarning):
    """An explicit ``imgsz=`` differs from the size the model was trained at: the numbers are not the ones
    ``yolo val`` reports for it."""


def _one_side(value: Any) -> Optional[int]:
    """``640`` or ``[640, 640]`` -> 640; a non-square size -> its longer side (what ``imgsz=`` letterboxes to)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and v > 0 for v in value):
        return max(value)
    return None


def training_imgsz(yolo: Any) -> Optional[int]:
    """The size a model was made for: a checkpoint's training ``imgsz`` (Ultralytics keeps its train args in
    ``ckpt["train_args"]``, and ``yolo val`` falls back to them); an export's fixed input size (its metadata);
    None for a config (random weights), a checkpoint that records no training, or a dynamic export."""
    ckpt = getattr(yolo, "ckpt", None)
    if isinstance(ckpt, dict):  # a checkpoint saved without training (YOLO(cfg).save()) records no size
        args = ckpt.get("train_args")
        return _one_side(args.get("imgsz")) if isinstance(args, dict) else None
    return export_imgsz(yolo)


def export_imgsz(yolo: Any) -> Optional[int]:
    """The fixed input size of an exported model (a ``YOLO`` object on a ``.onnx`` file or an export folder:
    its ``.model`` is the path), read from its metadata; None for anything else or a dynamic export."""
    path = getattr(yolo, "model", None)
    if not isinstance(path, (str, Path)) or Path(str(path)).suffix in (".pt", ".yaml", ".yml"):
        return None
    try:
        metadata = exported_metadata(path)
    except Exception:  # a format whose metadata cannot be read without loading it: the predictor decides
        return None
    args = _literal(metadata.get("args"))
    dynamic = _literal(metadata.get("dynamic")) or (isinstance(args, dict) and args.get("dynamic"))
    return None if dynamic else _one_side(_literal(metadata.get("imgsz")))


def _literal(value: Any) -> Any:
    """A metadata value as Python: ONNX and other formats keep each one as its ``repr`` string (``'[96, 96]'``)."""
    if not isinstance(value, str):
        return value
    import ast

    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def choose_imgsz(yolo: Any, imgsz: Optional[int], name: str = "the model") -> tuple[int, str]:
    """The size to evaluate or predict at, and why: the given ``imgsz``, else the model's own (as ``yolo val``
    does), else 640. A given size that differs from the training size is used, with an
    :class:`ImageSizeWarning`: silently different numbers are worse than a warning. An export's fixed size
    always wins (Ultralytics uses it whatever is asked)."""
    own = training_imgsz(yolo)
    if own is not None and export_imgsz(yolo) == own:
        if imgsz is not None and imgsz != own:
            warnings.warn(
                f"{name} is an export with a fixed input size {own}; imgsz={imgsz} ignored",
                ImageSizeWarning,
                stacklevel=2,
            )
        return own, "the export's fixed size"
    if imgsz is None:
        return (own, "the model's training size") if own is not None else (DEFAULT_IMGSZ, "default")
    if own is not None and int(imgsz) != own:
        warnings.warn(
            f"imgsz={imgsz} differs from the size {name} was trained at ({own}): its accuracy at imgsz={imgsz} is "
            f"not what `yolo val` reports; leave imgsz unset to use {own}",
            ImageSizeWarning,
            stacklevel=2,
        )
    return int(imgsz), "given"


# --------------------------------------------------------------------------------------------------
# Trainers
# --------------------------------------------------------------------------------------------------
def trainer_network(trainer: Any) -> nn.Module:
    """The network a trainer steps, unwrapped from DDP (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    model = getattr(trainer.model, "module", trainer.model)
    return getattr(model, "_orig_mod", model)


def trainer_progress(trainer: Any) -> tuple[int, int, int]:
    """``(seed, epoch counted from 0, epochs)`` of a running trainer."""
    return int(trainer.args.seed), int(trainer.epoch), int(trainer.epochs)


def training_threads() -> int:
    """The torch thread count Ultralytics computes with on a CPU: ``select_device`` sets it to
    ``utils.NUM_THREADS`` (``min(8, CPUs - 1)``) for every training, validation and prediction, whatever the
    process had before. Parallel trainings are sized by it."""
    from ultralytics.utils import NUM_THREADS

    return int(NUM_THREADS)


def cache_dataset_labels(data: str, task: str, imgsz: int) -> None:
    """Scan a dataset's splits as a trainer would, so Ultralytics writes each split's label cache now.

    Every training of the dataset then reads that cache. Trainings started together on a dataset without
    one would each write it: Ultralytics deletes an existing cache before writing its own, so one run can
    find the file gone (``No such file or directory: .../labels/train.cache``)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset

    cfg = get_cfg(overrides={"data": data, "task": task, "imgsz": imgsz})
    with quiet_ultralytics():
        if task == "classify":
            from ultralytics.data.dataset import ClassificationDataset

            info = check_cls_dataset(data)
            for split in ("train", "val", "test"):
                if info.get(split):
                    ClassificationDataset(root=info[split], args=cfg, augment=False, prefix=split)
            return
        info = check_det_dataset(data)
        for split in ("train", "val", "test"):
            if info.get(split):
                build_yolo_dataset(cfg, info[split], 16, info, mode="val")


def dataset_batches(data: str, task: str, imgsz: int, images: int, batch: int, split: str = "train") -> Iterator[Any]:
    """The first ``images`` images of a split, un-augmented (letterboxed to ``imgsz`` as for validation), in
    batches of float tensors [B, 3, imgsz, imgsz] in 0..1: what ``nn.precise_bn`` estimates statistics on."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset

    cfg = get_cfg(overrides={"data": data, "task": task, "imgsz": imgsz})
    with quiet_ultralytics():
        if task == "classify":
            from ultralytics.data.dataset import ClassificationDataset

            dataset = ClassificationDataset(root=check_cls_dataset(data)[split], args=cfg, augment=False, prefix=split)
        else:
            info = check_det_dataset(data)
            dataset = build_yolo_dataset(cfg, info[split], batch, info, mode="val")
    n = min(images, len(dataset))
    for start in range(0, n, batch):
        items = [dataset[i] for i in range(start, min(start + batch, n))]
        imgs = torch.stack([item["img"] for item in items])
        yield imgs.float() / 255 if imgs.dtype == torch.uint8 else imgs.float()


# --------------------------------------------------------------------------------------------------
# Logger, console, command line
# --------------------------------------------------------------------------------------------------
def log(message: str) -> None:
    """One line in Ultralytics' own log (so it obeys ``YOLO_VERBOSE`` like the lines around it)."""
    from ultralytics.utils import LOGGER

    LOGGER.info(message)


@contextlib.contextmanager
def quiet_ultralytics(level: int = logging.WARNING) -> Iterator[None]:
    """Ultralytics logs only ``level`` and above inside the block (model summaries, export chatter)."""
    from ultralytics.utils import LOGGER

    previous = LOGGER.level
    LOGGER.setLevel(level)
    try:
        yield
    finally:
        LOGGER.setLevel(previous)


def progress(iterable: Iterable, desc: str, total: Optional[int] = None, disable: bool = False):
    """Ultralytics' progress bar, silent when Ultralytics is not verbose (``YOLO_VERBOSE=false``)."""
    from ultralytics.utils import VERBOSE

    from pst_yolo.integration.compat import progress_bar_class

    return progress_bar_class()(iterable, desc=desc, total=total, disable=disable or not VERBOSE)


def run_yolo_cli(words: Sequence[str]) -> None:
    """Run Ultralytics' ``yolo`` command line with ``words`` (mode and key=value words), in this process.

    Its entry point reads ``sys.argv``, and Ultralytics keeps a reference to that list taken at import
    (``ultralytics.utils.ARGV``), so the list is edited in place and restored afterwards."""
    from ultralytics.cfg import entrypoint

    saved = list(sys.argv)
    sys.argv[:] = ["yolo", *words]
    try:
        entrypoint()
    finally:
        sys.argv[:] = saved


def cpu_name() -> str:
    """The CPU's model name as Ultralytics reports it in its own summaries."""
    import platform

    try:
        from ultralytics.utils.torch_utils import get_cpu_info

        return get_cpu_info()
    except Exception:
        return platform.processor() or "unknown CPU"
