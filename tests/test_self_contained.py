"""The test suite needs nothing outside this repository: every fixture lives in tests/fixtures/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"

# Ways a test could reach outside the clone: a sibling folder (the development machine's ../shared),
# climbing above the repository root, or an absolute path of one particular machine.
OUTSIDE = [
    (re.compile(r"""["']\.\./"""), "a path that starts by climbing out (../)"),
    (re.compile(r"""["']shared["']"""), "a 'shared' folder"),
    (re.compile(r"""\bREPO\s*\.\s*parent\b"""), "the folder above the repository"),
    (re.compile(r"""parents\[\s*([2-9]|\d{2,})\s*\]"""), "a folder above the repository"),
    (re.compile(r"""["'](/work|/home|/root|/Users|/mnt|/data)/"""), "a machine-specific absolute path"),
]


def _test_sources() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("source", _test_sources(), ids=lambda p: p.name)
def test_no_test_refers_to_a_path_outside_the_repository(source: Path):
    hits = [
        f"{source.name}:{n}: {why}: {line.strip()}"
        for n, line in enumerate(source.read_text().splitlines(), 1)
        for pattern, why in OUTSIDE
        if pattern.search(line)
    ]
    assert not hits, (
        "tests must only read files inside the repository (copy fixtures to tests/fixtures/):\n" + "\n".join(hits)
    )


def test_the_checks_above_catch_an_outside_path():
    bad = 'GOLDEN = REPO.parent / "shared" / "fixtures" / "x.pt"'
    assert sum(bool(p.search(bad)) for p, _ in OUTSIDE) == 2
    assert any(p.search('open("../shared/fixtures/x.pt")') for p, _ in OUTSIDE)
    assert not any(p.search('f"out={images}/../.."') for p, _ in OUTSIDE)  # ".." inside a temporary folder is fine


@pytest.mark.parametrize(
    "name",
    [
        "official_pst_golden.pt",
        "authors_yolo11n_pst.pt",
        "authors_yolo11n_pst_record.pt",
        "authors_yolo11n_cls_pst.pt",
        "authors_yolo11n_cls_pst_record.pt",
        "README.md",
    ],
)
def test_fixtures_are_in_the_repository(name: str):
    path = FIXTURES / name
    assert path.is_file() and path.stat().st_size > 0, f"missing fixture {path}"
