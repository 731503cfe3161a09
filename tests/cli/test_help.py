"""``pst-yolo --help`` and ``pst-yolo CMD --help`` for every subcommand, generated from the command table."""

from __future__ import annotations

import importlib
import inspect

import pytest

from pst_yolo.cli import help_text, main
from pst_yolo.cli.commands import build_commands

COMMANDS = build_commands()


def _variants():
    return [(name, v) for name, cmd in COMMANDS.items() for v in (cmd, *cmd.variants.values())]


def test_top_level_help_lists_every_mode(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n  {name} " in out, name
    assert "train, val, predict, export" in out and "topk=" in out and "fine_train=" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("form", ["--help", "-h", "help"])
def test_every_subcommand_has_help_with_keys_and_defaults(name, form, capsys):
    assert main([name, form]) == 0
    out = capsys.readouterr().out
    assert out == help_text(name) + "\n"
    cmd = COMMANDS[name]
    sections = out.split("usage: ")[1:]  # one per variant (task=...), in order
    variants = (cmd, *cmd.variants.values())
    assert len(sections) == len(variants)
    for variant, section in zip(variants, sections):
        assert variant.api in section
        for key in variant.keys:
            line = next((ln for ln in section.splitlines() if ln.strip().startswith(key.name + " ")), None)
            assert line is not None, f"{name}: key {key.name} not listed"
            if key.required:
                assert line.rstrip().endswith("required"), line
            elif key.default is not None:
                assert f"default {key.default}" in line, line


@pytest.mark.parametrize("name,variant", _variants(), ids=lambda v: v if isinstance(v, str) else v.task)
def test_help_defaults_are_the_functions_defaults(name, variant):
    """Where a key is an argument of the Python function it wraps, the help shows that argument's default."""
    module, _, func = variant.api.split("(")[0].rpartition(".")
    params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    checked = 0
    for key in variant.keys:
        p = params.get(key.name)
        if p is None or p.default is inspect.Parameter.empty or key.default is None:
            continue
        if isinstance(key.default, (bool, int, float)) or (isinstance(p.default, str) and isinstance(key.default, str)):
            assert key.default == p.default, (
                f"{name} {key.name}: help says {key.default}, {variant.api} has {p.default}"
            )
            checked += 1
    assert checked or not variant.keys or name in ("synth", "coco2yolo", "configs")


def test_bench_help_shows_each_tasks_own_defaults():
    """The help's per-task benchmark defaults (kept in the command table, so help needs no torch) are the
    benchmark's own: models, and the epochs and batch of the embedded synthetic job."""
    from pst_yolo.cli.commands import BENCH_DEFAULTS
    from pst_yolo.eval.bench import TASKS

    assert set(BENCH_DEFAULTS) == set(TASKS) == {"detect", *COMMANDS["bench"].variants}
    for task, (models, epochs, batch, imgsz) in BENCH_DEFAULTS.items():
        spec = TASKS[task]
        assert (models, epochs, batch, imgsz) == (
            ",".join(spec.default_models),
            spec.main_epochs,
            spec.main_batch,
            spec.stock_imgsz,
        ), task


def test_unknown_task_and_mode_are_errors(cli):
    cli.error("bench", "task=depth", match="no task=depth; choose from detect, classify, segment, pose, obb")
    cli.error("synth", "task=depth", match="no task=depth; choose from detect, classify, segment, pose, obb")
    cli.error("frobnicate", match="unknown mode 'frobnicate'")
