"""No late failures, nothing silently wrong: ``bench``, ``compare``, ``evaluate`` and ``speed`` check every input
(models exist and load, data readable, settings valid, output folders usable) before any work starts, and
``evaluate`` refuses ground truth that could only give AP = -1."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import tree_state


@pytest.fixture()
def coco(tmp_path):
    """Three 40x50 images with one box each, in a COCO JSON."""
    images = tmp_path / "imgs"
    images.mkdir()
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    for i in range(3):
        cv2.imwrite(str(images / f"im{i}.png"), np.full((40, 50, 3), 60 * i, np.uint8))
        doc["images"].append({"id": i + 1, "file_name": f"im{i}.png", "width": 50, "height": 40})
        doc["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [5, 5, 10, 10]})
    ann = tmp_path / "instances_val.json"
    ann.write_text(json.dumps(doc))
    return ann, images, doc


def _no_detections(images: list) -> list:
    return [np.zeros((0, 6)) for _ in images]


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------
def test_evaluate_refuses_ground_truth_without_annotations(coco, tmp_path, cli, monkeypatch):
    ann, images, doc = coco
    doc["annotations"] = []
    ann.write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    before = tree_state(tmp_path)
    cli.error(
        "evaluate", "model=yolo11n-pst.yaml", f"images={images}", f"annotations={ann}", match="has no annotations"
    )
    assert tree_state(tmp_path) == before  # not even the detections file


def test_evaluate_refuses_empty_and_truncated_images_as_corrupt(coco, tmp_path, cli):
    from pst_yolo.eval.coco import CocoDataError, evaluate

    ann, images, _ = coco
    png = (images / "im2.png").read_bytes()
    (images / "im2.png").write_bytes(png[:-40])  # truncated: no IEND chunk
    with pytest.raises(CocoDataError, match=r"im2\.png: corrupt or truncated image"):
        evaluate(_no_detections, images, ann, names=["thing"], save=tmp_path / "d.json", verbose=False, progress=False)
    (images / "im1.png").write_bytes(b"")
    before = tree_state(tmp_path)
    err = cli.error(
        "evaluate", "model=yolo11n-pst.yaml", f"images={images}", f"annotations={ann}", match="corrupt or truncated"
    )
    assert "im1.png" in err and "0 bytes" in err
    assert tree_state(tmp_path) == before


def test_evaluate_never_writes_over_the_annotations_or_a_foreign_file(coco, tmp_path, cli):
    from pst_yolo.eval.coco import evaluate

    ann, images, _ = coco
    before = tree_state(tmp_path)
    cli.error(
        "evaluate",
        "model=yolo11n-pst.yaml",
        f"images={images}",
        f"annotations={ann}",
        f"save={ann}",
        match="is the annotations file itself",
    )
    (tmp_path / "notes.json").write_text('{"mine": true}')
    before = tree_state(tmp_path)
    with pytest.raises(ValueError, match="not a detections JSON"):
        evaluate(_no_detections, images, ann, names=["thing"], save=tmp_path / "notes.json", verbose=False)
    assert tree_state(tmp_path) == before
    # an earlier detections file is replaced
    evaluate(_no_detections, images, ann, names=["thing"], save=tmp_path / "d.json", verbose=False, progress=False)
    evaluate(_no_detections, images, ann, names=["thing"], save=tmp_path / "d.json", verbose=False, progress=False)


def test_evaluate_settings_are_checked_before_the_model_loads(coco, cli):
    ann, images, _ = coco
    common = ("evaluate", "model=/nonexistent/best.pt", f"images={images}", f"annotations={ann}")
    cli.error(*common, "batch=0", match="batch=0: must be >= 1")
    cli.error(*common, "conf=1.5", match="conf=1.5: must be between 0 and 1")
    cli.error(*common, match="weights not found: /nonexistent/best.pt")


# --------------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_set(tmp_path, cli):
    assert cli("synth", tmp_path / "data", "train=2", "val=1", "imgsz=64") == 0
    return tmp_path / "data"


def test_bench_with_a_missing_weights_file_fails_before_training(tiny_set, tmp_path, cli):
    project = tmp_path / "runs"
    err = cli.error(
        "bench",
        f"data={tiny_set}",
        "models=yolo11n-pst.yaml,/nonexistent.pt",
        "epochs=1",
        "batch=2",
        f"project={project}",
        match="weights not found: /nonexistent.pt",
    )
    assert "Traceback" not in err
    assert not project.exists()  # nothing trained, no run folder


def test_bench_checks_the_data_and_every_model_before_training(tiny_set, tmp_path, cli):
    project = tmp_path / "runs"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    cli.error(
        "bench", f"data={tiny_set}", f"models=yolo11n.yaml,{broken}", f"project={project}", match="cannot be loaded"
    )
    cli.error("bench", f"data={tiny_set}", "models=nosuch-pst.yaml", f"project={project}", match="nosuch-pst.yaml")
    cli.error("bench", f"data={tiny_set}", "epochs=0", f"project={project}", match="epochs=0: must be >= 1")
    val = tiny_set / "annotations" / "instances_val.json"
    doc = json.loads(val.read_text())
    doc["annotations"][0]["bbox"][0] = float("nan")
    val.write_text(json.dumps(doc))
    cli.error("bench", f"data={tiny_set}", f"project={project}", match=r"not finite.*bbox\[0\] = NaN")
    assert not project.exists()


def test_bench_exist_ok_never_takes_over_a_users_folder(tiny_set, tmp_path, cli):
    mine = tmp_path / "runs" / "bench"
    mine.mkdir(parents=True)
    (mine / "results.md").write_text("my own notes")
    before = tree_state(tmp_path / "runs")
    cli.error(
        "bench",
        f"data={tiny_set}",
        "models=/nonexistent.pt",
        f"project={tmp_path / 'runs'}",
        "exist_ok=true",
        match="weights not found",
    )
    from pst_yolo.data.writer import WriterError
    from pst_yolo.eval.bench import bench

    with pytest.raises(WriterError, match="pst-yolo did not write it"):
        bench(data=tiny_set, models=["yolo11n.yaml"], project=tmp_path / "runs", exist_ok=True, verbose=False)
    assert tree_state(tmp_path / "runs") == before


# --------------------------------------------------------------------------------------------------
# compare, speed, stock modes
# --------------------------------------------------------------------------------------------------
def test_compare_checks_data_and_output_folder_before_validating(tmp_path, cli):
    cli.error("compare", "model=yolo11n-pst.yaml", f"data={tmp_path / 'nosuch.yaml'}", match="no such file or folder")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "compare.md").write_text("my table")
    (tmp_path / "data.yaml").write_text("val: images\nnames: {0: a}\n")
    before = tree_state(tmp_path)
    cli.error(
        "compare",
        "model=/nonexistent.pt",
        f"data={tmp_path / 'data.yaml'}",
        f"save_dir={mine}",
        match="pst-yolo did not write it",
    )
    cli.error("compare", "model=/nonexistent.pt", f"data={tmp_path / 'data.yaml'}", match="weights not found")
    assert tree_state(tmp_path) == before


def test_speed_checks_models_before_timing(tmp_path, cli):
    cli.error("speed", "models=yolo11n.yaml,/nonexistent.pt", f"project={tmp_path}", match="weights not found")
    cli.error("speed", "runs=0", f"project={tmp_path}", match="runs=0: must be >= 1")
    assert list(tmp_path.iterdir()) == []


def test_stock_mode_topk_without_a_model_is_an_error(cli):
    cli.error("val", "topk=8", match="topk= needs model=")
    cli.error("predict", "topk=8", "model=", match="topk= needs model=")


def test_run_folders_are_numbered_and_never_shared(tmp_path):
    from pst_yolo.data.writer import run_folder

    first = run_folder(tmp_path / "exp", "test")
    second = run_folder(tmp_path / "exp", "test")
    assert (first.name, second.name) == ("exp", "exp2")
    assert run_folder(first, "test", numbered=False) == first  # an earlier pst-yolo run folder may be re-used
    Path(tmp_path / "user").mkdir()
    (tmp_path / "user" / "x.txt").write_text("x")
    from pst_yolo.data.writer import WriterError

    with pytest.raises(WriterError, match="did not write it"):
        run_folder(tmp_path / "user", "test", numbered=False)
