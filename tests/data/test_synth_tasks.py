"""pst_yolo.data.synth_tasks: segmentation, pose and oriented-box sets from the detection generator's scenes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pst_yolo.data.synth import SynthSpec, _mask, generate
from pst_yolo.data.synth_tasks import (
    FLIP_IDX,
    KPT_NAMES,
    generate_task,
    keypoints,
    mask_polygon,
    obb_corners,
    task_scene,
)

SPEC = SynthSpec(train=6, val=3, imgsz=96, seed=2)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_tasks")
    out = {"detect": generate(root / "detect", SPEC).parent}
    for task in ("segment", "pose", "obb"):
        out[task] = generate_task(root / task, task, SPEC).parent
    return out


def test_generation_is_deterministic(datasets, tmp_path):
    for task in ("segment", "pose", "obb"):
        again = generate_task(tmp_path / task, task, SPEC).parent
        assert _files(again) == _files(datasets[task]), task
    assert json.loads((datasets["obb"] / "coco_map.json").read_text())["task"] == "obb"


def test_segment_and_pose_draw_the_detection_images_and_objects(datasets):
    det = datasets["detect"]
    for task in ("segment", "pose"):
        root = datasets[task]
        for split, n in (("train", SPEC.train), ("val", SPEC.val)):
            for i in range(n):
                name = f"{split}_{i:05d}"
                image = (root / "images" / split / f"{name}.png").read_bytes()
                assert image == (det / "images" / split / f"{name}.png").read_bytes()
                det_lines = (det / "labels" / split / f"{name}.txt").read_text().splitlines()
                lines = (root / "labels" / split / f"{name}.txt").read_text().splitlines()
                assert [line.split()[0] for line in lines] == [line.split()[0] for line in det_lines]
                if task == "pose":  # the box part of a pose label is the detection box
                    assert [line.split()[1:5] for line in lines] == [line.split()[1:5] for line in det_lines]


def _scenes(task: str, count: int = 12, imgsz: int = 96):
    spec = SynthSpec(train=count, val=0, imgsz=imgsz, seed=7)
    for idx in range(count):
        yield task_scene(np.random.default_rng([spec.seed, 0, idx]), spec, task)


def test_segment_masks_rle_is_exact_and_polygon_fills_it(datasets):
    from pycocotools import mask as mask_utils

    root = datasets["segment"]
    coco = json.loads((root / "annotations" / "instances_train.json").read_text())
    for im in coco["images"]:
        scene = task_scene(np.random.default_rng([SPEC.seed, 0, im["id"] - 1]), SPEC, "segment")
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        lines = (root / "labels" / "train" / Path(im["file_name"]).with_suffix(".txt")).read_text().splitlines()
        assert len(anns) == len(lines)
        owners = set()
        for a, line in zip(anns, lines):
            rle = {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()}
            mask = mask_utils.decode(rle).astype(bool)
            j = int(np.bincount(scene.owner[mask] + 1).argmax()) - 1  # the object these pixels show
            owners.add(j)
            assert np.array_equal(mask, scene.owner == j)  # the exact visible pixels
            assert a["area"] == int(mask.sum())
            ys, xs = np.nonzero(mask)
            x0, y0 = int(xs.min()), int(ys.min())
            assert a["bbox"] == [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]
            # reference: fill the YOLO polygon (pixel-centre coordinates) and compare with the mask
            poly = np.array([float(v) for v in line.split()[1:]]).reshape(-1, 2) * SPEC.imgsz - 0.5
            filled = np.zeros(mask.shape, np.uint8)
            cv2.fillPoly(filled, [np.round(poly).astype(np.int32)], 1)
            iou = (filled.astype(bool) & mask).sum() / (filled.astype(bool) | mask).sum()
            assert iou >= 0.9, (im["id"], a["id"], iou)
        assert len(owners) == len(anns)


def test_ring_hole_and_split_pieces_survive_in_one_polygon():
    mask = np.zeros((40, 60), bool)
    cv2.circle(mask.view(np.uint8), (15, 20), 12, 1, -1)
    cv2.circle(mask.view(np.uint8), (15, 20), 5, 0, -1)  # a hole
    mask[5:15, 40:55] = True  # a separate piece
    poly = mask_polygon(mask) - 0.5
    filled = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(filled, [np.round(poly).astype(np.int32)], 1)
    filled = filled.astype(bool)
    assert not filled[20, 15]  # the hole stays open
    assert filled[10, 47]  # the other piece is filled
    assert not (mask & ~filled).any()  # every mask pixel is filled
    # the only extra pixels are the two bridges (hole -> outline about 6 px, ring -> piece about 13 px)
    assert (filled & ~mask).sum() <= 25


def _distance_to_mask(x: float, y: float, mask: np.ndarray, x0: int, y0: int) -> float:
    """Distance from a point (continuous pixels) to the nearest pixel square of a mask placed at (x0, y0)."""
    ys, xs = np.nonzero(mask)
    dx = np.maximum(np.maximum(x0 + xs - x, x - (x0 + xs + 1)), 0)
    dy = np.maximum(np.maximum(y0 + ys - y, y - (y0 + ys + 1)), 0)
    return float(np.hypot(dx, dy).min())


def test_pose_keypoints_are_the_shapes_extreme_points():
    seen_hidden = False
    for scene in _scenes("pose"):
        for j, (cls, x0, y0, w, h, _) in enumerate(scene.placed):
            full = _mask(cls, h, w)  # the whole shape, before occlusion
            kpts = keypoints(scene, j)
            assert kpts.shape == (len(KPT_NAMES), 3)
            for (x, y, _v), name in zip(kpts, KPT_NAMES):
                assert _distance_to_mask(x, y, full, x0, y0) <= 1.0, (cls, name)
            top, right, bottom, left = kpts
            assert top[1] == y0 and bottom[1] == y0 + h  # topmost / bottommost rows of the shape
            assert left[0] == x0 and right[0] == x0 + w
            if cls == 2:  # triangle: the base corners
                assert right[1] == left[1] == y0 + h
            alone = not ((scene.owner != j) & (scene.owner >= 0))[y0 : y0 + h, x0 : x0 + w][full].any()
            if alone:  # nothing drawn over it: every keypoint visible
                assert (kpts[:, 2] == 2).all(), (cls, kpts)
            seen_hidden |= bool((kpts[:, 2] == 1).any())
    assert seen_hidden  # occlusion happens, and is marked


def test_pose_flip_idx_swaps_left_and_right(datasets):
    assert [KPT_NAMES[i] for i in FLIP_IDX] == ["top", "left", "bottom", "right"]
    text = (datasets["pose"] / "data.yaml").read_text()
    assert "kpt_shape: [4, 3]" in text and f"flip_idx: {list(FLIP_IDX)}" in text


def test_obb_corners_are_the_rotated_shape_box():
    angles = []
    for scene in _scenes("obb", count=16):
        for j, (cls, _x0, _y0, _pw, _ph, (angle, w, h)) in enumerate(scene.placed):
            corners = obb_corners(scene, j)
            sides = np.linalg.norm(np.roll(corners, -1, 0) - corners, axis=1)
            np.testing.assert_allclose(sides, [w, h, w, h], rtol=1e-9)
            np.testing.assert_allclose(np.dot(corners[1] - corners[0], corners[2] - corners[1]), 0, atol=1e-9)
            assert corners.min() >= 0 and corners.max() <= scene.owner.shape[0]
            # reference: every visible pixel centre of the object lies inside the rectangle (1 px slack for
            # the rotated, anti-aliased edge)
            ys, xs = np.nonzero(scene.owner == j)
            rect = corners.astype(np.float32).reshape(-1, 1, 2)
            inside = [
                cv2.pointPolygonTest(rect, (float(x) + 0.5, float(y) + 0.5), True) >= -1.0 for x, y in zip(xs, ys)
            ]
            assert all(inside), (cls, angle)
            if cls == 1:  # a square fills its rectangle: area matches
                assert abs((scene.owner == j).sum() - w * h) <= 0.3 * w * h + 2 * (w + h)
            angles.append(angle)
    assert len(angles) > 20 and np.ptp(angles) > 2.0  # many objects, turned every way
    assert all(0.0 <= a < math.pi for a in angles)


def test_ultralytics_reads_every_label(datasets):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    for task in ("segment", "pose", "obb"):
        data = check_det_dataset(str(datasets[task] / "data.yaml"))
        ds = YOLODataset(img_path=data["train"], data=data, task=task, imgsz=SPEC.imgsz, augment=False)
        lines = sum(len(p.read_text().splitlines()) for p in (datasets[task] / "labels" / "train").glob("*.txt"))
        assert sum(len(lbl["cls"]) for lbl in ds.labels) == lines > 0, task
        first = next(lbl for lbl in ds.labels if len(lbl["cls"]))
        if task == "pose":
            assert data["kpt_shape"] == [4, 3] and first["keypoints"].shape[1:] == (4, 3)
        else:
            assert len(first["segments"]) == len(first["cls"])  # polygons (segment) / corners (obb)


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="task must be one of segment, pose, obb"):
        generate_task(tmp_path / "d", "depth", SPEC)


def test_synth_cli_task_forms_and_errors(tmp_path, cli):
    assert cli("synth", "task=pose", tmp_path / "p", "train=2", "val=1", "imgsz=64") == 0
    assert "kpt_shape: [4, 3]" in (tmp_path / "p" / "data.yaml").read_text()
    assert cli("synth", tmp_path / "o", "--task", "obb", "--train", "2", "--val", "1") == 0
    assert json.loads((tmp_path / "o" / "coco_map.json").read_text())["task"] == "obb"
    assert _files(tmp_path / "o") == _files(generate_task(tmp_path / "o2", "obb", SynthSpec(train=2, val=1)).parent)
    cli.error("synth", "task=segment", tmp_path / "s", "imgsz=8", match="imgsz must be >= 32")
    cli.error("synth", "task=segment", tmp_path / "s", "classes=3", match="unknown key 'classes'")
    cli.error("synth", "task=depth", tmp_path / "d", match="no task=depth; choose from detect, classify, segment")
