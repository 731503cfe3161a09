"""The documentation site: mkdocs.yml's navigation covers docs/, the API page covers the public API, and
``mkdocs build --strict`` (broken links, anchors, references and docstrings are errors) passes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers import REPO

API_PAGE = (REPO / "docs" / "api.md").read_text()
DIRECTIVES = re.findall(r"^::: ([\w.]+)$", API_PAGE, re.M)
# What the API page must cover: pst_yolo's own names, the benchmark / study / evaluation / demo functions and
# the converters (COCO -> YOLO, the authors' checkpoints -> today's format).
REQUIRED = {
    "PST",
    "set_topk",
    "get_topk",
    "topk",
    "fine_training",
    "register",
    "bench",
    "compare",
    "evaluate",
    "run_study",
    "run_demo",
    "explain",
    "pst_yolo.data.coco2yolo.convert",
    "pst_yolo.integration.authors.convert",
}


def nav_pages(nav) -> list[str]:
    """Every Markdown file the navigation names, however deeply nested."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav for page in nav_pages(item)]


def test_navigation_covers_every_page():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    docs = REPO / config["docs_dir"]
    pages = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    assert sorted(nav_pages(config["nav"])) == sorted(pages)
    assert config["theme"]["name"] == "material" and config["strict"] is True


def test_docs_extra_is_pinned():
    """Every package of the ``docs`` extra has an exact version in constraints/docs.txt."""
    text = (REPO / "pyproject.toml").read_text()
    extra = re.search(r"^docs = \[(.*)\]$", text, re.M)
    assert extra, "pyproject.toml has no docs extra"
    wanted = {re.split(r"[\[<>=]", req.strip().strip('"'))[0].lower() for req in extra.group(1).split(",")}
    wanted.add("mkdocstrings-python")  # what mkdocstrings[python] installs
    pins = {
        line.split("==")[0].lower()
        for line in (REPO / "constraints" / "docs.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert wanted <= pins, f"constraints/docs.txt lacks {sorted(wanted - pins)}"


@pytest.mark.parametrize("target", DIRECTIVES)
def test_api_reference_names_real_objects(target):
    module, _, name = target.rpartition(".")
    assert hasattr(importlib.import_module(module), name), f"docs/api.md: {target} does not exist"


def test_api_reference_covers_the_public_api():
    import pst_yolo
    from pst_yolo.cli.commands import build_commands

    names = set(DIRECTIVES) | {d.rpartition(".")[2] for d in DIRECTIVES}
    assert not REQUIRED - names, f"docs/api.md lacks {sorted(REQUIRED - names)}"
    for name in ("PST", "set_topk", "get_topk", "topk", "fine_training", "register", "convert"):
        obj = getattr(pst_yolo, name)
        assert f"{obj.__module__}.{name}" in DIRECTIVES, f"pst_yolo.{name} is {obj.__module__}.{name}"
    # every pst-yolo subcommand wraps a function documented there (the page says so)
    apis = {variant.api.split("(")[0] for cmd in build_commands().values() for variant in (cmd, *cmd.variants.values())}
    assert not apis - set(DIRECTIVES), (
        f"subcommand functions missing from docs/api.md: {sorted(apis - set(DIRECTIVES))}"
    )


def missing_docs_packages() -> list[str]:
    """The packages of the ``docs`` extra that this environment lacks."""
    missing = []
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


MISSING = missing_docs_packages()


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the docs extra is not installed (missing {MISSING}): "
    'pip install -e ".[docs]" -c constraints/latest.txt -c constraints/docs.txt',
)
def test_site_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("set_topk", "fine_training", "run_demo", "Pyramid Sparse Transformer"):
        assert name in api, f"the API page has no {name}"
