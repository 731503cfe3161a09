"""pst-yolo bench task=segment|pose|obb: the one runner with the tasks' BenchTask entries."""

from __future__ import annotations

import csv
import math

import pytest

from pst_yolo.data.synth import SynthSpec
from pst_yolo.data.synth_tasks import generate_task
from pst_yolo.eval.bench import OBB, POSE, SEGMENT, TASKS, BenchRow, columns, markdown_table

STOCK = {"segment": "yolo11n-seg", "pose": "yolo11n-pose", "obb": "yolo11n-obb"}
PRIMARY = {"segment": "mask mAP50-95", "pose": "pose mAP50-95", "obb": "mAP50-95"}


@pytest.fixture(scope="module")
def pose_data(tmp_path_factory):
    return generate_task(tmp_path_factory.mktemp("pose") / "data", "pose", SynthSpec(train=2, val=1, imgsz=64))


def test_every_task_has_one_entry_with_its_metrics():
    assert set(TASKS) == {"detect", "classify", "segment", "pose", "obb"}
    for spec in (SEGMENT, POSE, OBB):
        assert spec.default_models == (f"{STOCK[spec.name]}.yaml", f"{STOCK[spec.name]}-pst.yaml")
        assert spec.primary == PRIMARY[spec.name] and spec.primary in spec.columns
        assert spec.csv_stats == spec.columns
    assert SEGMENT.columns[-2:] == ("COCO segm AP", "COCO segm AP50")
    assert not any("COCO" in c for c in POSE.columns + OBB.columns)


def test_table_shows_unmeasured_stats_as_a_dash():
    row = BenchRow(
        model="yolo11n-seg",
        k=None,
        params=2_000_000,
        gflops=1.5,
        stats={"box mAP50-95": 0.25, "mask mAP50-95": 0.125, "mask mAP50": 0.5, "COCO segm AP": math.nan},
        ms_per_image=3.0,
        weights="w.pt",
    )
    lines = markdown_table([row], SEGMENT).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == list(columns(SEGMENT))
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[4:9] == ["0.250", "0.125", "0.500", "-", "-"]  # COCO segm: nan and missing


def test_bench_refuses_data_models_and_keys_of_another_task(pose_data, tmp_path, cli):
    cli.error(
        "bench", "task=segment", f"data={pose_data.parent}", f"project={tmp_path}", match="generated for task=pose"
    )
    cli.error("bench", "task=obb", f"data={tmp_path / 'missing'}", f"project={tmp_path}", match="no such data.yaml")
    cli.error(
        "bench",
        "task=segment",
        "models=yolo11n.yaml",
        f"project={tmp_path}",
        match="yolo11n.yaml is a detect model, not segment",
    )
    cli.error("bench", "task=pose", "annotations=a.json", match="unknown key 'annotations'")
    cli.error("bench", "task=pose", f"data={pose_data}", "train=8", match="do not apply with data=")


@pytest.mark.slow  # trains two models
@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_bench_task_compares_stock_and_pst(task, tmp_path, cli):
    rc = cli(
        "bench",
        f"task={task}",
        "train=8",
        "val=4",
        "synth_imgsz=64",
        "epochs=1",
        "batch=4",
        f"project={tmp_path}",
        "name=run",
    )
    assert rc == 0
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "results.csv").open()))
    stock = STOCK[task]
    pst = f"{stock}-pst"
    assert [(r["model"], r["k"]) for r in rows] == [(stock, ""), (pst, "0"), (pst, "8")]
    metric = PRIMARY[task]
    for r in rows:
        assert 0.0 <= float(r[metric]) <= 1.0
        assert float(r["GFLOPs"]) > 0 and float(r["ms_per_image"]) > 0 and int(r["params"]) > 0
        if task == "segment":  # pycocotools mask AP on the generated COCO JSON
            assert 0.0 <= float(r["COCO segm AP"]) <= 1.0 and not math.isnan(float(r["COCO segm AP50"]))
            assert (run / "detections" / f"{r['model']}{'_k' + r['k'] if r['k'] else ''}_segm.json").is_file()
    assert float(rows[2]["GFLOPs"]) > float(rows[1]["GFLOPs"])  # k = 8 counts the fine branch's attention
    md = (run / "results.md").read_text()
    assert f"# pst-yolo bench task={task}" in md and metric in md
    assert (run / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
