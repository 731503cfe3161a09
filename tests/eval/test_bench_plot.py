"""results.png shows what it measures: its title names the models and the data (not a path), every k label
sits inside the axes, and the metric axis starts at 0 so a difference of a few thousandths looks small."""

from __future__ import annotations

from pathlib import Path

import pytest

from pst_yolo.eval.bench import DETECT, BenchRow, Dataset, _figure, data_name, plot_title


def rows(ap_stock=0.611, ap_k0=0.452, ap_k8=0.458, ms=(13.8, 17.0, 17.4)) -> list[BenchRow]:
    """The README's main-job figures: stock, PST at k = 0 and at k = 8."""
    return [
        BenchRow("yolo11n", None, 2_590_000, 0.40, {"AP": ap_stock}, ms[0], "a.pt"),
        BenchRow("yolo11n-pst", 0, 2_570_000, 0.39, {"AP": ap_k0}, ms[1], "b.pt"),
        BenchRow("yolo11n-pst", 8, 2_570_000, 0.41, {"AP": ap_k8}, ms[2], "b.pt"),
    ]


def test_title_names_models_and_data_not_a_path(tmp_path):
    data_yaml = tmp_path / "runs" / "pst-bench" / "bench" / "mydata" / "data.yaml"
    dataset = Dataset(train=data_yaml, synthetic=True, imgsz=160, description=f"`{data_yaml}`; scored ...")
    title = plot_title(rows(), data_name(str(data_yaml), dataset), 160)
    assert title == "yolo11n vs yolo11n-pst on mydata, 160 px"
    assert data_name(None, Dataset(train=data_yaml, synthetic=True, imgsz=160)) == "the generated set"
    assert data_name(None, Dataset(train=None, synthetic=False, imgsz=None), "x/instances_val2017.json") == (
        "instances_val2017"
    )
    folder = Dataset(train=tmp_path / "imagenette", synthetic=False, imgsz=None)
    assert data_name(str(tmp_path / "imagenette"), folder) == "imagenette"
    fig = _figure(rows(), title, DETECT)
    assert fig.axes[0].get_title() == title and str(Path("/")) not in fig.axes[0].get_title()


@pytest.mark.parametrize(
    "case",
    [
        rows(),
        rows(ap_stock=0.99, ap_k0=0.995, ap_k8=1.0),  # near the top
        rows(ap_stock=0.0, ap_k0=0.0, ap_k8=0.001, ms=(0.5, 80.0, 95.0)),  # bottom, and far right
    ],
    ids=["main-job", "top", "bottom-right"],
)
def test_every_label_is_inside_the_axes(case):
    fig = _figure(case, plot_title(case, "the generated set", 160), DETECT)
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame, page = ax.get_window_extent(renderer), fig.bbox
    labels = [t for t in ax.texts if t.get_text().startswith("k=")]
    assert len(labels) == 2
    for text in labels:
        box = text.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (
            text.get_text(),
            box,
            frame,
        )
    a, b = (t.get_window_extent(renderer) for t in labels)
    assert not a.overlaps(b), "the two k labels overlap"
    title = ax.title.get_window_extent(renderer)
    assert page.x0 <= title.x0 and title.x1 <= page.x1 and title.y1 <= page.y1


def test_metric_axis_starts_at_zero():
    """PST k = 0 vs k = 8 differ by 0.006 AP: on a 0-1 axis that is a small step, not the plot's full height."""
    ax = _figure(rows(), "t", DETECT).axes[0]
    low, high = ax.get_ylim()
    assert low == 0 and high >= 1
    assert ax.get_xlim()[0] == 0
