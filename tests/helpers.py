"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path, see pyproject.toml)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


class CLI:
    """``pst-yolo`` run in-process through ``pst_yolo.cli.main``."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> int:
        from pst_yolo.cli import main

        return main([str(a) for a in argv])

    def error(self, *argv: str, match: str, rc: int = 2) -> str:
        self.capsys.readouterr()
        got = self(*argv)
        err = self.capsys.readouterr().err
        assert got == rc, f"exit code {got} (expected {rc}) for {argv}; stderr: {err}"
        assert re.search(match, err), f"{match!r} not in stderr: {err}"
        return err


def tree_state(root: Path) -> dict[str, str]:
    """What is under ``root`` (hidden entries too): relative path -> sha256 of a file's bytes, ``link:<target>``
    for a symlink (not followed), ``dir`` for a folder. Equal states: nothing was added, removed or changed."""
    import hashlib
    import os

    state = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                state[rel] = f"link:{os.readlink(p)}"
            elif p.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state
