"""pst-yolo bench end to end on a tiny generated set (1 epoch, 64 px), through its CLI function."""

from __future__ import annotations

import csv
import json

import pytest

from pst_yolo.cli import main
from pst_yolo.eval.bench import DETECT, columns

pytestmark = pytest.mark.slow  # trains models / runs subprocesses

COLUMNS = columns(DETECT)


def _table_rows(md_text: str) -> list[list[str]]:
    lines = [line for line in md_text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The default models (yolo11n, yolo11n-pst, yolo11n-pst-p4) trained 1 epoch on a generated 8/4-image set, k = 0 and 8."""
    root = tmp_path_factory.mktemp("bench")
    rc = main(
        ["bench", "--train", "8", "--val", "4", "synth_imgsz=64", "epochs=1", "batch=4", f"project={root}", "name=run"]
    )
    assert rc == 0
    return root / "run"


def test_bench_writes_table_csv_and_plot(first_run, capsys):
    run = first_run
    for name in ("results.md", "results.csv", "results.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert (run / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _table_rows((run / "results.md").read_text())
    assert [(r[0], r[1]) for r in rows] == [
        ("yolo11n", "-"),
        ("yolo11n-pst", "0"),
        ("yolo11n-pst", "8"),
        ("yolo11n-pst-p4", "0"),
        ("yolo11n-pst-p4", "8"),
    ]
    for r in rows:
        assert r[2].endswith(" M") and float(r[3]) > 0  # params, GFLOPs
        ap = [float(v) for v in r[4:6]]
        assert all(0.0 <= v <= 1.0 for v in ap)
        assert float(r[9]) > 0  # ms/image
    assert rows[1][2] == rows[2][2]  # same weights at both k
    with (run / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(t["model"], t["k"]) for t in table][:3] == [("yolo11n", ""), ("yolo11n-pst", "0"), ("yolo11n-pst", "8")]
    assert len(table) == 5
    assert {"AP", "AP75", "AR100", "ARl", "train_seconds"} <= set(table[0])
    assert all(float(t["train_seconds"]) > 0 for t in table)
    # the generated dataset and both trainings live in the run folder; detections use the COCO ids
    assert (run / "data" / "coco_map.json").is_file()
    assert (run / "yolo11n" / "weights" / "best.pt").is_file()
    dets = json.loads((run / "detections" / "yolo11n-pst_k8.json").read_text())
    gt = json.loads((run / "data" / "annotations" / "instances_val.json").read_text())
    assert {d["image_id"] for d in dets} <= {im["id"] for im in gt["images"]}
    assert {d["category_id"] for d in dets} <= {c["id"] for c in gt["categories"]}


def test_bench_evaluates_given_weights_without_training(first_run, tmp_path, cli):
    import shutil

    run = first_run
    base, pst = tmp_path / "yolo11n.pt", tmp_path / "yolo11n-pst.pt"  # the table names models by file name
    shutil.copy(run / "yolo11n" / "weights" / "best.pt", base)
    shutil.copy(run / "yolo11n-pst" / "weights" / "best.pt", pst)
    rc = cli(
        "bench",
        f"data={run / 'data'}",
        f"models={base},{pst}",
        "topk=0,4,8",
        "imgsz=64",
        f"project={tmp_path}",
        "name=again",
    )
    assert rc == 0
    again = tmp_path / "again"
    assert not list(again.glob("*/weights"))  # nothing trained
    rows = _table_rows((again / "results.md").read_text())
    assert [(r[0], r[1]) for r in rows] == [
        ("yolo11n", "-"),
        ("yolo11n-pst", "0"),
        ("yolo11n-pst", "4"),
        ("yolo11n-pst", "8"),
    ]
    # same weights, same data: the same COCO scores as in the run that trained them
    with (run / "results.csv").open() as f:
        first = {(t["model"], t["k"]): t for t in csv.DictReader(f)}
    with (again / "results.csv").open() as f:
        now = {(t["model"], t["k"]): t for t in csv.DictReader(f)}
    assert len(set(first) & set(now)) == 3
    for key in set(first) & set(now):
        assert [now[key][s] for s in ("AP", "AP50", "AR100")] == [first[key][s] for s in ("AP", "AP50", "AR100")]
    # evaluate(): topk= on a model without PST layers is refused, not ignored
    from ultralytics import YOLO

    from pst_yolo.eval.coco import evaluate

    data = run / "data"
    with pytest.raises(ValueError, match="no PST layers"):
        evaluate(
            YOLO(str(base)),
            data / "images" / "val",
            data / "annotations" / "instances_val.json",
            topk=8,
            imgsz=64,
            save=tmp_path / "d.json",
            verbose=False,
            progress=False,
        )
    # <run>/weights/best.pt is named after its run folder; two models with one name are refused
    from pst_yolo.eval.tables import model_label

    assert model_label(run / "yolo11n-pst" / "weights" / "best.pt") == "yolo11n-pst"
    cli.error(
        "bench",
        f"data={run / 'data'}",
        f"models={base},{run / 'yolo11n' / 'weights' / 'best.pt'}",
        f"project={tmp_path}",
        match="share a name",
    )


def test_bench_refuses_unusable_input(tmp_path, cli):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.yaml").write_text("train: images/train\nval: images/val\nnames: {0: a}\n")
    cli.error(
        "bench",
        f"data={tmp_path / 'plain'}",
        f"project={tmp_path}",
        "models=yolo11n.yaml",
        match="no coco_map.json next to",
    )
    cli.error(
        "bench", "models=yolo11n.txt", f"project={tmp_path}", match="give a .yaml config .*, .pt weights or an export"
    )
    cli.error(
        "bench", "models=yolo11n.onnx", f"project={tmp_path}", match="model not found: yolo11n.onnx"
    )  # (exports: ok)
    cli.error("bench", "epoch=3", match="unknown key 'epoch'")
    cli.error("bench", f"data={tmp_path / 'plain'}", "train=8", match="do not apply with data=")
