"""The ``pst-yolo`` console command: ``yolo``'s ``key=value`` syntax, plus pst-yolo's own subcommands.

    pst-yolo train model=yolo11n-pst.yaml data=coco8.yaml   # stock modes go to Ultralytics unchanged
    pst-yolo quickstart                                     # build yolo11n-pst, run it on bundled images
    pst-yolo synth out=datasets/synth train=64 val=16 imgsz=128 seed=0

Each subcommand is a thin wrapper over a Python function (named in its help line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

STOCK_MODES = ("train", "val", "predict", "export", "track", "benchmark")
STOCK_TASKS = ("detect", "segment", "classify", "pose", "obb")


class CLIError(ValueError):
    """Bad command-line input; the message says what to fix."""


def parse_kv(args: Sequence[str], allowed: dict[str, Callable[[str], Any]], command: str) -> dict[str, Any]:
    """Parse ``key=value`` words; ``allowed`` maps each key to a converter. Unknown keys are an error."""
    out: dict[str, Any] = {}
    for word in args:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CLIError(f"'{word}' is not key=value; `pst-yolo {command}` takes: {', '.join(allowed)}")
        if key not in allowed:
            raise CLIError(f"unknown key '{key}' for `pst-yolo {command}`; valid keys: {', '.join(allowed)}")
        try:
            out[key] = allowed[key](value)
        except ValueError as e:
            raise CLIError(f"{key}={value}: {e}") from e
    return out


# Value converters for parse_kv, shared by every subcommand.
def to_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def str_list(value: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``."""
    return [v for v in (x.strip() for x in value.split(",")) if v]


def int_list(value: str) -> list[int]:
    """``"0,8"`` -> ``[0, 8]``."""
    try:
        return [int(v) for v in str_list(value)]
    except ValueError as e:
        raise ValueError("expected comma-separated integers, e.g. 0,8") from e



# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------
def _require_pst_layers(model: str | None) -> None:
    """``topk=`` on a model without PST layers would silently do nothing: refuse instead."""
    if not model:
        return  # Ultralytics picks its default model, which has no PST layers
    from ultralytics import YOLO

    from pst_yolo.toggle import pst_layers

    if not pst_layers(YOLO(model)):
        raise CLIError(f"topk= was given, but model={model} has no PST layers; drop topk= or use a PST model")


def cmd_stock(argv: list[str]) -> int:
    """Hand a stock mode to Ultralytics' own CLI entry point, exactly as ``yolo`` would.

    ``topk=K`` becomes ``PST_TOPK=K`` and ``fine_train=...`` becomes ``PST_FINE_TRAIN`` for this
    process and the ones it starts (DDP workers), since Ultralytics rejects keys it does not know.
    """
    import os

    from pst_yolo.fine_train import ENV_FINE_TRAIN, FineTrainSchedule
    from pst_yolo.integration import register
    from pst_yolo.policy import ENV_TOPK, parse_topk

    ours = {"topk": None, "fine_train": None}
    rest = []
    for word in argv:
        key, sep, value = word.partition("=")
        if sep and key in ours:
            ours[key] = value
        else:
            rest.append(word)
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
        _require_pst_layers(next((w.partition("=")[2] for w in rest if w.startswith("model=")), None))
    from ultralytics.cfg import entrypoint

    argv = rest

    # Ultralytics keeps a reference to sys.argv taken at import (ultralytics.utils.ARGV): edit in place.
    saved = list(sys.argv)
    sys.argv[:] = ["yolo", *argv]
    try:
        entrypoint()
    finally:
        sys.argv[:] = saved
    return 0


def cmd_quickstart(argv: list[str]) -> int:
    """pst_yolo.quickstart.run(): build a PST model, print its summary, run it on bundled images."""
    from pst_yolo.quickstart import run

    opts = parse_kv(argv, {"model": str, "imgsz": int, "topk": int, "device": str}, "quickstart")
    run(**opts)
    return 0


def _wants_classify(argv: list[str]) -> bool:
    """``task=classify`` (or ``--task classify``) among the words."""
    words = [w.lstrip("-") for w in argv]
    return "task=classify" in words or any(a == "task" and b == "classify" for a, b in zip(words, words[1:]))


def cmd_configs(argv: list[str]) -> int:
    """pst_yolo.configs.config_rows(): params/GFLOPs of every shipped config and its stock twin."""
    from pst_yolo.configs import config_rows, markdown_table

    opts = parse_kv(argv, {"imgsz": int}, "configs")  # default: 640 detect, 224 classify
    print(markdown_table(config_rows(**opts)))
    return 0


def cmd_synth(argv: list[str]) -> int:
    """pst_yolo.synth.generate() (detection, YOLO + COCO formats) or, with task=classify,
    pst_yolo.classify.generate_classify() (ImageFolder)."""
    if _wants_classify(argv):
        from pst_yolo.classify import cli_synth_classify

        return cli_synth_classify(argv)
    from pst_yolo.synth import cli_synth

    return cli_synth(argv)


