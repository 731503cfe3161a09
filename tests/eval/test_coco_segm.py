"""pst_yolo.eval.coco_segm: pycocotools mask AP (segm) on RLE results, and its input checks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pst_yolo.data.synth_tasks import mask_rle
from pst_yolo.eval.coco import CocoDataError
from pst_yolo.eval.coco_segm import score_segm


def _segm_gt(masks: list[np.ndarray], cats=(1,)) -> dict:
    anns = []
    for n, m in enumerate(masks, 1):
        ys, xs = np.nonzero(m)
        anns.append(
            {
                "id": n,
                "image_id": 1,
                "category_id": cats[(n - 1) % len(cats)],
                "iscrowd": 0,
                "segmentation": mask_rle(m),
                "area": int(m.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
            }
        )
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 60}],
        "categories": [{"id": c, "name": f"c{c}"} for c in cats],
        "annotations": anns,
    }


def _two_masks():
    a = np.zeros((60, 80), bool)
    a[5:25, 5:30] = True
    b = np.zeros((60, 80), bool)
    cv2.circle(b.view(np.uint8), (55, 40), 12, 1, -1)
    cv2.circle(b.view(np.uint8), (55, 40), 5, 0, -1)  # a ring: its hole counts
    return a, b


def test_mask_rle_round_trips():
    from pycocotools import mask as mask_utils

    for m in _two_masks():
        rle = mask_rle(m)
        assert rle["size"] == [60, 80] and isinstance(rle["counts"], str)  # JSON-ready
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), m)


def test_segm_perfect_masks_score_one_and_errors_cost():
    a, b = _two_masks()
    gt = _segm_gt([a, b])
    perfect = [
        {"image_id": 1, "category_id": 1, "segmentation": mask_rle(m), "score": s} for m, s in ((a, 0.9), (b, 0.8))
    ]
    stats, summary = score_segm(perfect, gt)
    assert stats["AP"] == pytest.approx(1.0) and "Average Precision" in summary
    filled = b.copy()
    cv2.circle(filled.view(np.uint8), (55, 40), 5, 1, -1)  # the ring without its hole: IoU 0.83 with the ring
    iou = (filled & b).sum() / (filled | b).sum()
    holed = [perfect[0], {**perfect[1], "segmentation": mask_rle(filled)}]
    stats, _ = score_segm(holed, gt)
    # The ring is matched at IoU thresholds 0.50..0.80 (7 of 10) and missed at 0.85..0.95, where precision is 1
    # up to recall 0.5 (the square) and 0 after: COCO's 101-point AP there is 51 / 101.
    assert 0.80 < iou < 0.85
    assert stats["AP50"] == pytest.approx(1.0)
    assert stats["AP"] == pytest.approx((7 * 1.0 + 3 * 51 / 101) / 10, abs=1e-6)
    assert score_segm([], gt)[0]["AP"] == 0.0


def test_segm_results_file_is_scored_the_same(tmp_path):
    a, b = _two_masks()
    gt = _segm_gt([a, b], cats=(1, 2))
    dets = [{"image_id": 1, "category_id": 2, "segmentation": mask_rle(b), "score": 0.7}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    from_files = score_segm(tmp_path / "dets.json", tmp_path / "gt.json")[0]
    assert from_files == score_segm(dets, gt)[0]
    assert from_files["AP"] == pytest.approx(0.5)  # one of two categories found, perfectly


def test_segm_refuses_bad_input():
    a, b = _two_masks()
    gt = _segm_gt([a, b])
    with pytest.raises(CocoDataError, match="mask size"):
        score_segm([{"image_id": 1, "category_id": 1, "segmentation": mask_rle(a[:30]), "score": 1.0}], gt)
    with pytest.raises(CocoDataError, match="image or category id"):
        score_segm([{"image_id": 9, "category_id": 1, "segmentation": mask_rle(a), "score": 1.0}], gt)
    no_masks = json.loads(json.dumps(gt))
    del no_masks["annotations"][1]["segmentation"]
    with pytest.raises(CocoDataError, match="no 'segmentation'"):
        score_segm([], no_masks)
