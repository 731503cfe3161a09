"""The ``key=value`` words of the ``pst-yolo`` command: one parser and one set of value converters.

Everything that reads command-line words goes through here; nothing outside ``pst_yolo.cli`` imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

HELP_WORDS = ("-h", "--help", "help")


class CLIError(ValueError):
    """Bad command-line input; the message says what to fix."""


# --------------------------------------------------------------------------------------------------
# Converters: str -> value, raising ValueError with what was expected
# --------------------------------------------------------------------------------------------------
def to_bool(value: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off``."""
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def str_list(value: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``; a list with nothing in it (``","``) is an error."""
    items = [v for v in (x.strip() for x in str(value).split(",")) if v]
    if not items:
        raise ValueError("expected a comma-separated list, e.g. a,b")
    return items


def int_list(value: str) -> list[int]:
    """``"0,8"`` -> ``[0, 8]``."""
    try:
        return [int(v) for v in str_list(value)]
    except ValueError as e:
        raise ValueError("expected comma-separated integers, e.g. 0,8") from e


def topk_list(value: str) -> list[int]:
    """``"0,8"`` -> ``[0, 8]``: top-k values, each a non-negative integer."""
    items = str_list(value)
    if not all(v.isdigit() for v in items):
        raise ValueError("expected comma-separated non-negative integers, e.g. 0,8")
    return [int(v) for v in items]


def integer(value: str) -> int:
    """A whole number written as one (``8``, ``-1``); ``1.5`` or ``abc`` is an error that says so."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number, e.g. 8") from None


def number(value: str) -> float:
    """A finite number (``0.5``, ``2``); ``nan``, ``inf`` and words are errors."""
    try:
        result = float(str(value).strip())
    except ValueError:
        raise ValueError("expected a number, e.g. 0.5") from None
    if not math.isfinite(result):
        raise ValueError("expected a finite number, e.g. 0.5")
    return result


def optional_int(value: str) -> int | None:
    """An integer, or ``none`` / ``-`` for None."""
    return None if str(value).strip().lower() in ("none", "-") else integer(value)


def topk_value(value: str) -> int:
    """A top-k: a non-negative integer (0 = coarse attention only)."""
    from pst_yolo.nn.topk import parse_topk

    return parse_topk(value, source="topk")


# The kinds of number the keys take: text -> number, then the rule of pst_yolo.eval.inputs that the Python API
# applies too (so a rule is written once, and the command line refuses a bad value before anything is loaded).
def count(value: str) -> int:
    """An integer >= 1 (batch, epochs, runs, ...)."""
    from pst_yolo.eval.inputs import positive

    return positive(integer(value))


def image_size(value: str) -> int:
    """An input size in pixels, 1 to 8192."""
    from pst_yolo.eval.inputs import image_size as rule

    return rule(integer(value))


def non_negative(value: str) -> int:
    """An integer >= 0 (workers, warmup, ...: 0 means none or off)."""
    from pst_yolo.eval.inputs import non_negative as rule

    return rule(integer(value))


def seed(value: str) -> int:
    """A random seed, 0 to 2**32 - 1."""
    from pst_yolo.eval.inputs import seed as rule

    return rule(integer(value))


def fraction(value: str) -> float:
    """A number from 0 to 1 (conf, iou, an opacity)."""
    from pst_yolo.eval.inputs import fraction as rule

    return rule(number(value))


def distance(value: str) -> float:
    """A finite number >= 0 (a tolerance in pixels)."""
    result = number(value)
    if result < 0:
        raise ValueError("must be >= 0")
    return result


OTHER_DEVICES = ("npu", "xpu", "tpu", "intel", "vulkan")  # checked by Ultralytics itself when it selects them


def device(value: str) -> str:
    """``cpu``, ``mps``, CUDA device numbers (``0``, ``0,1``, ``cuda:0``), or a device Ultralytics knows by name;
    a CUDA number this machine does not have is an error now, not after a dataset was generated."""
    text = str(value).strip()
    lower = text.lower()
    if lower in ("cpu", "mps", "-1") or lower.startswith(OTHER_DEVICES):  # (-1: Ultralytics picks an idle GPU)
        return text
    numbers = ["0"] if lower == "cuda" else lower.removeprefix("cuda:").split(",")
    if not all(n.strip().isdigit() for n in numbers):
        raise ValueError("expected cpu, mps or CUDA device numbers, e.g. 0 or 0,1")
    import torch

    visible = torch.cuda.device_count()  # (counts devices without starting CUDA in this process)
    missing = [n.strip() for n in numbers if int(n) >= visible]
    if missing:
        have = f"CUDA devices 0..{visible - 1}; use device=cpu or one of those" if visible else "no CUDA device"
        raise ValueError(f"this machine has {have}" + ("" if visible else "; use device=cpu"))
    return text


# --------------------------------------------------------------------------------------------------
# Keys and parsing
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One ``key=value`` a subcommand takes: its converter, default (as shown in help) and meaning."""

    name: str
    convert: Callable[[str], Any] = str
    default: Any = None
    help: str = ""
    required: bool = False


def normalize_argv(argv: Sequence[str], positional: str | None = None) -> list[str]:
    """Accept ``--key value`` and ``--key=value`` as well as ``key=value``; a leading bare word becomes
    ``positional=word``. Returns ``key=value`` words for :func:`parse_kv`."""
    words, out, i = list(argv), [], 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            key, sep, value = word[2:].partition("=")
            key = key.replace("-", "_")
            if not sep:
                if i + 1 >= len(words) or words[i + 1].startswith("--"):
                    out.append(f"{key}=true")  # a bare flag
                    i += 1
                    continue
                value = words[i + 1]
                i += 1
            out.append(f"{key}={value}")
        elif i == 0 and positional and "=" not in word:
            out.append(f"{positional}={word}")
        else:
            out.append(word)
        i += 1
    return out


def parse_kv(words: Sequence[str], keys: Sequence[Key], command: str) -> dict[str, Any]:
    """Parse ``key=value`` words against ``keys``; unknown keys, malformed words, bad values and missing
    required keys are a :class:`CLIError` that names the key and what to write. Returns only the keys given."""
    by_name = {k.name: k for k in keys}
    names = ", ".join(by_name)
    given: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CLIError(f"'{word}' is not key=value; `pst-yolo {command}` takes: {names}")
        if key not in by_name:
            raise CLIError(f"unknown key '{key}' for `pst-yolo {command}`; valid keys: {names}")
        if not value.strip():  # `key=`: for a path it would mean the current folder, for a list nothing at all
            leave = "" if by_name[key].required else f", or leave {key}= out for its default"
            raise CLIError(f"{key}= is empty; give a value{leave} (see `pst-yolo {command} --help`)")
        given.pop(key, None)
        given[key] = value  # a key given twice: the last wins, as with `yolo` (a script's default, then the user's)
    out: dict[str, Any] = {}
    for key, value in given.items():  # values checked after that, so an overridden default is never judged
        try:
            out[key] = by_name[key].convert(value)
        except ValueError as e:
            raise CLIError(f"{key}={value}: {e}") from e
    missing = [k.name + "=" for k in keys if k.required and k.name not in out]
    if missing:
        raise CLIError(f"`pst-yolo {command}` needs {' and '.join(missing)}; see `pst-yolo {command} --help`")
    return out