def cmd_bench(argv: list[str]) -> int:
    """pst_yolo.bench.bench() (detection, pycocotools AP) or, with task=classify,
    pst_yolo.classify.bench_classify() (top-1/top-5)."""
    if _wants_classify(argv):
        from pst_yolo.classify import cli_bench_classify

        return cli_bench_classify(argv)
    from pst_yolo.bench import cli_bench

    return cli_bench(argv)


def cmd_coco2yolo(argv: list[str]) -> int:
    """pst_yolo.coco2yolo.convert(): COCO instances JSON + images -> Ultralytics dataset + id mapping."""
    from pst_yolo.coco2yolo import cli_coco2yolo

    return cli_coco2yolo(argv)


def cmd_evaluate(argv: list[str]) -> int:
    """pst_yolo.coco.evaluate(): official pycocotools bbox AP of a model on any COCO-format dataset."""
    from pst_yolo.coco import cli_evaluate

    return cli_evaluate(argv)


def cmd_speed(argv: list[str]) -> int:
    """pst_yolo.speed.speed(): latency / memory / FLOPs table against the first model."""
    from pst_yolo.speed import cli_speed

    return cli_speed(argv)


def cmd_compare(argv: list[str]) -> int:
    """pst_yolo.compare.compare(): validate the same weights at each k and print one table."""
    from pst_yolo.compare import compare, markdown_table

    keys = {"model": str, "data": str, "topk": int_list, "imgsz": int, "batch": int, "device": str,
            "workers": int, "split": str, "save_dir": str}
    opts = parse_kv(argv, keys, "compare")
    missing = [k for k in ("model", "data") if k not in opts]
    if missing:
        raise CLIError(f"`pst-yolo compare` needs {' and '.join(k + '=' for k in missing)}, "
                       "e.g. pst-yolo compare model=best.pt data=coco8.yaml topk=0,4,8,16")
    try:
        rows = compare(**opts)
    except ValueError as e:
        raise CLIError(str(e)) from e
    print(markdown_table(rows))
    return 0


def cmd_demo(argv: list[str]) -> int:
    """pst_yolo.demo.run_demo(): live detection window (or headless video) with k and the attention overlay."""
    from pst_yolo.demo import cli_demo

    return cli_demo(argv)


def cmd_explain(argv: list[str]) -> int:
    """pst_yolo.explain.explain(): one PNG per image, a panel per PST layer, from the detecting pass."""
    from pst_yolo.explain import cli_explain

    return cli_explain(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "bench": cmd_bench,
    "coco2yolo": cmd_coco2yolo,
    "evaluate": cmd_evaluate,
    "speed": cmd_speed,
    "compare": cmd_compare,
    "demo": cmd_demo,
    "explain": cmd_explain,
    "quickstart": cmd_quickstart,
    "configs": cmd_configs,
    "synth": cmd_synth,
}

USAGE = f"""usage: pst-yolo MODE key=value ...

pst-yolo's own modes:
  quickstart   build yolo11n-pst, print its summary, run it on Ultralytics' bundled images (no downloads)
  compare      validate one model at several top-k: pst-yolo compare model=best.pt data=... topk=0,4,8,16
  demo         live detection (window, or headless video) with k and attention overlay: pst-yolo demo source=0 model=best.pt
  explain      what the fine branch looks at, a panel per PST layer: pst-yolo explain image=bus.jpg model=best.pt
  configs      params and GFLOPs of the shipped PST configs next to the stock models: pst-yolo configs imgsz=640
  synth        write a synthetic dataset: pst-yolo synth OUT train=64 val=16 imgsz=128 seed=0  (task=classify: ImageFolder)
  bench        train/load models, official COCO AP at each k, results.md/csv/png (task=classify: top-1/top-5);
               with no arguments: the embedded main job (synthetic data, yolo11n vs yolo11n-pst at k=0,8)
  evaluate     pycocotools AP of one model on a COCO-format dataset: pst-yolo evaluate model=best.pt images=... annotations=...
  coco2yolo    COCO instances JSON(s) + images -> Ultralytics dataset and class/category mapping
  speed        latency/memory/GFLOPs vs the first model: pst-yolo speed models=yolo11n.yaml,yolo11n-pst.yaml runtime=torch,onnx

Ultralytics modes, passed through unchanged (with PST models registered):
  {', '.join(STOCK_MODES)}  (optionally after a task: {', '.join(STOCK_TASKS)})
  e.g. pst-yolo train model=yolo11n-pst.yaml data=coco8.yaml epochs=1
  plus two keys of pst-yolo's own:
    topk=K        inference top-k of every PST layer (0 = coarse only; default: the checkpoint's, 8 for new models)
    fine_train=X  fine-aware training: N = fine branch in the last N epochs, P in (0,1] = on that share of batches
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    mode = args[0]
    try:
        if mode in COMMANDS:
            return COMMANDS[mode](args[1:])
        if mode in STOCK_MODES or mode in STOCK_TASKS or "=" in mode:
            return cmd_stock(args)
        raise CLIError(f"unknown mode '{mode}'. Valid modes: {', '.join([*COMMANDS, *STOCK_MODES])}")
    except CLIError as e:
        print(f"pst-yolo: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
