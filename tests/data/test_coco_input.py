"""Nothing silently wrong: broken COCO input to ``pst-yolo coco2yolo`` (and impossible ``synth`` sizes) is an
error that names the file, the entry and the fix -- never a traceback, never a dataset with NaN labels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import tree_state


def _dataset(root: Path, n: int = 3) -> tuple[Path, Path, dict]:
    images = root / "imgs"
    images.mkdir(parents=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]}
    for i in range(n):
        cv2.imwrite(str(images / f"im{i}.png"), np.full((40, 50, 3), 40 * i, np.uint8))
        doc["images"].append({"id": i + 1, "file_name": f"im{i}.png", "width": 50, "height": 40})
        doc["annotations"].append(
            {"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [5, 5, 10, 12], "iscrowd": 0}
        )
    return root / "instances_val.json", images, doc


def _convert_error(cli, tmp_path, doc, match: str, json_text: str | None = None) -> str:
    """Write ``doc`` over the JSON of ``_dataset(tmp_path / "src")``, run coco2yolo on it, expect exit 2 with
    ``match`` and the file named; nothing written, the input unchanged."""
    js, images = tmp_path / "src" / "instances_val.json", tmp_path / "src" / "imgs"
    js.write_text(json_text if json_text is not None else json.dumps(doc))
    before = tree_state(tmp_path)
    err = cli.error("coco2yolo", f"out={tmp_path / 'out'}", f"val={js}", f"val_images={images}", match=match)
    assert "Traceback" not in err
    assert str(js) in err or str(images) in err  # the file (the JSON, or the image) is named
    assert tree_state(tmp_path) == before  # no dataset, no temporary folder, the input as it was
    return err


# --------------------------------------------------------------------------------------------------
# 4. silently wrong output
# --------------------------------------------------------------------------------------------------
def test_nan_in_a_bbox_is_refused_naming_the_entry(tmp_path, cli):
    _, _, doc = _dataset(tmp_path / "src")
    doc["annotations"][1]["bbox"] = [float("nan"), 5, 10, 12]  # passed every box check: a "nan" label line
    text = json.dumps(doc)
    assert "NaN" in text  # what Python's json writes (and reads back) by default
    err = _convert_error(cli, tmp_path, doc, match="not finite", json_text=text)
    assert "1 number(s)" in err and "annotations[1] (id 2) bbox[0] = NaN" in err


def test_infinity_or_text_where_numbers_belong_is_refused(tmp_path, cli):
    _, _, doc = _dataset(tmp_path / "src")
    doc["images"][0]["width"] = float("inf")
    doc["annotations"][2]["bbox"][2] = "10"
    err = _convert_error(cli, tmp_path, doc, match="not finite")
    assert "images[0] (id 1) width = Infinity" in err
    assert 'annotations[2] (id 3) bbox[2] = "10"' in err and "write them as numbers" in err


def test_a_truncated_png_is_refused_as_corrupt(tmp_path, cli):
    _, images, doc = _dataset(tmp_path / "src")
    png = (images / "im1.png").read_bytes()
    (images / "im1.png").write_bytes(png[: len(png) // 2])
    err = _convert_error(cli, tmp_path, doc, match="corrupt or truncated image")
    assert "im1.png" in err and "1 x image file unreadable" in err


def test_an_empty_image_list_is_refused(tmp_path, cli):
    _, _, doc = _dataset(tmp_path / "src")
    doc["images"], doc["annotations"] = [], []
    _convert_error(cli, tmp_path, doc, match="'images' is empty")


# --------------------------------------------------------------------------------------------------
# 5. crashes instead of errors
# --------------------------------------------------------------------------------------------------
def test_annotations_given_as_an_object_is_refused(tmp_path, cli):
    _, _, doc = _dataset(tmp_path / "src")
    doc["annotations"] = {str(a["id"]): a for a in doc["annotations"]}
    _convert_error(cli, tmp_path, doc, match="'annotations' is an object, not a list; wrap its entries")


@pytest.mark.parametrize("section", ["images", "annotations", "categories"])
def test_null_entries_are_refused(tmp_path, cli, section):
    _, _, doc = _dataset(tmp_path / "src")
    doc[section].insert(1, None)
    _convert_error(
        cli, tmp_path, doc, match=rf"1 of \d+ '{section}' entries are not objects \(e.g. {section}\[1\] is null\)"
    )


def test_a_zero_byte_image_is_refused_as_corrupt_not_a_missing_module(tmp_path, cli):
    _, images, doc = _dataset(tmp_path / "src")
    (images / "im2.png").write_bytes(b"")
    err = _convert_error(cli, tmp_path, doc, match="corrupt or truncated image")
    assert "0 bytes" in err and "im2.png" in err and "module" not in err


def test_many_broken_images_are_counted(tmp_path, cli):
    _, images, doc = _dataset(tmp_path / "src", n=5)
    for i in range(4):
        (images / f"im{i}.png").write_bytes(b"not a png")
    err = _convert_error(cli, tmp_path, doc, match="4 x image file unreadable")
    # skip=true drops them and says how many
    js = tmp_path / "src" / "instances_val.json"
    assert cli("coco2yolo", f"out={tmp_path / 'out'}", f"val={js}", f"val_images={images}", "skip=true") == 0
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "val").iterdir()) == ["im4.png"]
    assert "corrupt or truncated image" in err


def test_synth_image_size_beyond_the_bound_is_an_error_before_any_allocation(tmp_path, cli):
    before = tree_state(tmp_path)
    cli.error("synth", tmp_path / "d", "imgsz=100000", match="imgsz must be <= 8192")
    cli.error("synth", "task=classify", tmp_path / "c", "imgsz=100000", match="imgsz must be <= 8192")
    assert tree_state(tmp_path) == before
