"""The README and the pages in docs/ say what the code does: every code block in them is run or checked.

- The README's "Try it offline" blocks run as written, in order, in one empty folder, with no network.
- Every other ```python block runs (datasets that would need a download swapped for a generated set,
  schedules shortened); every block compiles.
- Every ```bash block passes ``bash -n``, and every ``pst-yolo`` line in it that calls one of pst-yolo's own
  subcommands parses against that subcommand's keys (so a renamed or misspelt key fails here).
- Relative links resolve (file and heading), repository paths named in backticks exist, and the README's two
  set-up commands are the ones .ci/run runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import FIXTURES, REPO

README_PATH = REPO / "README.md"
README = README_PATH.read_text()
PAGES = [README_PATH, *sorted((REPO / "docs").rglob("*.md"))]
OFFLINE = "## Try it offline"  # the README section whose blocks run exactly as written
LANGUAGES = ("python", "bash")

# README text -> what the test runs instead. Keys are matched literally, longest first.
DOWNLOADS = ("coco8.yaml", "coco.yaml", "val2017", "annotations/instances_val2017.json")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the first code line
    lang: str
    code: str
    section: str  # the "## " heading above it

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its language and the level-2 heading it sits under."""
    blocks, lines, section = [], path.read_text().splitlines(), ""
    i = 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i].strip()
        if lines[i].startswith("```"):
            lang, start, body = lines[i][3:].strip(), i + 1, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", section))
        i += 1
    return blocks


BLOCKS = [b for page in PAGES for b in code_blocks(page)]


