"""``explain`` panels on small images: the header lines wrap to the panel's width instead of being cut."""

from __future__ import annotations

import numpy as np
import pytest

from pst_yolo.viz.attention_maps import LayerSelection, layer_panel, wrap_text

BACKGROUND = 24  # the header strip's grey


def selection(side: int) -> LayerSelection:
    """Layer 13 of yolo11n-pst on a ``side`` px input: 2 heads x k = 8 on the P5 map under P4."""
    fine, coarse = side // 16, side // 32
    rng = np.random.default_rng(0)
    return LayerSelection(
        "13",
        0,
        8,
        (fine, fine),
        (coarse, coarse),
        2,
        input_hw=(side, side),
        score=rng.random((1, 2, coarse, coarse)).astype(np.float32),
        indices=rng.integers(0, coarse * coarse, size=(1, 2, 8)),
    )


def header(panel: np.ndarray, side: int) -> np.ndarray:
    return panel[: panel.shape[0] - side]


@pytest.mark.parametrize("side", [96, 128, 160])
def test_small_panel_headers_are_not_cut(side):
    image = np.full((side, side, 3), 128, dtype=np.uint8)
    strip = header(layer_panel(image, [selection(side)], max_side=side), side)
    # text that ran past the panel would reach its right edge: the last columns stay background
    assert (strip[:, -3:] == BACKGROUND).all(), "header text reaches the panel's right edge (cut)"
    assert (strip != BACKGROUND).any()  # and there is a header


def test_wide_panels_keep_three_header_lines_and_narrow_ones_wrap():
    wide = header(layer_panel(np.zeros((640, 640, 3), np.uint8), [selection(640)], max_side=640), 640)
    narrow = header(layer_panel(np.zeros((160, 160, 3), np.uint8), [selection(160)], max_side=160), 160)
    assert narrow.shape[0] > wide.shape[0]


@pytest.mark.parametrize("width", [60, 160, 640])
def test_wrap_keeps_every_word_and_fits(width):
    import cv2

    text = "k=8 per head x 2 heads: 13 distinct 2x2 patches (green) supercalifragilisticexpialidocious"
    lines = wrap_text(text, width, 0.35)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    for line in lines:
        assert cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)[0][0] <= width - 8, line
