"""The ``key=value`` words of the ``pst-yolo`` command: one parser and one set of value converters.

Everything that reads command-line words goes through here; nothing outside ``pst_yolo.cli`` imports it.
"""

from __future__ import annotations

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
    """``"a, b,"`` -> ``["a", "b"]``."""
    return [v for v in (x.strip() for x in str(value).split(",")) if v]


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


def optional_int(value: str) -> int | None:
    """An integer, or ``none`` / ``-`` / empty for None."""
    return None if str(value).strip().lower() in ("", "none", "-") else int(value)


def topk_value(value: str) -> int:
    """A top-k: a non-negative integer (0 = coarse attention only)."""
    from pst_yolo.nn.topk import parse_topk

    return parse_topk(value, source="topk")


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
    out: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CLIError(f"'{word}' is not key=value; `pst-yolo {command}` takes: {names}")
        if key not in by_name:
            raise CLIError(f"unknown key '{key}' for `pst-yolo {command}`; valid keys: {names}")
        try:
            out[key] = by_name[key].convert(value)
        except ValueError as e:
            raise CLIError(f"{key}={value}: {e}") from e
    missing = [k.name + "=" for k in keys if k.required and k.name not in out]
    if missing:
        raise CLIError(f"`pst-yolo {command}` needs {' and '.join(missing)}; see `pst-yolo {command} --help`")
    return out
