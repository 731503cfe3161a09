"""The package layout: no import cycle between modules, nothing outside ``pst_yolo.cli`` imports it, every
module imports on its own in a fresh interpreter, and each subpackage imports only what docs/design.md allows."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "pst_yolo"

# What each part may import (docs/design.md); pst_yolo.__init__ (lazy names only) is left out.
ALLOWED = {
    "nn": {"nn", "integration.runtime"},
    "integration": {"integration", "nn", "data.writer"},  # (convert writes a checkpoint by the writer contract)
    "data": {"data", "integration.runtime"},
    "eval": {"eval", "data", "nn", "integration"},
    "viz": {"viz", "nn", "integration.runtime", "data.writer"},
    "cli": {"cli", "nn", "integration", "data", "eval", "viz"},
    "coco": {"eval"},  # the documented import path pst_yolo.coco.evaluate
    "pst": {"nn"},  # the layer's path in pst-yolo 0.1 checkpoints
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """pst_yolo modules imported anywhere in ``path`` (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:  # `from pst_yolo.nn import pst` -> pst_yolo.nn.pst; else the package
                name = name.rpartition(".")[0]
            if name.startswith("pst_yolo"):
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) - {m} for m, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle_between_modules():
    g = {m: deps - {"pst_yolo"} for m, deps in graph().items()}  # the lazy top-level package names things only
    assert find_cycle(g) is None, " -> ".join(find_cycle(g))


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_domain_module_imports_the_cli():
    offenders = {
        m: sorted(d for d in deps if d.startswith("pst_yolo.cli"))
        for m, deps in graph().items()
        if not m.startswith("pst_yolo.cli")
    }
    assert not {m: d for m, d in offenders.items() if d}


def test_each_part_imports_only_what_the_design_allows():
    wrong = {}
    for m, deps in graph().items():
        part = m.split(".")[1] if m.count(".") else None
        if part not in ALLOWED:
            continue
        for d in deps - {"pst_yolo"}:
            target = d.removeprefix("pst_yolo.")
            if not any(target == a or target.startswith(a + ".") for a in ALLOWED[part]):
                wrong.setdefault(m, []).append(d)
    assert not wrong, f"imports that cross the documented layering (docs/design.md): {wrong}"


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = [m for m in modules() if not m.endswith("__main__")]

    def alone(name: str) -> tuple[str, int, str]:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=300)
        return name, proc.returncode, proc.stderr[-1500:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(n, err) for n, rc, err in pool.map(alone, names) if rc != 0]
    assert not failed, failed
