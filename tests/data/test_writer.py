"""Nothing lost: the dataset writers (``synth``, ``coco2yolo``) never delete or overwrite a file they did not
write, never write over their own input, and leave the old dataset intact when interrupted or raced.

Each case runs as a user would (the ``pst-yolo`` command; a subprocess where Ctrl-C or a second process is
part of the case) and compares every file under the folders involved before and after (``tree_state``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import tree_state

MANIFEST = ".pst-yolo-manifest.json"


def _coco_set(root: Path, n: int = 3) -> tuple[Path, Path]:
    """A small COCO dataset in the usual layout: root/images/val/*.png, root/annotations/instances_val.json."""
    images = root / "images" / "val"
    images.mkdir(parents=True)
    entries, anns = [], []
    for i in range(n):
        cv2.imwrite(str(images / f"im{i}.png"), np.full((40, 50, 3), 30 * i, np.uint8))
        entries.append({"id": i + 1, "file_name": f"im{i}.png", "width": 50, "height": 40})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 0})
    (root / "annotations").mkdir()
    js = root / "annotations" / "instances_val.json"
    js.write_text(json.dumps({"images": entries, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    return js, images


# --------------------------------------------------------------------------------------------------
# 1. coco2yolo into its own source folder
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_coco2yolo_in_place_is_refused_and_the_source_is_untouched(tmp_path, cli, mode):
    js, images = _coco_set(tmp_path / "B")
    before = tree_state(tmp_path)
    err = cli.error(
        "coco2yolo",
        f"out={tmp_path / 'B'}",
        f"val={js}",
        f"val_images={images}",
        f"mode={mode}",
        match="contains the input",
    )
    assert str(images) in err or str(js) in err
    assert tree_state(tmp_path) == before  # the images and the JSON are as they were; nothing was added


def test_coco2yolo_target_reached_through_a_symlink_or_dotdot_is_still_the_source(tmp_path, cli):
    js, images = _coco_set(tmp_path / "B")
    (tmp_path / "link").symlink_to(tmp_path / "B")
    before = tree_state(tmp_path)
    cli.error("coco2yolo", f"out={tmp_path / 'link'}", f"val={js}", f"val_images={images}", match="contains the input")
    cli.error("coco2yolo", f"out={images}/../..", f"val={js}", f"val_images={images}", match="contains the input")
    cli.error("coco2yolo", f"out={images / 'sub'}", f"val={js}", f"val_images={images}", match="lies inside the input")
    assert tree_state(tmp_path) == before


# --------------------------------------------------------------------------------------------------
# 2. coco2yolo into a folder with the user's own files
# --------------------------------------------------------------------------------------------------
def test_coco2yolo_refuses_a_folder_it_did_not_write_and_keeps_the_users_files(tmp_path, cli):
    js, images = _coco_set(tmp_path / "src")
    out = tmp_path / "out"
    for rel in ("images/val/mine.png", "labels/val/mine.txt", "notes.txt"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(f"the user's {rel}")
    before = tree_state(out)
    cli.error("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", match="pst-yolo did not write it")
    assert tree_state(out) == before
    # overwrite=true writes the dataset next to the user's files and keeps every one of them as it was
    assert cli("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", "overwrite=true") == 0
    after = tree_state(out)
    assert {k: after[k] for k in before} == before
    assert (out / "data.yaml").is_file() and (out / "labels" / "val" / "im0.txt").is_file()
    # a user file where the dataset puts one of its own is never replaced, even with overwrite=true
    (out / "labels" / "val" / "im1.txt").unlink()
    (out / "labels" / "val" / "im1.txt").write_text("the user's labels")
    before = tree_state(out)
    cli.error("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", "overwrite=true", match="did not write")
    assert tree_state(out) == before


def test_coco2yolo_replaces_only_its_own_earlier_output(tmp_path, cli):
    js, images = _coco_set(tmp_path / "src")
    out = tmp_path / "out"
    assert cli("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", "mode=copy") == 0
    (out / "labels" / "val.cache").write_bytes(b"Ultralytics' label cache")  # derived from our labels
    (out / "mine.txt").write_text("added by the user")
    cli.error("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", match="already holds a dataset")
    # the second conversion lists fewer images: the old image and label of im2 must go, the user's file stays
    doc = json.loads(js.read_text())
    doc["images"], doc["annotations"] = doc["images"][:2], doc["annotations"][:2]
    js2 = tmp_path / "instances_val.json"
    js2.write_text(json.dumps(doc))
    assert cli("coco2yolo", f"out={out}", f"val={js2}", f"val_images={images}", "overwrite=true") == 0
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["im0.png", "im1.png"]
    assert sorted(p.name for p in (out / "labels" / "val").iterdir()) == ["im0.txt", "im1.txt"]
    assert not (out / "labels" / "val.cache").exists()  # stale: it described the old labels
    assert (out / "mine.txt").read_text() == "added by the user"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary folders left


def test_coco2yolo_interrupted_leaves_the_old_dataset(tmp_path, cli, monkeypatch):
    from pst_yolo.data import coco2yolo

    js, images = _coco_set(tmp_path / "src", n=4)
    out = tmp_path / "out"
    assert cli("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", "mode=copy") == 0
    before = tree_state(tmp_path)
    placed = []
    real_place = coco2yolo._place

    def place_then_interrupt(src, dst, mode):  # Ctrl-C after two of the four images
        if len(placed) == 2:
            raise KeyboardInterrupt
        placed.append(dst)
        return real_place(src, dst, mode)

    monkeypatch.setattr(coco2yolo, "_place", place_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cli("coco2yolo", f"out={out}", f"val={js}", f"val_images={images}", "overwrite=true")
    assert len(placed) == 2
    assert tree_state(tmp_path) == before  # the old dataset, complete; no half-written folder next to it


# --------------------------------------------------------------------------------------------------
# 3. synth over user files, an empty out=, Ctrl-C, two writers at once
# --------------------------------------------------------------------------------------------------
def test_synth_refuses_a_folder_with_files_it_did_not_write(tmp_path, cli):
    out = tmp_path / "d"
    for rel in ("data.yaml", "coco_map.json", "annotations/instances_train.json", "images/train/train_00000.png"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(f"the user's {rel}")
    before = tree_state(tmp_path)
    cli.error("synth", out, "train=2", "val=1", "imgsz=64", match="pst-yolo did not write it")
    assert tree_state(tmp_path) == before
    # overwrite=true would need to replace these very files: refused, nothing changed
    err = cli.error("synth", out, "train=2", "val=1", "imgsz=64", "overwrite=true", match="did not write")
    assert "data.yaml" in err or "train_00000.png" in err
    assert tree_state(tmp_path) == before


def test_synth_with_an_empty_out_is_an_error_not_the_current_directory(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.yaml").write_text("the user's own data.yaml\n")
    before = tree_state(tmp_path)
    cli.error("synth", "out=", "train=1", "val=1", "imgsz=64", match="out= is empty")
    js, images = _coco_set(tmp_path / "src")
    before = tree_state(tmp_path)
    cli.error("coco2yolo", "out=", f"val={js}", f"val_images={images}", match="out= is empty")
    assert tree_state(tmp_path) == before


def test_synth_interrupted_in_process_leaves_the_old_dataset(tmp_path, cli, monkeypatch):
    from pst_yolo.data import synth

    out = tmp_path / "d"
    assert cli("synth", out, "train=3", "val=2", "imgsz=64") == 0
    before = tree_state(tmp_path)
    drawn = []
    real_draw = synth.draw_image

    def draw_then_interrupt(rng, spec):
        if len(drawn) == 5:
            raise KeyboardInterrupt
        drawn.append(1)
        return real_draw(rng, spec)

    monkeypatch.setattr(synth, "draw_image", draw_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cli("synth", out, "train=8", "val=2", "imgsz=64", "seed=1")
    assert tree_state(tmp_path) == before


def _synth_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pst_yolo.cli", "synth", str(out), *args]


def _start_synth(out: Path, *words: str) -> subprocess.Popen:
    """``pst-yolo synth`` in the background, stoppable with Ctrl-C as from a shell: a test runner's worker may
    ignore SIGINT, a child inherits that, and Python then never raises KeyboardInterrupt (the run would finish)."""
    return subprocess.Popen(
        _synth_cmd(out, *words), stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )


def _wait_for_partial(parent: Path, name: str, proc: subprocess.Popen, files: int = 20, timeout: float = 120) -> None:
    """Until the writer's temporary folder next to ``parent/name`` holds ``files`` files."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        partial = [p for p in parent.glob(f".{name}.partial-*") if p.is_dir()]
        if partial and sum(1 for _ in partial[0].rglob("*.png")) >= files:
            return
        time.sleep(0.05)
    raise AssertionError("the writer never got going")


@pytest.mark.slow
def test_synth_killed_with_ctrl_c_leaves_the_old_dataset(tmp_path):
    out = tmp_path / "d"
    assert subprocess.run(_synth_cmd(out, "train=3", "val=2", "imgsz=64"), capture_output=True).returncode == 0
    before = tree_state(tmp_path)
    proc = _start_synth(out, "train=20000", "val=10", "imgsz=64", "seed=1")
    _wait_for_partial(tmp_path, "d", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in err
    assert tree_state(tmp_path) == before  # the old dataset, complete; the partial one and the lock are gone


@pytest.mark.slow
def test_two_synth_runs_into_one_folder_never_both_write(tmp_path):
    out = tmp_path / "d"
    first = _start_synth(out, "train=20000", "val=10", "imgsz=64")
    _wait_for_partial(tmp_path, "d", first, files=5)
    second = subprocess.run(_synth_cmd(out, "train=2", "val=1", "imgsz=64"), capture_output=True, text=True)
    assert second.returncode == 2, second.stderr
    assert "is writing" in second.stderr and str(out) in second.stderr
    assert not out.exists()  # the second wrote nothing; the first writes only into its temporary folder
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    # the lock went with the first process: the folder can be written now
    assert subprocess.run(_synth_cmd(out, "train=2", "val=1", "imgsz=64"), capture_output=True).returncode == 0
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["train_00000.png", "train_00001.png"]
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_a_held_lock_refuses_a_second_writer_in_process(tmp_path, cli):
    from pst_yolo.data.writer import target_lock

    out = (tmp_path / "d").resolve()
    with target_lock(out, "test"):
        cli.error("synth", out, "train=1", "val=1", "imgsz=64", match="is writing")
        assert not out.exists()
    assert cli("synth", out, "train=1", "val=1", "imgsz=64") == 0
    assert json.loads((out / MANIFEST).read_text())["tool"] == "synth"
