"""The precision an exported model computes in, and the one switch pst-yolo turns: OpenVINO's.

    from pst_yolo.integration.precision import check_precision, runtime_precision
    check_precision("openvino", "bf16")                    # refuses a precision the runtime has no switch for
    with runtime_precision("openvino", "f32") as ran:      # every OpenVINO compile in the block gets the hint
        yolo.predict(...)
    ran.label()                                            # "fp32": what the compiled model reports

Which runtime computes in what, on a CPU (ultralytics 8.3.138 - 8.4.x loads each the same way):

- **OpenVINO**: ``INFERENCE_PRECISION_HINT``. Ultralytics compiles with ``PERFORMANCE_HINT=LATENCY`` only (f32
  forced on ARM64 Linux), so the CPU plugin's default applies: **bf16 on CPUs with AVX512-BF16 or AMX**, f32
  elsewhere. ``precision=`` adds the hint to every ``openvino.Core.compile_model`` call made inside
  :func:`runtime_precision` (the method is wrapped for that block only, so Ultralytics' own loading code runs
  unchanged, in every release and for every path: predict, val, the recompile of a quantized model), and the
  precision that ran is read back from each compiled model.
- **PyTorch, TorchScript, ONNX Runtime, ExecuTorch, LiteRT, TensorFlow**: fp32 on a CPU, with no switch.
- **NCNN, MNN**: fp32 on x86 CPUs (NCNN's fp16 options and MNN's ``precision=low``, which Ultralytics sets,
  change no output there: checked against ONNX Runtime); on ARM CPUs with fp16 arithmetic they may compute in
  fp16, so there the label is "runtime default".

An export quantized when it was written (``quantize=8`` / ``16`` / ``w8a16`` in its metadata) says so after the
compute precision ("bf16, int8 weights and activations": Ultralytics' ``quantize=8`` is static quantization in
every format that takes it, so activations are int8 too).
"""

from __future__ import annotations

import contextlib
import inspect
import platform
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

PRECISIONS = ("fp32", "bf16", "fp16")
_ALIASES = {
    **dict.fromkeys(("fp32", "f32", "float32", "float"), "fp32"),
    **dict.fromkeys(("bf16", "bfloat16"), "bf16"),
    **dict.fromkeys(("fp16", "f16", "float16", "half"), "fp16"),
}
# How each ``quantize=`` of an export reads after the compute precision (runtime.export_quantization's names).
QUANTIZED_LABELS = {
    "int8": "int8 weights and activations",  # static: ONNX Runtime QDQ, NNCF, LiteRT's quantizer
    "fp16": "fp16 weights",
    "w8a16": "int8 weights, int16 activations",
    "w8a32": "int8 weights",  # dynamic / weight-only
}
# The runtimes with a precision switch, and the values it takes.
SWITCHES: dict[str, tuple[str, ...]] = {"openvino": PRECISIONS}
_OPENVINO_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # INFERENCE_PRECISION_HINT's own spelling
# The runtime behind each Ultralytics format name, for messages and tables.
RUNTIMES = {
    **{"pt": "PyTorch", "torchscript": "TorchScript", "onnx": "ONNX Runtime", "openvino": "OpenVINO"},
    **{"ncnn": "NCNN", "mnn": "MNN", "executorch": "ExecuTorch", "litert": "LiteRT", "tflite": "LiteRT"},
    **{"saved_model": "TensorFlow", "pb": "TensorFlow", "paddle": "PaddlePaddle", "coreml": "CoreML"},
    **{"engine": "TensorRT"},
}


class PrecisionError(ValueError):
    """A precision the runtime has no switch for, or not a precision at all; the message says what works."""


def parse_precision(value: Any) -> str:
    """``f32`` / ``fp32`` / ``float32`` -> ``fp32``; ``bf16``; ``f16`` / ``fp16`` / ``half`` -> ``fp16``."""
    name = _ALIASES.get(str(value).strip().lower())
    if name is None:
        raise PrecisionError(f"precision={value}: expected one of {', '.join(PRECISIONS)} (or f32, f16)")
    return name


def runtime_name(fmt: str) -> str:
    """``openvino`` -> ``OpenVINO``: the runtime an Ultralytics format runs in."""
    return RUNTIMES.get(fmt, fmt)


