"""The browser demo (``pst-yolo app``) driven by Streamlit's own ``AppTest``: the page runs its script in
this process, the tests move its widgets and read what it shows.

Models are random-weights ``yolo11n-pst`` / stock ``yolo11n`` checkpoints at imgsz=128 with conf=0, so
every frame has boxes; the page's settings come from ``PST_YOLO_APP`` as ``pst-yolo app`` passes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from pst_yolo.cli import main
from pst_yolo.viz import app
from pst_yolo.viz.common import DemoError

testing = pytest.importorskip(
    "streamlit.testing.v1", reason="streamlit is not installed (the [app] extra: pip install 'pst-yolo[app]')"
)

IMGSZ = 128


def write_clip(path: Path, frames: int = 8, size: tuple[int, int] = (160, 120), fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        f = np.full((size[1], size[0], 3), (90, 60, 30), np.uint8)
        cv2.circle(f, (20 + 10 * i, size[1] // 2), 18, (40, 200, 250), -1)
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("app")
    torch.manual_seed(0)
    YOLO("yolo11n-pst.yaml").save(root / "pst.pt")
    YOLO("yolo11n.yaml").save(root / "stock.pt")
    garbage = root / "broken.mp4"
    garbage.write_bytes(os.urandom(4096))
    return SimpleNamespace(
        pst=root / "pst.pt", stock=root / "stock.pt", clip=write_clip(root / "clip.avi"), garbage=garbage
    )


def page(monkeypatch, **settings) -> testing.AppTest:
    values = {"imgsz": IMGSZ, "conf": 0.0, "max_frames": 2, **settings}
    monkeypatch.setenv(
        app.SETTINGS_ENV, json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()})
    )
    at = testing.AppTest.from_file(app.__file__, default_timeout=180)
    return at.run()


def captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def latency_rows(at) -> dict:
    assert len(at.table) == 1, "no latency panel"
    df = at.table[0].value
    return {row["k"]: row for row in df.to_dict("records")}


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_sample_plays_and_k_moves_live(models, monkeypatch):
    at = page(monkeypatch, model=models.pst)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert captions(at) == [captions(at)[0]] and captions(at)[0].startswith("k=8 (fine):")
    assert metric(at, "Frames") == "2" and int(metric(at, "Boxes")) > 0
    rows = latency_rows(at)
    assert list(rows) == ["k=8 (fine)"] and rows["k=8 (fine)"]["frames"] == 2
    assert float(rows["k=8 (fine)"]["p90 ms"]) >= float(rows["k=8 (fine)"]["mean ms"]) * 0.5 > 0
    assert at.slider(key="k").value == 8 and not at.slider(key="k").disabled
    at.slider(key="k").set_value(0).run()  # coarse only: a new row, the old one kept
    assert not at.exception and captions(at)[0].startswith("k=0 (coarse only):")
    assert list(latency_rows(at)) == ["k=8 (fine)", "k=0 (coarse only)"]
    at.slider(key="k").set_value(4)
    at.toggle(key="side").set_value(True).run()  # the same frame at k=0 and at k=4
    assert [c.split(":")[0] for c in captions(at)] == ["k=0 (coarse only)", "k=4 (fine)"]
    assert metric(at, "Boxes").startswith("k=0: ") and " · k=4: " in metric(at, "Boxes")
    assert {"k=0 (coarse only)", "k=4 (fine)"} <= set(latency_rows(at))


def test_overlay_controls_and_layers(models, monkeypatch):
    at = page(monkeypatch, model=models.pst)
    assert at.slider(key="alpha").disabled and at.multiselect(key="layers").disabled
    at.toggle(key="overlay").set_value(True).run()
    assert not at.exception and not at.error
    assert not at.slider(key="alpha").disabled and at.slider(key="alpha").value <= 0.35
    assert at.multiselect(key="layers").options == ["13", "16"]
    at.multiselect(key="layers").set_value(["16"])
    at.slider(key="alpha").set_value(0.6).run()
    assert not at.exception and not at.error and len(captions(at)) == 1


def test_stock_model_runs_with_k_controls_disabled(models, monkeypatch):
    at = page(monkeypatch, model=models.stock)
    assert not at.exception and not at.error
    assert any("has no PST layers: k controls disabled" in w.value for w in at.warning)
    assert at.slider(key="k").disabled and at.toggle(key="side").disabled and at.toggle(key="overlay").disabled
    assert captions(at)[0].startswith("no PST layers:") and list(latency_rows(at)) == ["no PST layers"]


def test_video_file_on_the_server_plays_to_its_end(models, monkeypatch):
    at = page(monkeypatch, model=models.pst, source=models.clip, max_frames=None)
    assert not at.exception and not at.error
    assert metric(at, "Frames") == "8" and any("end of the video" in s.value for s in at.success)
    at.slider(key="k").set_value(2).run()  # after the end: the last frame again, at the new k
    assert not at.exception and captions(at)[0].startswith("k=2 (fine):") and metric(at, "Frames") == "1"


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("missing-source", "cannot read"),
        ("garbage-video", "could not read a video frame"),
        ("missing-model", "model file not found"),
        ("bad-settings", "is not valid JSON"),
    ],
)
def test_clear_in_page_errors(models, monkeypatch, tmp_path, what, expected):
    if what == "bad-settings":
        monkeypatch.setenv(app.SETTINGS_ENV, "{not json")
        at = testing.AppTest.from_file(app.__file__, default_timeout=180).run()
    else:
        settings = {
            "missing-source": dict(model=models.pst, source=tmp_path / "nope.mp4"),
            "garbage-video": dict(model=models.pst, source=models.garbage),
            "missing-model": dict(model=tmp_path / "missing.pt"),
        }[what]
        at = page(monkeypatch, **settings)
    assert not at.exception, at.exception  # a message on the page, not a traceback
    assert any(expected in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("image")


def test_bad_upload_is_refused_with_a_message(tmp_path, monkeypatch):
    upload = SimpleNamespace(name="notes.txt", size=5, getvalue=lambda: b"hello")
    fake_st = SimpleNamespace(session_state={})
    with pytest.raises(DemoError, match=r"notes.txt: not a file this demo reads \(expected one of"):
        app._save_upload(fake_st, upload, {".mp4", ".png"})
    good = SimpleNamespace(name="up/../my clip.png", size=3, getvalue=lambda: b"png")
    path = app._save_upload(fake_st, good, {".mp4", ".png"})
    assert path.read_bytes() == b"png" and path.name == "my_clip.png"
    assert path.parent.parent.name.startswith("pst-yolo-app-")
    assert Path(path).is_relative_to(Path(__import__("tempfile").gettempdir()))


def test_sample_source_is_offline_and_deterministic():
    a, b = app.SampleSource(frames=5), app.SampleSource(frames=5)
    frames = [a.read() for _ in range(6)]
    assert frames[-1] is None and all(f.image.shape == (360, 480, 3) for f in frames[:-1])
    assert not np.array_equal(frames[0].image, frames[4].image)  # it pans
    b.seek(4)
    assert np.array_equal(b.read().image, frames[4].image) and a.fps == 10.0


def test_cli_app_checks_its_keys(monkeypatch, capsys, tmp_path):
    assert main(["app", "port=0"]) == 2
    assert "port must be a whole number from 1 to 65535" in capsys.readouterr().err
    calls = []

    class Server:  # stands in for the Streamlit process
        def __init__(self, cmd, env):
            calls.append((cmd, env))
            assert Path(json.loads(env[app.SETTINGS_ENV])["tmp"]).is_dir()

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(app.subprocess, "Popen", Server)
    best = tmp_path / "best.pt"  # (the model the page starts with must exist: checked before the server starts)
    best.write_bytes(b"")
    assert main(["app", f"model={best}", "port=8600", "topk=4"]) == 0
    cmd, env = calls[0]
    assert not Path(json.loads(env[app.SETTINGS_ENV])["tmp"]).exists()  # the uploads folder goes with the server
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1" and cmd[cmd.index("--server.port") + 1] == "8600"
    assert json.loads(env[app.SETTINGS_ENV])["model"] == str(best) and json.loads(env[app.SETTINGS_ENV])["topk"] == 4
    monkeypatch.setattr(app, "app_available", lambda: app.INSTALL_HINT)
    assert main(["app"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pst-yolo app: error: {app.INSTALL_HINT}"


def test_exported_model_runs_with_k_fixed(models, monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the [export] extra)")
    import shutil
    import warnings

    from ultralytics import YOLO

    src = tmp_path / "pst.pt"
    shutil.copy(models.pst, src)  # (the export lands next to its checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx = YOLO(str(src)).export(format="onnx", imgsz=IMGSZ, simplify=False)
    at = page(monkeypatch, model=onnx)
    assert not at.exception and not at.error
    assert any("k is fixed at export (k=8)" in w.value for w in at.warning)
    assert at.slider(key="k").disabled and at.toggle(key="overlay").disabled
    assert captions(at)[0].startswith("k=8 (fixed at export):")


def test_camera_without_streamlit_webrtc_falls_back_to_snapshots(models, monkeypatch):
    """(The live camera needs a real browser: tests/viz/test_app_browser.py. Here: the fallback.)"""
    import sys

    monkeypatch.setitem(sys.modules, "streamlit_webrtc", None)  # as if not installed
    at = page(monkeypatch, model=models.pst)
    at.radio(key="source_kind").set_value("Browser camera").run()
    assert not at.exception and not at.error
    assert [w.proto.label for w in at.get("camera_input")] == [
        "Camera snapshot (install streamlit-webrtc for live video)"
    ]
