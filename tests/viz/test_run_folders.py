"""``demo`` and ``explain`` never write over their input images or into a folder pst-yolo did not make; the
refusal comes before the model is loaded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import tree_state


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((48, 64, 3), 50 + 40 * i, np.uint8))
    return folder


def test_demo_refuses_to_save_over_its_source_images(images, tmp_path, cli):
    before = tree_state(tmp_path)
    model = "model=/nonexistent.pt"  # never reached: the output folder is checked first
    cli.error("demo", f"source={images}", model, f"save_dir={images}", "show=false", match="is the input")
    cli.error("demo", f"source={images / 'img0.png'}", model, f"save_dir={images}", match="contains the input")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "img0.png").write_bytes(b"the user's picture")
    before = tree_state(tmp_path)
    cli.error("demo", f"source={images}", model, f"save_dir={tmp_path / 'mine'}", match="did not write it")
    assert tree_state(tmp_path) == before


def test_explain_refuses_to_write_over_its_input_or_an_existing_file(images, tmp_path, cli):
    model = "model=/nonexistent.pt"
    image = images / "img0.png"
    before = tree_state(tmp_path)
    cli.error("explain", f"image={image}", model, f"out={image}", match="is the input")
    cli.error("explain", f"image={image}", model, f"save_dir={images}", match="contains the input")
    (tmp_path / "picture.png").write_bytes(b"someone's picture")
    before = tree_state(tmp_path)
    cli.error("explain", f"image={image}", model, f"out={tmp_path / 'picture.png'}", match="overwrite=true")
    assert tree_state(tmp_path) == before
