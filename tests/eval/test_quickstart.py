"""``pst-yolo quickstart`` runs offline, explains the raw-output line it prints and ends with what to do next."""

from __future__ import annotations

import shlex

from pst_yolo.eval.quickstart import NEXT_STEP, run


def _explanation(out: str) -> str:
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("max |raw output"))
    return " ".join(lines[at + 1 : at + 6])


def test_quickstart_explains_its_output_and_names_a_next_step(capsys, monkeypatch):
    monkeypatch.delenv("PST_INIT", raising=False)
    results = run(imgsz=128)  # a fresh model: its PST layers start as the identity, so k changes nothing yet
    out = capsys.readouterr().out
    assert set(results) == {0, 8, "max_abs_diff", "fresh_identity"}
    assert results["max_abs_diff"] == 0 and results["fresh_identity"]
    explanation = _explanation(out)
    assert "raw head outputs" in explanation and "start as the identity" in explanation and "trained" in explanation
    assert out.rstrip().endswith(NEXT_STEP.strip()) and "pst-yolo bench" in NEXT_STEP


def test_quickstart_shows_the_fine_branch_act_with_the_authors_start(capsys, monkeypatch):
    monkeypatch.setenv("PST_INIT", "authors")  # what its explanation offers: attention that adds to the output
    results = run(imgsz=128)
    assert results["max_abs_diff"] > 0 and not results["fresh_identity"]
    explanation = _explanation(capsys.readouterr().out)
    assert "changes the result" in explanation and "random" in explanation and "accuracy" in explanation


def test_next_step_commands_are_real():
    """The commands it suggests parse as pst-yolo would parse them (keys and values)."""
    from pst_yolo.cli.args import parse_kv
    from pst_yolo.cli.commands import build_commands

    commands = [line.split("#")[0].strip() for line in NEXT_STEP.splitlines()[2:]]
    assert any(c.startswith("pst-yolo synth") for c in commands)
    own = build_commands()
    for command in commands:
        words = shlex.split(command)
        assert words[0] in ("pst-yolo", "yolo")
        if words[0] == "pst-yolo":
            cmd, rest = own[words[1]], words[2:]
            lead = [w for w in rest if "=" not in w][: len(cmd.positionals)]  # bare words: positional keys
            keyed = [f"{key}={w}" for key, w in zip(cmd.positionals, lead)] + [w for w in rest if "=" in w]
            parse_kv(keyed, cmd.keys, cmd.name)  # raises on an unknown key or a bad value