def blocks(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


def shell_block_after(heading: str) -> list[str]:
    """Lines of the first ```bash block after ``heading`` in the README."""
    after = README[README.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, f"no bash block after {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# The README as a front page, and its set-up commands
# --------------------------------------------------------------------------------------------------
def test_ci_runs_the_readme_test_command_exactly():
    test_cmd = shell_block_after("**2. Tests**")
    assert len(test_cmd) == 1
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_cmd[0].strip() in ci, f".ci/run must run README command 2 exactly: {test_cmd[0]}"


def test_readme_commands_pin_the_tested_versions():
    for heading in ("**1. Main job**", "**2. Tests**"):
        assert "-c constraints/latest.txt" in shell_block_after(heading)[0]
    assert (REPO / "constraints" / "latest.txt").is_file() and (REPO / "constraints" / "oldest.txt").is_file()


def test_readme_is_a_front_page():
    """Short, with the sections a newcomer looks for; the evidence on whether PST helps links its source."""
    lines = README.splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move details into docs/"
    headings = [line for line in lines if line.startswith("## ")]
    for wanted in ("## Install", "## Should I use PST?", OFFLINE, "## Your own data", "## Documentation"):
        assert wanted in headings, wanted
    verdict = README.split("## Should I use PST?")[1].split("\n## ")[0]
    assert "(docs/accuracy.md)" in verdict and len(verdict.strip().splitlines()) <= 12
    offline = [b for b in code_blocks(README_PATH) if b.section == OFFLINE]
    assert [b.lang for b in offline] == ["bash", "python", "python"]  # CLI, Python, the k switch
    assert not any(f"{name}" in b.code for b in offline for name in DOWNLOADS if name != "coco8.yaml")
    assert "pst-yolo synth" in offline[0].code


# --------------------------------------------------------------------------------------------------
# Checks on every block (fast)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_block_language_is_one_the_tests_check(block):
    assert block.lang in LANGUAGES, f"{block.name}: ```{block.lang}: the tests check {LANGUAGES}; add a check here"


@pytest.mark.parametrize("block", blocks("python"), ids=lambda b: b.name)
def test_python_block_compiles(block):
    compile(block.code, block.name, "exec")


@pytest.mark.parametrize("block", blocks("bash"), ids=lambda b: b.name)
def test_bash_block_is_valid_shell(block):
    r = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert r.returncode == 0, f"{block.name}: {r.stderr}"


def command_lines(code: str) -> list[list[str]]:
    """The words of each command in a shell block (continuations joined, comments and VAR=value prefixes dropped)."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part, comments=True)
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                words = words[1:]
            if words:
                out.append(words)
    return out


def pst_yolo_calls() -> list[tuple[str, list[str]]]:
    from pst_yolo.cli.commands import build_commands

    own = build_commands()
    return [
        (b.name, words[1:])
        for b in blocks("bash")
        for words in command_lines(b.code)
        if Path(words[0]).name == "pst-yolo" and len(words) > 1 and words[1] in own
    ]


def test_docs_call_pst_yolo_subcommands():
    """The parse check below has something to check in every page that shows ``pst-yolo`` commands."""
    names = {name.split(":")[0] for name, _ in pst_yolo_calls()}
    assert {"README.md", "docs/guide.md", "docs/models.md", "docs/accuracy.md"} <= names


@pytest.mark.parametrize("name,words", pst_yolo_calls(), ids=lambda v: v if isinstance(v, str) else "")
def test_pst_yolo_line_parses(name, words):
    """Keys and values as ``pst-yolo`` would parse them, without running the command."""
    from pst_yolo.cli import HELP_WORDS, _choose_variant
    from pst_yolo.cli.args import normalize_argv, parse_kv
    from pst_yolo.cli.commands import build_commands

    cmd, rest = build_commands()[words[0]], words[1:]
    if rest[:1] and rest[0] in HELP_WORDS:
        return
    if cmd.name == "study" and rest[:1] in (["list"], ["report"]):  # study's sub-actions
        rest = rest[1:]
    cmd, rest = _choose_variant(cmd, normalize_argv(rest))
    n = 0
    while n < min(len(cmd.positionals), len(rest)) and "=" not in rest[n]:
        n += 1
    rest = [f"{key}={word}" for key, word in zip(cmd.positionals, rest[:n])] + rest[n:]
    parse_kv(rest, cmd.keys, cmd.name)  # raises CLIError naming the key


def test_the_parse_check_catches_a_wrong_key():
    from pst_yolo.cli.args import CLIError

    with pytest.raises(CLIError, match="epoch"):
        test_pst_yolo_line_parses("x", ["bench", "epoch=3"])


# --------------------------------------------------------------------------------------------------
# Links and paths
# --------------------------------------------------------------------------------------------------
def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (and GitHub, for these headings) gives a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def relative_links(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    return [tuple(link.partition("#")[::2]) for link in links if not re.match(r"^[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for target, anchor in relative_links(page):
        dest = (page.parent / target).resolve() if target else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}#{anchor}: no such heading")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


REPO_PATH = re.compile(r"`((?:pst_yolo|scripts|cfg|constraints|tests|docs)/[\w./-]*)`")
INSTALLED_ONLY = {"pst_yolo/cfg"}  # the wheel's copy of cfg/ (pyproject.toml, force-include)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_paths_named_exist(page):
    """`pst_yolo/integration/compat.py`, `docs/export.md`, ...: a moved or renamed file is caught here."""
    missing = sorted(
        {
            p
            for p in REPO_PATH.findall(page.read_text())
            if p.rstrip("/") not in INSTALLED_ONLY and not (REPO / p.rstrip("/")).exists()
        }
    )
    assert not missing, f"{page.relative_to(REPO)} names paths that do not exist: {missing}"


def test_the_path_check_catches_a_stale_module():
    assert REPO_PATH.findall("listed in `pst_yolo/integration.py`") == ["pst_yolo/integration.py"]
    assert not (REPO / "pst_yolo" / "integration.py").exists()


# --------------------------------------------------------------------------------------------------
# Running the blocks (slow)
# --------------------------------------------------------------------------------------------------
def user_env(tmp: Path) -> dict[str, str]:
    """A user's shell in ``tmp``: pst-yolo and yolo on PATH, no network, fresh Ultralytics settings whose runs
    land in ``tmp/runs``, and nothing that tells Ultralytics a test is running (it would move runs/ into its
    own installation)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    settings = tmp / ".settings"
    settings.mkdir()
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        YOLO_CONFIG_DIR=str(settings),
        YOLO_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    dirs = {key: tmp / key.split("_")[0] for key in ("runs_dir", "datasets_dir", "weights_dir")}
    words = [f"{key}={path}" for key, path in dirs.items()] + ["sync=False"]
    subprocess.run(["yolo", "settings", *words], env=env, cwd=tmp, check=True, capture_output=True, timeout=300)
    return env


@pytest.mark.slow
def test_readme_offline_section_runs_as_written(tmp_path):
    """The CLI, Python and k-switch snippets, in order, in one empty folder: nothing swapped, nothing downloaded."""
    env = user_env(tmp_path)
    outputs = []
    for block in (b for b in code_blocks(README_PATH) if b.section == OFFLINE):
        argv = (
            ["bash", "-euo", "pipefail", "-c", block.code]
            if block.lang == "bash"
            else [sys.executable, "-c", block.code]
        )
        r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=1800)
        assert r.returncode == 0, f"{block.name} failed:\n{block.code}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        outputs.append(r.stdout)
    assert (tmp_path / "datasets" / "synth" / "data.yaml").is_file()
    assert (tmp_path / "runs" / "pst" / "weights" / "best.pt").is_file()  # the CLI's run (project=$PWD/runs)
    assert (tmp_path / "runs" / "detect" / "train" / "weights" / "best.pt").is_file()  # the Python snippet's
    table = [line for line in outputs[0].splitlines() if line.startswith("|")]
    assert [line.split("|")[1].strip() for line in table[2:]] == ["0", "8"], outputs[0][-2000:]
    for out in outputs[1:]:  # each Python snippet prints a mAP50-95
        assert 0.0 <= float(out.strip().splitlines()[-1]) <= 1.0


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, str]:
    """Generated stand-ins for what the snippets name: a dataset, its COCO JSON, trained weights."""
    from ultralytics import YOLO

    from pst_yolo.data.synth import SynthSpec, generate

    root = tmp_path_factory.mktemp("readme")
    data_yaml = generate(root / "data", SynthSpec(train=8, val=4, imgsz=64, seed=1))
    model = YOLO("yolo11n-pst.yaml")
    model.train(
        data=str(data_yaml),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        device="cpu",
        plots=False,
        val=False,
        project=str(root / "runs"),
        name="train",
        exist_ok=True,
        verbose=False,
        amp=False,
    )
    best = Path(model.trainer.best if Path(model.trainer.best).is_file() else model.trainer.last)
    val_json = root / "data" / "annotations" / "instances_val.json"
    return {
        '"coco8.yaml"': f'"{data_yaml}"',
        '"coco.yaml"': f'"{data_yaml}"',
        '"runs/detect/train/weights/best.pt"': f'"{best}"',
        '"best.pt"': f'"{best}"',
        '"annotations/instances_val2017.json"': f'"{val_json}"',
        '"val2017"': f'"{root / "data" / "images" / "val"}"',
        "epochs=100": "epochs=1",
        "imgsz=640": "imgsz=64",
        '"path/to/their_weights.pt"': f'"{FIXTURES / "authors_yolo11n_pst.pt"}"',  # a checkpoint of the authors' fork
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "block", [b for b in blocks("python") if b.section != OFFLINE or b.path != README_PATH], ids=lambda b: b.name
)
def test_python_block_runs(block, stand_ins, tmp_path):
    code = block.code
    for old in sorted(stand_ins, key=len, reverse=True):
        code = code.replace(old, stand_ins[old])
    leftover = [name for name in DOWNLOADS if f'"{name}"' in code]
    assert not leftover, f"{block.name}: add a stand-in for {leftover} to this test"
    env = user_env(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, f"{block.name} failed:\n{code}\n{r.stderr[-3000:]}"
