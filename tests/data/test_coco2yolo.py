"""pst_yolo.coco2yolo: labels and mapping right for odd ids, refusals on broken input, skip counts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pst_yolo.data.coco2yolo import BAD_BOX, MISSING, ORPHAN, OUTSIDE, UNKNOWN_CAT, CocoConversionError, convert
from pst_yolo.data.coco_map import read_map


def _write_split(
    root: Path, name: str, images: list[tuple[str, int, int]], anns: list[dict], cats=None, gray: bool = False
) -> tuple[Path, Path]:
    """images: (file_name, width, height); files are written unless the name contains 'missing'."""
    img_dir = root / name
    for fname, w, h in images:
        if "missing" in fname:
            continue
        p = img_dir / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), np.full((h, w) if gray else (h, w, 3), 100, np.uint8))
    cats = cats or [{"id": 7, "name": "gamma"}, {"id": 3, "name": "alpha"}, {"id": 6, "name": "beta"}]
    doc = {
        "images": [{"id": 100 + i, "file_name": f, "width": w, "height": h} for i, (f, w, h) in enumerate(images)],
        "categories": cats,
        "annotations": [{"id": i + 1, "iscrowd": 0, **a} for i, a in enumerate(anns)],
    }
    (root / "annotations").mkdir(exist_ok=True)
    js = root / "annotations" / f"instances_{name}.json"
    js.write_text(json.dumps(doc))
    return js, img_dir


@pytest.fixture()
def good(tmp_path):
    src = tmp_path / "src"
    train = _write_split(
        src,
        "train",
        [("a.jpg", 100, 50), ("sub/b.png", 40, 40)],
        [
            {"image_id": 100, "category_id": 3, "bbox": [10, 5, 20, 10]},
            {"image_id": 100, "category_id": 7, "bbox": [0, 0, 100, 50]},
            {"image_id": 101, "category_id": 6, "bbox": [0, 0, 10, 10], "iscrowd": 1},
        ],
    )
    val = _write_split(
        src,
        "val",
        [("v.png", 64, 32), ("empty.png", 30, 30)],
        [{"image_id": 100, "category_id": 6, "bbox": [32, 0, 32, 32.5]}],  # 0.5 px past the border
        gray=True,
    )
    return tmp_path, train, val


def test_converts_with_stable_class_order_and_original_ids(good):
    tmp, train, val = good
    report = convert(tmp / "out", train=train, val=val, verbose=False)
    out = report.out
    assert report.category_ids == [3, 6, 7] and report.names == ["alpha", "beta", "gamma"]  # by category id
    assert read_map(out)["class_map"] == {0: 3, 1: 6, 2: 7}
    assert '0: "alpha"' in report.data_yaml.read_text()
    labels = (out / "labels" / "train" / "a.txt").read_text().split("\n")
    assert labels[0] == "0 0.200000 0.200000 0.200000 0.200000"
    assert labels[1] == "2 0.500000 0.500000 1.000000 1.000000"
    assert (out / "labels" / "train" / "sub" / "b.txt").read_text() == ""  # only a crowd box: background
    assert (out / "images" / "train" / "sub" / "b.png").is_symlink()
    assert (out / "labels" / "val" / "v.txt").read_text() == "1 0.750000 0.500000 0.500000 1.000000\n"  # clipped
    c = report.splits["train"]
    assert (c.images_written, c.boxes_written, c.crowd_skipped, c.background_images) == (2, 2, 1, 1)
    assert report.splits["val"].boxes_clipped == 1 and report.splits["val"].background_images == 1
    ev = json.loads((out / "annotations" / "instances_val.json").read_text())
    assert [im["id"] for im in ev["images"]] == [100, 101]
    assert [a["category_id"] for a in ev["annotations"]] == [6]
    # Ultralytics reads it: dataset check and image -> label paths through the links
    from ultralytics.data.utils import check_det_dataset, img2label_paths

    info = check_det_dataset(str(report.data_yaml))
    assert info["nc"] == 3 and info["names"] == {0: "alpha", 1: "beta", 2: "gamma"}
    assert Path(img2label_paths([str(out / "images" / "train" / "sub" / "b.png")])[0]).is_file()


def test_copy_mode_and_refuses_to_overwrite(good):
    tmp, train, val = good
    convert(tmp / "out", val=val, mode="copy", verbose=False)
    assert not (tmp / "out" / "images" / "val" / "v.png").is_symlink()
    with pytest.raises(CocoConversionError, match="already holds a dataset"):
        convert(tmp / "out", val=val, verbose=False)
    convert(tmp / "out", val=val, overwrite=True, verbose=False)
    with pytest.raises(CocoConversionError, match="mode must be one of"):
        convert(tmp / "other", val=val, mode="move", verbose=False)


def _broken(tmp_path):
    src = tmp_path / "src"
    return _write_split(
        src,
        "val",
        [
            ("ok.png", 50, 50),
            ("missing.png", 50, 50),
            ("outside.png", 50, 50),
            ("unknown.png", 50, 50),
            ("zero.png", 50, 50),
        ],
        [
            {"image_id": 100, "category_id": 3, "bbox": [1, 1, 10, 10]},
            {"image_id": 101, "category_id": 3, "bbox": [1, 1, 10, 10]},
            {"image_id": 102, "category_id": 3, "bbox": [30, 30, 40, 10]},  # 20 px past the right edge
            {"image_id": 103, "category_id": 99, "bbox": [1, 1, 10, 10]},
            {"image_id": 104, "category_id": 6, "bbox": [1, 1, 0, 10]},
            {"image_id": 555, "category_id": 3, "bbox": [1, 1, 10, 10]},
        ],
    )


def test_refuses_broken_input_naming_each_problem(tmp_path):
    val = _broken(tmp_path)
    with pytest.raises(CocoConversionError) as err:
        convert(tmp_path / "out", val=val, verbose=False)
    msg = str(err.value)
    for reason in (MISSING, OUTSIDE, UNKNOWN_CAT, BAD_BOX, ORPHAN):
        assert f"1 x {reason}" in msg, reason
    assert "missing.png" in msg and "skip_invalid=True" in msg
    assert not (tmp_path / "out").exists()  # nothing written


def test_skip_invalid_drops_and_counts(tmp_path):
    val = _broken(tmp_path)
    report = convert(tmp_path / "out", val=val, skip_invalid=True, verbose=False)
    c = report.splits["val"]
    assert c.images_listed == 5 and c.images_written == 1
    assert dict(c.images_skipped) == {MISSING: 1, OUTSIDE: 1, UNKNOWN_CAT: 1, BAD_BOX: 1}
    assert dict(c.annotations_skipped) == {ORPHAN: 1}
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "val").iterdir()) == ["ok.png"]
    ev = json.loads((tmp_path / "out" / "annotations" / "instances_val.json").read_text())
    assert [im["file_name"] for im in ev["images"]] == ["ok.png"]  # evaluation sees only converted images
    assert "skipped 1 image(s): " + MISSING in report.summary()


def test_size_mismatch_and_unknown_category_within_tolerance(tmp_path):
    src = tmp_path / "src"
    val = _write_split(src, "val", [("a.png", 50, 50)], [{"image_id": 100, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    doc = json.loads(val[0].read_text())
    doc["images"][0]["width"] = 60
    val[0].write_text(json.dumps(doc))
    with pytest.raises(CocoConversionError, match=r"a\.png is 50x50, JSON says 60x50"):
        convert(tmp_path / "out", val=val, verbose=False)
    convert(tmp_path / "out", val=val, verify_images=False, verbose=False)  # trusting the JSON: no check


def test_merging_two_train_files_and_the_cli(good, tmp_path, cli):
    tmp, train, val = good
    extra = _write_split(
        tmp / "src2", "train", [("a.jpg", 20, 20)], [{"image_id": 100, "category_id": 3, "bbox": [0, 0, 5, 5]}]
    )
    rc = cli(
        "coco2yolo",
        f"out={tmp / 'cli'}",
        f"train={train[0]},{extra[0]}",
        f"train_images={train[1]},{extra[1]}",
        f"val={val[0]}",
    )  # val images found the COCO way: annotations/instances_val.json -> val/
    assert rc == 0
    names = sorted(
        p.relative_to(tmp / "cli" / "images" / "train").as_posix()
        for p in (tmp / "cli" / "images" / "train").rglob("*.*")
    )
    assert names == ["0_instances_train/a.jpg", "0_instances_train/sub/b.png", "1_instances_train/a.jpg"]
    cli.error(
        "coco2yolo",
        f"out={tmp / 'x'}",
        f"train={train[0]},{extra[0]}",
        f"train_images={train[1]}",
        f"val={val[0]}",
        match="2 JSON file\\(s\\) but train_images= 1",
    )
    cli.error("coco2yolo", f"train={train[0]}", match="needs out= and val=")
    cli.error(
        "coco2yolo", f"out={tmp / 'y'}", f"val={_broken(tmp_path / 'b')[0]}", match="refusing to convert broken input"
    )