def check_precision(fmt: str, precision: Optional[str]) -> Optional[str]:
    """The precision to ask ``fmt``'s runtime for (parsed), or None for its default; a runtime without a switch
    takes only fp32, and only where fp32 is what it computes in anyway (nothing to switch)."""
    if precision is None:
        return None
    name = parse_precision(precision)
    allowed = SWITCHES.get(fmt)
    if allowed is not None:
        if name not in allowed:
            raise PrecisionError(f"precision={precision}: {runtime_name(fmt)} takes {', '.join(allowed)}")
        return name
    fixed = fixed_precision(fmt)
    if name != fixed:
        switches = "; ".join(f"{runtime_name(f)} ({', '.join(v)})" for f, v in SWITCHES.items())
        raise PrecisionError(
            f"precision={precision}: {runtime_name(fmt)} has no precision switch (it runs in {fixed} here); "
            f"precision= is for {switches}; export to one of those, or leave precision unset"
        )
    return name


def fixed_precision(fmt: str) -> str:
    """What a runtime without a switch computes in on this machine's CPU (see the module docstring)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
    return "runtime default" if fmt in ("ncnn", "mnn") and not x86 else "fp32"


def openvino_hint_name(hint: Any) -> str:
    """An ``INFERENCE_PRECISION_HINT`` value (``<Type: 'bfloat16'>``, ``f32``, ...) as fp32 / bf16 / fp16."""
    text = str(hint)
    text = text.split("'")[1] if "'" in text else text  # "<Type: 'bfloat16'>" -> bfloat16
    return _ALIASES.get(text.strip().lower(), text)


def compiled_precision(compiled: Any) -> str:
    """The precision an OpenVINO ``CompiledModel`` computes in (its ``INFERENCE_PRECISION_HINT``: OpenVINO fills
    in the default it chose), or "unknown" where the device does not report one."""
    try:
        return openvino_hint_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    except Exception:  # (a device without that property)
        return "unknown"


@dataclass
class PrecisionRun:
    """What ran inside :func:`runtime_precision`: the format, the precision asked for (None: the runtime's
    default) and, for OpenVINO, the precision of every model compiled in the block."""

    fmt: str
    asked: Optional[str] = None
    compiled: list[str] = field(default_factory=list)
    quantized: Optional[str] = None  # int8, fp16, w8a16, ...: how the export was quantized (its metadata)

    def precision(self) -> str:
        """The precision that ran: what OpenVINO reports for the models it compiled (several, joined by "/"),
        else the runtime's fixed one."""
        if self.fmt in SWITCHES and self.compiled:
            return "/".join(dict.fromkeys(self.compiled))
        if self.fmt in SWITCHES:
            return self.asked or "unknown"  # (nothing was compiled in the block: see evaluate's check)
        return fixed_precision(self.fmt)

    def label(self) -> str:
        """``bf16``, or e.g. ``bf16, int8 weights and activations`` for a quantized export."""
        if not self.quantized:
            return self.precision()
        return f"{self.precision()}, {QUANTIZED_LABELS.get(self.quantized, self.quantized + ' weights')}"

    def how(self) -> str:
        """Why this precision: given, the runtime's default, or the runtime's only one."""
        if self.asked is not None:
            return "given"
        return f"{runtime_name(self.fmt)}'s default here" if self.fmt in SWITCHES else "the runtime's own"


@contextlib.contextmanager
def runtime_precision(
    fmt: str, precision: Optional[str] = None, quantized: Optional[str] = None
) -> Iterator[PrecisionRun]:
    """Run the block with ``fmt``'s runtime at ``precision`` (checked by :func:`check_precision`; None: the
    runtime's default); yields a :class:`PrecisionRun` that records what ran.

    For OpenVINO, ``openvino.Core.compile_model`` is wrapped for the block: every model compiled in it gets
    ``INFERENCE_PRECISION_HINT`` (when asked) and has its precision recorded. The model must therefore be loaded
    inside the block (a ``YOLO`` object's predictor and validator build their ``AutoBackend`` on first use)."""
    run = PrecisionRun(fmt, check_precision(fmt, precision), quantized=quantized)
    if fmt not in SWITCHES:
        yield run
        return
    import openvino as ov

    core = ov.Core
    own = "compile_model" in core.__dict__  # (else inherited from the compiled base class: removed again after)
    original = core.compile_model
    signature = inspect.signature(original)

    def compile_model(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        if run.asked is not None:  # the hint wins over Ultralytics' (f32 on ARM64): it was asked for
            config = dict(bound.arguments.get("config") or {})
            config["INFERENCE_PRECISION_HINT"] = _OPENVINO_HINT[run.asked]
            bound.arguments["config"] = config
        compiled = original(*bound.args, **bound.kwargs)
        run.compiled.append(compiled_precision(compiled))
        return compiled

    core.compile_model = compile_model
    try:
        yield run
    finally:
        if own:
            core.compile_model = original
        else:
            del core.compile_model
