"""The ``pst-yolo`` console command: ``yolo``'s ``key=value`` syntax, plus pst-yolo's own subcommands.

    pst-yolo train model=yolo11n-pst.yaml data=coco8.yaml   # stock modes go to Ultralytics unchanged
    pst-yolo quickstart                                     # build yolo11n-pst, run it on bundled images
    pst-yolo synth out=datasets/synth train=64 val=16 imgsz=128 seed=0
    pst-yolo bench --help                                   # every subcommand lists its keys and defaults

Each subcommand is a thin wrapper over a Python function (``pst_yolo.cli.commands``, which also names it
in the help). Nothing outside this package imports it.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Optional, Sequence

from pst_yolo.cli.args import HELP_WORDS, CLIError, normalize_argv, parse_kv
from pst_yolo.cli.commands import STOCK_KEYS, STOCK_MODES, STOCK_TASKS, Command, build_commands

__all__ = ("CLIError", "help_text", "main")


# --------------------------------------------------------------------------------------------------
# Help
# --------------------------------------------------------------------------------------------------
def _key_lines(cmd: Command) -> list[str]:
    width = max((len(k.name) for k in cmd.keys), default=0)
    lines = []
    for k in cmd.keys:
        default = "required" if k.required else ("-" if k.default is None else f"default {k.default}")
        lines.append(f"  {k.name:<{width}}  {k.help}{'; ' if k.help else ''}{default}")
    return lines


def help_text(name: Optional[str] = None) -> str:
    """``pst-yolo --help`` (no name) or ``pst-yolo NAME --help``, generated from the command table."""
    commands = build_commands()
    if name is None:
        width = max(len(n) for n in commands)
        lines = [
            "usage: pst-yolo MODE key=value ...",
            "",
            "pst-yolo's own modes (pst-yolo MODE --help lists the keys):",
        ]
        lines += [f"  {n:<{width}}  {c.summary}" for n, c in commands.items()]
        lines += [
            "",
            "Ultralytics modes, passed through unchanged (with PST models registered):",
            f"  {', '.join(STOCK_MODES)}  (optionally after a task: {', '.join(STOCK_TASKS)})",
            "  e.g. pst-yolo train model=yolo11n-pst.yaml data=coco8.yaml epochs=1",
            "  plus two keys of pst-yolo's own:",
        ]
        lines += [f"    {k.name}=...  {k.help}; default {k.default}" for k in STOCK_KEYS]
        return "\n".join(lines) + "\n"
    cmd = commands[name]
    out = []
    for variant in (cmd, *cmd.variants.values()):
        head = f"pst-yolo {name}" + ("" if variant is cmd else f" task={variant.task}")
        positional = "".join(f" [{key.upper()}]" for key in variant.positionals)
        out += [
            f"usage: {head}{positional} key=value ...",
            "",
            f"{variant.summary}.",
            f"Python: {variant.api}",
            "",
            "keys (also --key value):",
            *_key_lines(variant),
        ]
        if variant.example:
            out += ["", f"example: {variant.example}"]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------
def _choose_variant(cmd: Command, words: list[str]) -> tuple[Command, list[str]]:
    """The variant a ``task=`` word selects (the word removed), else the command itself."""
    rest, task = [], None
    for w in words:
        key, sep, value = w.partition("=")
        if sep and key == "task":
            task = value
        else:
            rest.append(w)
    if task is None or task == cmd.task:
        return cmd, rest
    if task in cmd.variants:
        return cmd.variants[task], rest
    choices = ", ".join([cmd.task, *cmd.variants])
    raise CLIError(f"`pst-yolo {cmd.name}` has no task={task}; choose from {choices}")


def run_command(name: str, words: Sequence[str]) -> int:
    """Parse ``words`` for subcommand ``name`` and run it; errors in the input raise CLIError."""
    cmd = build_commands()[name]
    words = normalize_argv(words)
    cmd, words = _choose_variant(cmd, words)
    n = 0  # leading bare words
    while n < min(len(cmd.positionals), len(words)) and "=" not in words[n]:
        n += 1
    words = [f"{key}={word}" for key, word in zip(cmd.positionals, words[:n])] + words[n:]
    opts = parse_kv(words, cmd.keys, cmd.name if cmd.task == "detect" else f"{cmd.name} task={cmd.task}")
    for key in cmd.keys:  # a key whose default is a plain value the API does not supply itself
        if key.name in cmd.positionals and key.name not in opts and key.default is not None:
            opts[key.name] = key.default
    return cmd.run(opts)


def run_stock(words: list[str]) -> int:
    """Hand a stock mode to Ultralytics' own command line, exactly as ``yolo`` would.

    ``topk=K`` becomes ``PST_TOPK=K`` and ``fine_train=...`` becomes ``PST_FINE_TRAIN`` for this process and
    the ones it starts (DDP workers), since Ultralytics rejects keys it does not know.
    """
    from pst_yolo.integration.registry import register
    from pst_yolo.integration.runtime import run_yolo_cli
    from pst_yolo.nn.fine_train import ENV_FINE_TRAIN, FineTrainSchedule
    from pst_yolo.nn.topk import ENV_TOPK, parse_topk, pst_layers

    ours = {k.name: None for k in STOCK_KEYS}
    rest = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in ours:
            ours[key] = value
        else:
            rest.append(word)
    model = next((w.partition("=")[2] for w in rest if w.startswith("model=")), None)
    if ours["topk"] is not None and not model:  # Ultralytics would fall back to its default model: no PST layers
        raise CLIError("topk= needs model= (a PST checkpoint or config, e.g. model=yolo11n-pst.yaml)")
    try:
        if ours["topk"] is not None:
            os.environ[ENV_TOPK] = str(parse_topk(ours["topk"], source="topk"))
        if ours["fine_train"] is not None:
            FineTrainSchedule.parse(ours["fine_train"])
            os.environ[ENV_FINE_TRAIN] = ours["fine_train"]
    except ValueError as e:
        raise CLIError(str(e)) from e
    register()
    if ours["topk"] is not None:
        from ultralytics import YOLO

        if not pst_layers(YOLO(model)):  # topk= on a model without PST layers would silently do nothing
            raise CLIError(f"topk= was given, but model={model} has no PST layers; drop topk= or use a PST model")
    run_yolo_cli(rest)
    return 0


ONE_LINE_WARNINGS = ("ImageSizeWarning",)  # pst-yolo's own warnings meant for the user: no file:line, no source


def _one_line_warnings(mode: str):
    """A ``warnings.showwarning`` that prints pst-yolo's user-facing warnings as one line naming the mode."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__name__ in ONE_LINE_WARNINGS:
            print(f"pst-yolo {mode}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``pst-yolo`` entry point: 0 on success, 2 for bad input (message on stderr), 1 when the run failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args[0] if args else "")
        return _main(args)


def _main(args: list[str]) -> int:
    from pst_yolo.viz.common import DemoError

    if not args or args[0] in HELP_WORDS:
        print(help_text())
        return 0
    mode, words = args[0], args[1:]
    commands = build_commands()
    try:
        if mode in commands:
            if any(w in HELP_WORDS for w in words[:1]) or "--help" in words:
                print(help_text(mode))
                return 0
            return run_command(mode, words)
        if mode in STOCK_MODES or mode in STOCK_TASKS or "=" in mode:
            return run_stock(args)
        raise CLIError(f"unknown mode '{mode}'. Valid modes: {', '.join([*commands, *STOCK_MODES])}")
    except (CLIError, ValueError, FileNotFoundError, DemoError) as e:  # bad input: the message says what to fix
        # (DemoError: a source, model or setting the demo, app or explain cannot use: bad input like the rest)
        print(f"pst-yolo {mode}: error: {one_line(e)}", file=sys.stderr)
        return 2


def one_line(error: BaseException) -> str:
    """An error's message as one line: its first, which says what is wrong (Ultralytics' device errors, for
    one, append lines of torch diagnostics that would bury it)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
