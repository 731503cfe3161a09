"""pst-yolo compare refuses a val split with a corrupt image or a label Ultralytics would drop, as bench and
evaluate do: Ultralytics would score the other images and say so only in its log."""

from __future__ import annotations

import re

import pytest

from pst_yolo.data.synth import SynthSpec, generate
from pst_yolo.data.yolo_check import DatasetError, check_detection_split, label_problem


@pytest.fixture()
def synth(tmp_path):
    return generate(tmp_path / "data", SynthSpec(train=1, val=3, imgsz=64, seed=0))


def _first(folder):
    return sorted(folder.iterdir())[0]


def _break(data_yaml, how: str):
    root = data_yaml.parent
    image, label = _first(root / "images" / "val"), _first(root / "labels" / "val")
    if how == "truncated image":
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    elif how == "empty image":
        image.write_bytes(b"")
    elif how == "unknown class":
        label.write_text("7 0.5 0.5 0.2 0.2\n")
    elif how == "negative width":
        label.write_text("0 0.5 0.5 -0.2 0.2\n")
    elif how == "text in a label":
        label.write_text("zero 0.5 0.5 0.2 0.2\n")
    return image if "image" in how else label


CASES = {
    "truncated image": "corrupt or truncated",
    "empty image": "empty, 0 bytes",
    "unknown class": "class 7 is not one of the dataset's 5 classes",
    "negative width": r"coordinates must lie in \[0, 1\]",
    "text in a label": "not numbers",
}


@pytest.mark.parametrize("how", list(CASES))
def test_compare_refuses_a_split_ultralytics_would_score_partly(how, synth, cli):
    bad = _break(synth, how)
    err = cli.error(
        "compare", "model=yolo11n-pst.yaml", f"data={synth}", "topk=0", match=rf"1 of 3 image.*{bad.name}: .*"
    )
    assert re.search(CASES[how], err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_clean_split_passes_and_counts_its_images(synth):
    assert check_detection_split(synth, "val").images == 3
    with pytest.raises(DatasetError, match="has no test: split"):
        check_detection_split(synth, "test")


def test_label_lines():
    assert label_problem("0 0.5 0.5 0.2 0.2\n\n4 0.1 0.1 0.05 0.05\n", nc=5) is None
    assert label_problem("0 0.5 0.5 0.2 0.2 0.3 0.3 2\n", nc=1) is None  # a keypoint's visibility flag 2
    assert "width 0.0" in label_problem("0 0.5 0.5 0.0 0.2\n", nc=1)
    assert "finite" in label_problem("0 0.5 nan 0.1 0.2\n", nc=1)
    assert "2 coordinates, a box needs 4" in label_problem("0 0.5 0.5\n", nc=1)
    assert "class 1.5" in label_problem("1.5 0.5 0.5 0.1 0.1\n", nc=3)
