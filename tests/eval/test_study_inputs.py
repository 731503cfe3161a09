"""pst-yolo study on files a user can edit or break: cell files of the wrong shape or copied under another
cell's name, report files the user wrote, out= naming a file, and two studies sharing one dataset."""

from __future__ import annotations

import json
import threading
import time

import pytest
from test_study import _fake_record, _write

from pst_yolo.data.synth import SynthSpec
from pst_yolo.eval import study
from pst_yolo.eval.study import grid

BROKEN = {
    "an empty object": {},
    "a list": [],
    "no results": {"results": []},
    "AP null": "null",
    "AP a string": '"NaN"',
}


def _cell(cell_id: str):
    return next(c for c in grid() if c.id == cell_id)


def _broken_record(kind: str, cell) -> object:
    if not isinstance(BROKEN[kind], str):
        return BROKEN[kind] if kind != "no results" else {**_fake_record(cell, {None: 0.5}), "results": []}
    rec = _fake_record(cell, {None: 0.5})
    rec["results"][0]["stats"]["AP"] = json.loads(BROKEN[kind])
    return rec


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_cell_file_of_the_wrong_shape_is_a_clear_error_everywhere(kind, tmp_path, cli, monkeypatch):
    cell = _cell("noise/yolo11n/s0")
    study.cells_dir(tmp_path).mkdir(parents=True)
    (study.cells_dir(tmp_path) / cell.file_name).write_text(json.dumps(_broken_record(kind, cell)))
    ran = []
    monkeypatch.setattr(study, "run_cell", lambda c, *a, **k: ran.append(c.id))
    for argv in (
        ("study", "list", f"project={tmp_path}"),
        ("study", "report", f"project={tmp_path}", f"out={tmp_path / 'rep'}"),
        ("study", "cells=noise/yolo11n/s0", f"project={tmp_path}"),
    ):
        err = cli.error(*argv, match=f"{cell.file_name} is not the result of study cell {cell.id}: .*delete it")
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert ran == []  # never skipped as "done", and nothing ran on top of it
    assert not (tmp_path / "rep").exists()


def test_a_cell_file_copied_under_another_name_is_not_counted(tmp_path, cli):
    _write(tmp_path, "noise/yolo11n/s0", {None: 0.611})
    cells = study.cells_dir(tmp_path)
    for other in ("noise/yolo11n/s1", "noise/yolo11n/s2"):  # s0's record under s1's and s2's names
        (cells / _cell(other).file_name).write_bytes((cells / _cell("noise/yolo11n/s0").file_name).read_bytes())
    cli.error("study", "report", f"project={tmp_path}", match="records cell 'noise/yolo11n/s0', not 'noise/yolo11n/s1'")
    rec = _fake_record(_cell("noise/yolo11n/s1"), {None: 0.6})
    rec["cell"]["seed"] = 0  # the right id, another seed
    (cells / _cell("noise/yolo11n/s1").file_name).write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="records seed 0, but the cell's seed is 1"):
        study.read_cell(tmp_path, _cell("noise/yolo11n/s1"))


@pytest.mark.parametrize("folder, at_least", [("accuracy", 26), ("accuracy/amd", 6)])
def test_the_committed_cells_pass_the_check(folder, at_least):
    """docs/accuracy: the study's machine (issue 14's 26 cells and what came since); docs/accuracy/amd: cells of
    another machine, with the controls they are paired with there."""
    from helpers import REPO

    project = REPO / "docs" / folder
    files = {p.name for p in study.cells_dir(project).glob("*.json")}
    committed = [c for c in grid() if c.file_name in files]
    assert len(committed) == len(files) >= at_least  # every file is a grid cell's
    assert all(study.read_cell(project, c) is not None for c in committed)
    if folder == "accuracy/amd":  # one machine's cells, so every pair in its report is a real one
        assert len({study.read_cell(project, c)["machine"] for c in committed}) == 1


def test_report_never_replaces_files_the_user_wrote(tmp_path, cli):
    _write(tmp_path, "noise/yolo11n/s0", {None: 0.5})
    out = tmp_path / "rep"
    out.mkdir()
    (out / "study.md").write_text("my notes")
    (out / "noise.png").write_bytes(b"my plot")
    cli.error("study", "report", f"project={tmp_path}", f"out={out}", match="study.md exists and pst-yolo did not")
    assert (out / "study.md").read_text() == "my notes" and (out / "noise.png").read_bytes() == b"my plot"
    assert sorted(p.name for p in out.iterdir()) == ["noise.png", "study.md"]  # nothing written at all

    (out / "study.md").unlink()
    cli.error("study", "report", f"project={tmp_path}", f"out={out}", match="noise.png exists")
    assert cli("study", "report", f"project={tmp_path}", f"out={out}", "overwrite=true") == 0
    assert (out / "noise.png").read_bytes()[:4] == b"\x89PNG"
    assert cli("study", "report", f"project={tmp_path}", f"out={out}") == 0  # its own files: replaced
    (out / "study.md").write_text((out / "study.md").read_text() + "my edit\n")  # edited since: the user's
    cli.error("study", "report", f"project={tmp_path}", f"out={out}", match="study.md exists")
    # the report written into project= (by run) is checked before any cell runs
    (tmp_path / "study.md").write_text("mine")
    cli.error("study", "cells=noise/yolo11n/s1", f"project={tmp_path}", match="study.md exists")
    assert (tmp_path / "study.md").read_text() == "mine" and study.read_cell(
        tmp_path, _cell("noise/yolo11n/s1")
    ) is None


def test_report_out_naming_a_file_is_a_clear_error(tmp_path, cli):
    _write(tmp_path, "noise/yolo11n/s0", {None: 0.5})
    (tmp_path / "a_file").write_text("x")
    err = cli.error(
        "study", "report", f"project={tmp_path}", f"out={tmp_path / 'a_file'}", match="is a file; give the folder"
    )
    assert "Traceback" not in err and (tmp_path / "a_file").read_text() == "x"


def test_a_second_study_waits_for_the_shared_dataset(tmp_path, capsys):
    """Two studies started together: the one that finds the dataset being generated waits for it (and then
    uses it), instead of exiting; past the bound it stops with a clear message."""
    from pst_yolo.data.writer import TargetBusyError, target_lock

    spec = SynthSpec(train=2, val=2, imgsz=32, seed=0)
    out = tmp_path / "data"
    held, release = threading.Event(), threading.Event()

    def other_study() -> None:  # holds the dataset's lock as a generating process does, then writes it
        with target_lock(out.resolve(), "synth"):
            held.set()
            release.wait(10)
        study._dataset(tmp_path, spec, verbose=False)

    with pytest.raises(TargetBusyError, match="waited 0 s"):
        with target_lock(out.resolve(), "synth"):
            study._dataset(tmp_path, spec, verbose=False, wait_s=0.0, poll_s=0.05)
    thread = threading.Thread(target=other_study)
    thread.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    t0 = time.monotonic()
    data = study._dataset(tmp_path, spec, verbose=False, wait_s=20.0, poll_s=0.05)
    thread.join(20)
    assert data == out / "data.yaml" and data.is_file() and time.monotonic() - t0 >= 0.4
    assert "another process is generating" in capsys.readouterr().out
