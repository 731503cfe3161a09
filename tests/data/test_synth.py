"""pst_yolo.data.synth: deterministic, both formats agree, sizes span COCO's ranges, CLI forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pst_yolo.data.coco_map import read_map
from pst_yolo.data.synth import CLASS_NAMES, SynthSpec, generate
from pst_yolo.data.writer import MANIFEST


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_other_seed_differs(tmp_path):
    spec = SynthSpec(train=4, val=3, imgsz=64, seed=3)
    generate(tmp_path / "a", spec)
    generate(tmp_path / "b", spec)
    generate(tmp_path / "c", SynthSpec(train=4, val=3, imgsz=64, seed=4))
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    # images + labels, 2 COCO JSONs, data.yaml + coco_map.json, and the writer's manifest
    assert len(a) == 2 * (4 + 3) + 2 + 2 + 1 and MANIFEST in a
    assert a == b
    images = [k for k in a if k.startswith("images/")]
    assert set(a) == set(c)
    assert all(a[k] != c[k] for k in images)


def test_val_split_does_not_depend_on_train_size(tmp_path):
    generate(tmp_path / "small", SynthSpec(train=1, val=3, imgsz=64, seed=0))
    generate(tmp_path / "big", SynthSpec(train=5, val=3, imgsz=64, seed=0))
    small, big = _files(tmp_path / "small"), _files(tmp_path / "big")
    for key in [k for k in small if "val" in k and k.startswith(("images", "labels"))]:
        assert small[key] == big[key], key
    coco_small, coco_big = (json.loads(d["annotations/instances_val.json"]) for d in (small, big))
    for part in ("images", "annotations", "categories"):
        assert coco_small[part] == coco_big[part]


def test_regenerating_smaller_into_the_same_folder_drops_old_files(tmp_path):
    generate(tmp_path / "d", SynthSpec(train=5, val=2, imgsz=64))
    generate(tmp_path / "d", SynthSpec(train=2, val=2, imgsz=64))
    assert len(list((tmp_path / "d" / "images" / "train").iterdir())) == 2
    assert len(list((tmp_path / "d" / "labels" / "train").iterdir())) == 2


def test_yolo_labels_match_coco_json_and_mapping(tmp_path):
    data_yaml = generate(tmp_path / "d", SynthSpec(train=3, val=6, imgsz=96, seed=1))
    root = data_yaml.parent
    coco = json.loads((root / "annotations" / "instances_val.json").read_text())
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4, 5]
    assert [c["name"] for c in coco["categories"]] == list(CLASS_NAMES)
    for im in coco["images"]:
        lines = (root / "labels" / "val" / Path(im["file_name"]).with_suffix(".txt")).read_text().split("\n")[:-1]
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        assert len(lines) == len(anns) >= 1
        for line, a in zip(lines, anns):
            cls, cx, cy, w, h = (float(v) for v in line.split())
            x, y, bw, bh = a["bbox"]
            assert int(cls) + 1 == a["category_id"]
            assert (cx * 96, cy * 96, w * 96, h * 96) == pytest.approx((x + bw / 2, y + bh / 2, bw, bh), abs=1e-3)
            assert 0 <= x and 0 <= y and x + bw <= 96 and y + bh <= 96
    doc = read_map(root)
    assert doc["class_map"] == {i: i + 1 for i in range(5)}
    assert doc["splits"]["val"][0]["annotations"] == (root / "annotations" / "instances_val.json").resolve()
    text = data_yaml.read_text()
    assert "path:" not in text and "disc" in text  # relative to its own folder: the dataset can be moved


def test_sizes_span_coco_small_medium_large(tmp_path):
    generate(tmp_path / "d", SynthSpec(train=0, val=40, imgsz=160, seed=0, max_objects=8))
    anns = json.loads((tmp_path / "d" / "annotations" / "instances_val.json").read_text())["annotations"]
    areas = [a["bbox"][2] * a["bbox"][3] for a in anns]
    assert sum(a < 32**2 for a in areas) > 0.2 * len(areas)
    assert sum(32**2 <= a < 96**2 for a in areas) > 0.2 * len(areas)
    assert sum(a >= 96**2 for a in areas) > 0.05 * len(areas)  # largest drawn first, so they fit
    assert {a["category_id"] for a in anns} == {1, 2, 3, 4, 5}


def test_cli_forms(tmp_path, capsys, cli):
    assert cli("synth", tmp_path / "kv", "train=2", "val=1", "imgsz=64", "seed=5") == 0
    assert cli("synth", tmp_path / "dash", "--train", "2", "--val=1", "--imgsz", "64", "--seed", "5") == 0
    assert _files(tmp_path / "kv") == _files(tmp_path / "dash")
    assert "data.yaml" in capsys.readouterr().out
    cli.error("synth", tmp_path / "x", "imgsz=16", match="imgsz must be >= 32")
    cli.error("synth", tmp_path / "x", "size=16", match="unknown key 'size'")
