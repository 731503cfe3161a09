"""pst_yolo.coco: COCOeval scoring on hand-built cases with known answers, id round-trips, image handling."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pst_yolo.eval.coco import (
    COCO80_TO_91,
    STAT_NAMES,
    CocoDataError,
    coco80_names,
    evaluate,
    load_ground_truth,
    resolve_class_map,
    score,
)


def _gt(anns, images=None, cats=None):
    images = images or [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}]
    cats = cats or [{"id": 1, "name": "thing"}]
    return {
        "images": images,
        "categories": cats,
        "annotations": [{"id": i + 1, "iscrowd": 0, **a} for i, a in enumerate(anns)],
    }


def _det(image_id, cat, box, s):
    return {"image_id": image_id, "category_id": cat, "bbox": box, "score": s}


def test_perfect_detections_score_one():
    gt = _gt(
        [
            {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},  # small (400 px²)
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 60]},
        ]
    )  # medium (3000 px²)
    stats, summary = score([_det(1, 1, [10, 10, 20, 20], 0.9), _det(1, 1, [0, 0, 50, 60], 0.8)], gt)
    assert set(stats) == set(STAT_NAMES)
    for key in ("AP", "AP50", "AP75", "APs", "APm", "AR10", "AR100", "ARs", "ARm"):
        assert stats[key] == pytest.approx(1.0), key
    assert stats["AR1"] == pytest.approx(0.5)  # two objects in the image, one detection allowed
    assert stats["APl"] == -1 and stats["ARl"] == -1  # no large objects: COCO reports -1
    assert "Average Precision" in summary


def test_one_missed_object_of_two():
    gt = _gt(
        [
            {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30]},
        ]
    )
    stats, _ = score([_det(1, 1, [10, 10, 20, 20], 0.9)], gt)
    assert stats["AR100"] == pytest.approx(0.5)
    # precision 1 up to recall 0.5, nothing beyond: 51 of COCO's 101 recall thresholds (0, 0.01, ..., 0.5)
    assert stats["AP"] == pytest.approx(51 / 101)
    assert stats["AP50"] == pytest.approx(51 / 101)


def test_false_positive_on_an_image_without_annotations_lowers_precision():
    images = [
        {"id": 1, "file_name": "a.png", "width": 100, "height": 100},
        {"id": 2, "file_name": "b.png", "width": 100, "height": 100},
    ]  # background image
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}], images=images)
    good = _det(1, 1, [10, 10, 20, 20], 0.5)
    assert score([good, _det(2, 1, [5, 5, 10, 10], 0.4)], gt)[0]["AP"] == pytest.approx(1.0)  # ranked below
    assert score([good, _det(2, 1, [5, 5, 10, 10], 0.9)], gt)[0]["AP"] == pytest.approx(0.5)  # ranked above


def test_crowd_regions_are_ignored_and_empty_categories_left_out():
    cats = [{"id": 3, "name": "a"}, {"id": 6, "name": "b"}, {"id": 7, "name": "never annotated"}]
    gt = _gt(
        [
            {"image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20]},
            {"image_id": 1, "category_id": 6, "bbox": [50, 50, 40, 40], "iscrowd": 1},
        ],
        cats=cats,
    )
    dets = [_det(1, 3, [10, 10, 20, 20], 0.9), _det(1, 6, [52, 52, 30, 30], 0.95)]  # inside the crowd region
    stats, _ = score(dets, gt)
    assert stats["AP"] == pytest.approx(1.0)  # crowd match is not a false positive; category 7 has no GT: skipped


def test_no_detections_scores_zero():
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}])
    stats, _ = score([], gt)
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0


def test_ground_truth_checks_and_fills():
    data = load_ground_truth(
        {
            "images": [{"id": 5, "file_name": "x.jpg"}],
            "categories": [{"id": 2, "name": "c"}],
            "annotations": [{"id": 0, "image_id": 5, "category_id": 2, "bbox": [1, 2, 3, 4]}],
        }
    )
    ann = data["annotations"][0]
    assert ann["area"] == 12 and ann["iscrowd"] == 0 and ann["id"] == 1  # id 0 would break pycocotools matching
    with pytest.raises(CocoDataError, match="category ids not in 'categories'"):
        load_ground_truth(_gt([{"image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]}]))
    with pytest.raises(CocoDataError, match="image ids not in 'images'"):
        load_ground_truth(_gt([{"image_id": 4, "category_id": 1, "bbox": [1, 1, 2, 2]}]))
    with pytest.raises(CocoDataError, match="valid 'bbox'"):
        load_ground_truth(_gt([{"image_id": 1, "category_id": 1, "bbox": [1, 1, -2, 2]}]))


# ---------------------------------------------------------------------------------------------
# evaluate() with a fake detector on real image files
# ---------------------------------------------------------------------------------------------
class ReplayDetector:
    """Returns, for the i-th image it is shown, the i-th prepared (n, 6) array; records what it saw."""

    def __init__(self, outputs, names):
        self.outputs, self.names, self.seen = list(outputs), names, []

    def __call__(self, images):
        self.seen += [im.shape + (im.dtype,) for im in images]
        return [self.outputs.pop(0) for _ in images]


@pytest.fixture()
def odd_dataset(tmp_path):
    """Category ids 3, 6, 7 (7 never annotated); image ids 42, 7, 1000; grayscale PNG, colour JPEG in a
    sub-folder, an image given by absolute path, one image without annotations."""
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "gray.png"), np.full((60, 80), 128, np.uint8))  # 1-channel file
    cv2.imwrite(str(root / "sub" / "colour.jpg"), np.full((50, 70, 3), 90, np.uint8))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "empty.png"), np.zeros((40, 40, 3), np.uint8))
    data = {
        "images": [
            {"id": 42, "file_name": "gray.png", "width": 80, "height": 60},
            {"id": 7, "file_name": "sub/colour.jpg", "width": 70, "height": 50},
            {"id": 1000, "file_name": str(elsewhere / "empty.png"), "width": 40, "height": 40},
        ],
        "categories": [{"id": 3, "name": "alpha"}, {"id": 6, "name": "beta"}, {"id": 7, "name": "gamma"}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 3, "bbox": [5, 5, 30, 20], "iscrowd": 0},
            {"id": 2, "image_id": 42, "category_id": 6, "bbox": [40, 30, 30, 25], "iscrowd": 0},
            {"id": 3, "image_id": 7, "category_id": 6, "bbox": [10, 10, 40, 30], "iscrowd": 0},
        ],
    }
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps(data))
    return root, ann


def test_evaluate_round_trips_image_and_category_ids(odd_dataset, tmp_path):
    root, ann = odd_dataset
    # class indices 0, 1, 2 = names alpha, beta, gamma -> category ids 3, 6, 7 (by name)
    outputs = [
        np.array([[5, 5, 35, 25, 0.9, 0], [40, 30, 70, 55, 0.8, 1]]),
        np.array([[10, 10, 50, 40, 0.7, 1]]),
        np.zeros((0, 6)),
    ]
    det = ReplayDetector(outputs, names=["alpha", "beta", "gamma"])
    res = evaluate(det, root, ann, save=tmp_path / "dets.json", verbose=False, progress=False)
    assert [s[:3] for s in det.seen] == [(60, 80, 3), (50, 70, 3), (40, 40, 3)]  # grayscale read as 3 channels
    assert all(s[3] == np.uint8 for s in det.seen)
    written = json.loads(res.detections.read_text())
    assert {(d["image_id"], d["category_id"]) for d in written} == {(42, 3), (42, 6), (7, 6)}
    assert written[0]["bbox"] == [5, 5, 30, 20]  # xyxy -> xywh
    assert res.stats["AP"] == pytest.approx(1.0)
    assert res.class_map == {0: 3, 1: 6, 2: 7}
    assert res.images == 3 and res.num_detections == 3


def test_evaluate_wrong_class_gives_zero_for_that_category(odd_dataset, tmp_path):
    root, ann = odd_dataset
    outputs = [
        np.array([[5, 5, 35, 25, 0.9, 0], [40, 30, 70, 55, 0.8, 2]]),  # beta box called gamma
        np.array([[10, 10, 50, 40, 0.7, 1]]),
        np.zeros((0, 6)),
    ]
    res = evaluate(
        ReplayDetector(outputs, names=None),
        root,
        ann,
        class_map={0: 3, 1: 6, 2: 7},
        save=tmp_path / "d.json",
        verbose=False,
        progress=False,
    )
    # alpha: AP 1; beta: 1 of 2 found (recall 0.5, precision 1) = 51/101; gamma has no GT: left out.
    assert res.stats["AP"] == pytest.approx((1 + 51 / 101) / 2)


def test_evaluate_refuses_missing_images_and_wrong_sizes(odd_dataset, tmp_path):
    root, ann = odd_dataset
    data = json.loads(ann.read_text())
    data["images"][1]["file_name"] = "sub/nothere.jpg"
    (tmp_path / "missing.json").write_text(json.dumps(data))
    det = ReplayDetector([], names=["alpha", "beta", "gamma"])
    with pytest.raises(CocoDataError, match=r"1 of 3 image.*missing.*nothere\.jpg"):
        evaluate(det, root, tmp_path / "missing.json", verbose=False, progress=False)
    data = json.loads(ann.read_text())
    data["images"][0]["width"] = 81
    (tmp_path / "size.json").write_text(json.dumps(data))
    with pytest.raises(CocoDataError, match="80x60 pixels but the annotations say 81x60"):
        evaluate(
            ReplayDetector([np.zeros((0, 6))] * 3, names=["alpha"]),
            root,
            tmp_path / "size.json",
            save=tmp_path / "d.json",
            verbose=False,
            progress=False,
        )


def test_evaluate_caps_detections_per_image_at_max_det(odd_dataset, tmp_path):
    root, ann = odd_dataset
    many = np.array([[0, 0, 10, 10, s, 0] for s in np.linspace(0.01, 0.5, 150)])
    res = evaluate(
        ReplayDetector([many, np.zeros((0, 6)), np.zeros((0, 6))], names=["alpha", "beta", "gamma"]),
        root,
        ann,
        save=tmp_path / "d.json",
        verbose=False,
        progress=False,
    )
    written = json.loads(res.detections.read_text())
    assert len(written) == 100 and min(d["score"] for d in written) == pytest.approx(
        np.linspace(0.01, 0.5, 150)[50], abs=1e-5
    )  # the 100 best kept


# ---------------------------------------------------------------------------------------------
# Class index -> category id
# ---------------------------------------------------------------------------------------------
def test_coco80_model_against_official_91_ids():
    names = coco80_names()
    assert len(names) == 80 and names[0] == "person" and names[79] == "toothbrush"
    assert len(COCO80_TO_91) == 80 and COCO80_TO_91[11] == 13 and COCO80_TO_91[79] == 90
    # the official instances_val2017.json categories (subset here): ids with gaps, COCO's names
    cats = [{"id": 1, "name": "person"}, {"id": 13, "name": "stop sign"}, {"id": 90, "name": "toothbrush"}]
    mapping, how = resolve_class_map(names, cats)
    assert how == "coco80" and mapping == {0: 1, 11: 13, 79: 90}


def test_class_map_by_name_and_explicit(tmp_path):
    cats = [{"id": 6, "name": "Beta"}, {"id": 3, "name": "alpha"}]
    assert resolve_class_map({0: "alpha", 1: "beta", 2: "other"}, cats) == ({0: 3, 1: 6}, "names")
    assert resolve_class_map(None, cats, class_map={0: 6})[0] == {0: 6}
    with pytest.raises(CocoDataError, match="none of the model's class names"):
        resolve_class_map(["x", "y"], cats)
    with pytest.raises(CocoDataError, match="category ids \\[9\\]"):
        resolve_class_map(None, cats, class_map={0: 9})
    # the mapping file written by pst-yolo synth / coco2yolo
    from pst_yolo.data.coco_map import write_map

    path = write_map(tmp_path / "coco_map.json", ["n0", "n1"], [6, 3], {})
    assert resolve_class_map(["whatever", "names"], cats, class_map=path)[0] == {0: 6, 1: 3}


def _claim_size(png: Path, width: int, height: int) -> None:
    """Make a PNG's header (IHDR) claim another size; the pixel data stays that of the small image."""
    data = bytearray(png.read_bytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    png.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "claimed, json_size, match",
    [
        ((40000, 40000), (40000, 40000), r"the header says 40000x40000 pixels, more than the \d+ pixels"),
        ((5000, 5000), (80, 60), "is 5000x5000 pixels but the annotations say 80x60"),
    ],
)
def test_evaluate_reads_image_headers_before_decoding(odd_dataset, tmp_path, monkeypatch, claimed, json_size, match):
    """A header that claims a huge image, or a size the JSON does not give, is refused before OpenCV decodes
    anything (decoding a 40000x40000 claim crashed in cv2; a real 20000x20000 image cost 4 GB first)."""
    root, ann = odd_dataset
    _claim_size(root / "gray.png", *claimed)
    data = json.loads(ann.read_text())
    data["images"][0]["width"], data["images"][0]["height"] = json_size
    (tmp_path / "big.json").write_text(json.dumps(data))

    def no_decoding(*args, **kwargs):
        raise AssertionError("the image was decoded before its header was checked")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(CocoDataError, match=match):
        evaluate(
            ReplayDetector([np.zeros((0, 6))] * 3, names=["alpha"]),
            root,
            tmp_path / "big.json",
            save=tmp_path / "d.json",
            verbose=False,
            progress=False,
        )


def test_image_header_sizes_of_png_and_jpeg(tmp_path):
    from pst_yolo.data.coco_json import header_size

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((30, 50, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((70, 20, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "c.bmp"), np.zeros((11, 13, 3), np.uint8))  # (through Pillow)
    assert [header_size(tmp_path / n) for n in ("a.png", "b.jpg", "c.bmp")] == [(50, 30), (20, 70), (13, 11)]
    (tmp_path / "d.png").write_bytes(b"not an image")
    assert header_size(tmp_path / "d.png") is None
