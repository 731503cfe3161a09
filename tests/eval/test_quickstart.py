"""``pst-yolo quickstart`` runs offline, explains the raw-output line it prints and ends with what to do next."""

from __future__ import annotations

import shlex

from pst_yolo.eval.quickstart import NEXT_STEP, run


def test_quickstart_explains_its_output_and_names_a_next_step(capsys):
    results = run(imgsz=128)
    out = capsys.readouterr().out
    assert set(results) == {0, 8, "max_abs_diff"} and results["max_abs_diff"] > 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("max |raw output"))
    explanation = " ".join(lines[at + 1 : at + 4])
    assert "raw head outputs" in explanation and "random" in explanation and "accuracy" in explanation
    assert out.rstrip().endswith(NEXT_STEP.strip()) and "pst-yolo bench" in NEXT_STEP


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
