"""Bad input on the command line: for every command, values out of range, wrong types, huge numbers, empty
values, and paths that are files, folders or missing give one line saying what is wrong, exit status 2, and
no traceback (nothing is run and nothing is written)."""

from __future__ import annotations

import pytest

from helpers import tree_state
from pst_yolo.cli import args
from pst_yolo.cli.commands import build_commands

CASES = [
    ("compare model=yolo11n-pst.yaml data=DIR", "is a folder without a data.yaml"),
    ("compare model=yolo11n-pst.yaml data=FILE", "has no val: split"),
    ("compare model=DIR data=DIR", "is a folder"),
    ("compare model= data=DIR", "model= is empty; give a value"),
    ("compare model=yolo11n-pst.yaml data=DIR imgsz=99999999999", "at most 8192"),
    ("compare model=yolo11n-pst.yaml data=DIR imgsz=abc", "imgsz=abc"),
    ("compare model=yolo11n-pst.yaml data=DIR topk=a,b", "non-negative integers"),
    ("compare model=yolo11n-pst.yaml data=DIR save_dir=FILE", "is a file, not a folder"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE", "not valid JSON"),
    ("evaluate model=yolo11n.yaml images=FILE annotations=DIR", "annotations file not found"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE imgsz=99999999999999", "at most 8192"),
    ("evaluate model=yolo11n.yaml images=DIR annotations=FILE conf=2", "between 0 and 1"),
    ("speed models=FILE runtime=torch", "not a .pt checkpoint, a .yaml config or an exported model"),
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
    ("convert DIR NEW.pt", "source=DIR is a folder"),
    ("convert FILE DIR", "is a folder"),
    ("convert FILE NEW.pt", "is a text file"),
    ("configs nc=abc", "nc=abc"),
    # Broken before issue 24's sweep: a traceback, exit status 0 or 1, or a bad value silently used.
    ("quickstart model=FILE", "model FILE is a file with suffix none, not a .pt checkpoint"),  # traceback
    ("quickstart model=DIR", "model DIR is a folder"),  # traceback
    ("demo source=FILE model=yolo11n-pst.yaml", "cannot read .*FILE as an image or a video"),  # exit 1
    ("demo source=DIR model=yolo11n-pst.yaml", "no images in folder DIR"),  # exit 1
    ("demo source=MISSING model=yolo11n-pst.yaml", "source not found: MISSING"),  # exit 1
    ("demo source=IMG.png model=FILE show=false", "model FILE is a file with suffix none"),  # ran on a text file
    ("demo source=IMG.png model=DIR show=false", "model DIR is a folder, not a .pt checkpoint"),  # ditto, a folder
    ("demo source=IMG.png model=yolo11n-pst.yaml project=FILE", "FILE is a file, not a folder"),  # after the run
    ("explain image=FILE model=yolo11n-pst.yaml", "cannot read image FILE"),  # exit 1
    ("explain image=MISSING model=yolo11n-pst.yaml", "image not found: MISSING"),  # exit 1
    ("explain image=IMG.png source=IMG.png model=yolo11n-pst.yaml", "give image= or source="),  # source= ignored
    ("explain image=IMG.png model=yolo11n-pst.yaml project=FILE", "FILE is a file, not a folder"),  # after the run
    ("app model=MISSING.pt", "model file not found: MISSING.pt"),  # the server started
    ("app model=FILE", "model FILE is a file with suffix none"),  # the server started
    ("app source=MISSING", "source not found: MISSING"),  # the server started
    ("app source=FILE", "cannot read .*FILE as an image or a video"),  # the server started
    ("app port=0", "port must be a whole number from 1 to 65535"),  # exit 1
    ("speed models=yolo11n.yaml runtime=torch project=FILE", "FILE is a file, not a folder"),  # traceback
    ("speed models=yolo11n.yaml runtime=torch threads=1000000", "threads=1000000: this machine has"),  # crash
    ("speed models=yolo11n.yaml runtime=torch batch=1000000000", "for the input alone"),  # traceback
    ("speed models=yolo11n.yaml runtime=", "runtime= is empty"),  # traceback
    ("configs nc=1000000000", "nc=1000000000: at most 100000"),  # traceback
    ("synth out=NEW train=1000000000000", "need at least .* GiB of disk"),  # filled the disk
    ("synth out=NEW max_objects=1000000000", "max_objects must be <= 100"),  # ran for ever
    ("synth out=NEW clutter=1000000000", "clutter must be from 0 to 100"),  # ran for ever
    ("synth out=NEW seed=-1", "seed must be >= 0"),  # NumPy's "expected non-negative integer"
    ("synth task=classify out=NEW seed=-1", "seed must be >= 0"),  # ditto
    ("bench images=DIR", "images= goes with annotations="),  # images= ignored, the main job ran
    ("bench train=0", "train=0: .* must be trained, which needs train images"),  # trained on no image
    ("bench val=0", "val=0: the models are scored on the val images"),  # scored nothing
    ("bench task=classify split=test", "split=test: the generated set has train and val only"),  # after training
    ("bench task=classify data=CLS split=test", "has no test/ folder"),  # Ultralytics scored another split
    ("bench task=segment images=DIR", "images= goes with annotations="),  # images= ignored
    ("bench data=BADMAP models=yolo11n.yaml", "BADMAP/coco_map.json is not a pst-yolo mapping file"),  # no name
    ("coco2yolo out=NEW val=FILE train=", "train= is empty"),  # traceback
    ("study train=0 cells=noise project=DIR", "train=0: every cell's models must be trained"),  # trained on none
    ("study list out=DIR", "study list takes cells=, project=; out= would be ignored"),  # ignored
    ("study list project=FILE", "project=FILE is a file"),  # every cell listed as pending
    ("study project=FILE cells=noise", "project=FILE is a file"),  # said out=FILE
    ("bench task=", "has no task="),
]


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A folder with FILE (text), DIR (empty), IMG.png (an image), CLS (an ImageFolder without test/) and
    BADMAP (a data.yaml whose coco_map.json is not JSON); the current folder while the test runs."""
    import cv2
    import numpy as np

    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x\n")
    (tmp_path / "DIR").mkdir()
    cv2.imwrite(str(tmp_path / "IMG.png"), np.full((32, 32, 3), 127, np.uint8))
    for split in ("train", "val"):
        (tmp_path / "CLS" / split / "a").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "CLS" / split / "a" / "x.png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "BADMAP").mkdir()
    (tmp_path / "BADMAP" / "data.yaml").write_text("train: images\nval: images\nnames: [a]\n")
    (tmp_path / "BADMAP" / "coco_map.json").write_text("x")
    return tmp_path


@pytest.mark.parametrize("argv, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, match, inputs, cli):
    before = tree_state(inputs)
    err = cli.error(*argv.split(" "), match=match)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert tree_state(inputs) == before  # nothing written


# --------------------------------------------------------------------------------------------------
# Every key of every command: the parser checks each value by the kind of value its key takes
# --------------------------------------------------------------------------------------------------
def all_keys() -> list[tuple[list[str], object]]:
    """(the words that choose the command and variant, key) for every key of every command."""
    out = []
    for name, cmd in build_commands().items():
        for variant in (cmd, *cmd.variants.values()):
            head = [name] + ([f"task={variant.task}"] if variant is not cmd else [])
            out += [(head, key) for key in variant.keys]
    return out


KEYS = all_keys()
KEY_IDS = [" ".join([*head, key.name]) for head, key in KEYS]

# The kinds of number a key may take, each with values it refuses and what the message says. A huge number
# is refused where it would exhaust memory (image sizes); counts may be large (epochs=1000 is a choice).
BAD_VALUES = {
    args.count: [("0", "must be >= 1"), ("-1", "must be >= 1"), ("abc", "expected a whole number"), ("1.5", "whole")],
    args.image_size: [("0", "must be >= 1"), ("1000000000", "at most 8192"), ("64.0", "expected a whole number")],
    args.non_negative: [("-1", "must be >= 0"), ("x", "expected a whole number")],
    args.seed: [("-1", "must be >= 0"), (str(2**32), "at most 4294967295"), ("s", "expected a whole number")],
    args.fraction: [("2", "between 0 and 1"), ("-1", "between 0 and 1"), ("nan", "finite"), ("a", "a number")],
    args.distance: [("-1", "must be >= 0"), ("inf", "finite"), ("a", "expected a number")],
    args.integer: [("abc", "expected a whole number"), ("1.5", "expected a whole number")],
    args.number: [("nan", "expected a finite number"), ("abc", "expected a number")],
    args.optional_int: [("abc", "expected a whole number")],
    args.device: [("bogus", "expected cpu, mps or CUDA device numbers"), ("99", "this machine has")],
    args.to_bool: [("maybe", "expected true or false")],
    args.topk_value: [("-3", "non-negative integer"), ("abc", "non-negative integer")],
    args.topk_list: [("-3", "non-negative integers"), ("1,x", "non-negative integers"), (",", "comma-separated")],
    args.str_list: [(",", "expected a comma-separated list")],
}
TEXT = (str,)  # paths and names: checked by what reads them (the CASES above); empty is refused by the parser


def test_every_key_takes_a_checked_kind_of_value():
    """No key converts with a bare ``int`` or ``float``: those accept -1, 0, nan and inf, and their messages
    ("invalid literal for int() with base 10") say nothing about what to write."""
    unchecked = [i for i, (_, key) in zip(KEY_IDS, KEYS) if key.convert not in (*BAD_VALUES, *TEXT)]
    assert unchecked == []


@pytest.mark.parametrize("head, key", KEYS, ids=KEY_IDS)
def test_an_empty_value_is_refused_for_every_key(head, key, cli):
    err = cli.error(*head, f"{key.name}=", match=rf"^pst-yolo {head[0]}: error: {key.name}= is empty; give a value")
    assert len(err.strip().splitlines()) == 1


CHECKED = [(head, key) for head, key in KEYS if key.convert in BAD_VALUES]


@pytest.mark.parametrize("head, key", CHECKED, ids=[" ".join([*h, k.name]) for h, k in CHECKED])
def test_bad_values_are_refused_for_every_key(head, key, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value, match in BAD_VALUES[key.convert]:
        err = cli.error(*head, f"{key.name}={value}", match=rf"error: {key.name}={value}: .*{match}")
        assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_several_line_error_is_shown_as_its_first_line(cli, monkeypatch):
    """Ultralytics' device errors, for one, append lines of torch diagnostics to the line that matters."""
    from pst_yolo.eval import tables

    def fail(**_):
        raise ValueError("Invalid CUDA 'device=7' requested. Use 'device=cpu'\n\ntorch.cuda.is_available(): False\n")

    monkeypatch.setattr(tables, "config_rows", fail)
    err = cli.error("configs", match="Invalid CUDA 'device=7' requested")
    assert err.strip() == "pst-yolo configs: error: Invalid CUDA 'device=7' requested. Use 'device=cpu'"
