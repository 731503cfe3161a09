"""pst_yolo.cli.args: the one key=value parser and its converters."""

from __future__ import annotations

import pytest

from pst_yolo.cli.args import CLIError, Key, int_list, normalize_argv, optional_int, parse_kv, str_list, to_bool


def test_normalize_argv():
    assert normalize_argv(["out", "--train", "3", "--val=2", "k=v", "--flag"], positional="out") == [
        "out=out",
        "train=3",
        "val=2",
        "k=v",
        "flag=true",
    ]


def test_converters():
    assert [to_bool(v) for v in ("1", "True", "yes", "ON", "0", "false", "No", "off")] == [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="true or false"):
        to_bool("maybe")
    assert str_list(" a, b,,") == ["a", "b"]
    assert int_list("0, 8") == [0, 8]
    with pytest.raises(ValueError, match="comma-separated integers"):
        int_list("0,x")
    assert optional_int("none") is None and optional_int("-") is None and optional_int("3") == 3


def test_parse_kv_names_the_problem():
    keys = (Key("a", int), Key("b", to_bool), Key("c", str, required=True))
    assert parse_kv(["a=3", "c=x"], keys, "demo") == {"a": 3, "c": "x"}
    with pytest.raises(CLIError, match="'oops' is not key=value; `pst-yolo demo` takes: a, b, c"):
        parse_kv(["oops", "c=x"], keys, "demo")
    with pytest.raises(CLIError, match="unknown key 'd' for `pst-yolo demo`; valid keys: a, b, c"):
        parse_kv(["d=1"], keys, "demo")
    with pytest.raises(CLIError, match="a=x: invalid literal"):
        parse_kv(["a=x", "c=y"], keys, "demo")
    with pytest.raises(CLIError, match="needs c="):
        parse_kv(["a=1"], keys, "demo")


def test_a_key_given_twice_the_last_wins_and_only_it_is_checked():
    # scripts pass their defaults first and the user's words after them (scripts/gpu_study.sh: device=0 "$@")
    keys = (Key("a", int), Key("c", str))
    assert parse_kv(["a=x", "c=1", "a=3"], keys, "demo") == {"a": 3, "c": "1"}
    with pytest.raises(CLIError, match="a=y: invalid literal"):
        parse_kv(["a=3", "a=y"], keys, "demo")
