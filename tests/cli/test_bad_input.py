"""Bad input on the command line: for every command, values out of range, wrong types, huge numbers, empty
values, and paths that are files, folders or missing give one line saying what is wrong, exit status 2, and
no traceback (nothing is run and nothing is written)."""

from __future__ import annotations

import pytest

from helpers import tree_state

CASES = [
    ("compare model=yolo11n-pst.yaml data=DIR", "is a folder without a data.yaml"),
    ("compare model=yolo11n-pst.yaml data=FILE", "has no val: split"),
    ("compare model=DIR data=DIR", "is a folder"),
    ("compare model= data=DIR", "model is empty"),
    ("compare model=yolo11n-pst.yaml data=DIR imgsz=99999999999", "at most 8192"),
    ("compare model=yolo11n-pst.yaml data=DIR imgsz=abc", "imgsz=abc"),
    ("compare model=yolo11n-pst.yaml data=DIR topk=a,b", "non-negative integers"),
    ("compare model=yolo11n-pst.yaml data=DIR save_dir=FILE", "is a file, not a folder"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE", "not valid JSON"),
    ("evaluate model=yolo11n.yaml images=FILE annotations=DIR", "annotations file not found"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE imgsz=99999999999999", "at most 8192"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE conf=2", "between 0 and 1"),
    ("speed models=FILE runtime=torch", "is not a .pt checkpoint, a .yaml config or an exported model"),
    ("speed models=yolo11n.yaml imgsz=99999999968", "at most 8192"),
    ("speed models=yolo11n.yaml runtime=teleport", "unknown runtime"),
    ("synth out=FILE", "is a file, not a folder"),
    ("synth out= train=1", "out= is empty"),
    ("synth out=NEW imgsz=99999999", "imgsz must be <= 8192"),
    ("synth out=NEW seed=abc", "seed=abc"),
    ("coco2yolo out=NEW val=MISSING", "MISSING"),
    ("bench data=FILE models=yolo11n.yaml", "no coco_map.json next to FILE"),
    ("bench epochs=0", "epochs=0: must be >= 1"),
    ("bench recipe=turbo", "turbo"),
    ("study cells=nonsense", "no study cell or group"),
    ("study report project=DIR", "no study results"),
    ("convert DIR NEW.pt", "does not exist"),
    ("convert FILE DIR", "is a folder"),
    ("convert FILE NEW.pt", "is a text file"),
    ("configs nc=abc", "nc=abc"),
]


@pytest.mark.parametrize("argv, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, match, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x\n")
    (tmp_path / "DIR").mkdir()
    before = tree_state(tmp_path)
    err = cli.error(*argv.split(" "), match=match)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert tree_state(tmp_path) == before  # nothing written
