"""The real-time demo: headless output, key handling, sources and bad input, exported models, no display.

Everything runs headless (show=False, or no display) on tiny inputs: a 12-frame 160x120 video the
test writes with OpenCV and a random-weights yolo11n-pst at imgsz=128, with conf=0 so that boxes
are drawn on every frame.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from helpers import REPO
from pst_yolo.cli import main
from pst_yolo.viz.common import DemoError
from pst_yolo.viz.demo import DemoState, handle_key, run_demo
from pst_yolo.viz.sources import display_available, open_source

IMGSZ = 128
N_FRAMES = 12
RUN = dict(show=False, imgsz=IMGSZ, conf=0.0, max_det=3, verbose=False)


def _frames(n: int = N_FRAMES) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((120, 160, 3), np.uint8)
        f[:] = (90, 60, 30)
        f[:, :, 1] += np.linspace(0, 60, 160, dtype=np.uint8)[None, :]
        cv2.circle(f, (20 + 10 * i, 60), 18, (40, 200, 250), -1)
        out.append(f)
    return out


def _read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    pt = root / "pst.pt"
    YOLO("yolo11n-pst.yaml").save(pt)
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    for f in _frames():
        writer.write(f)
    writer.release()
    assert len(_read_all(video)) == N_FRAMES
    images = root / "images"
    images.mkdir()
    for i, f in enumerate(_frames(2)):
        cv2.imwrite(str(images / f"img{i}.png"), f)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return SimpleNamespace(root=root, pt=pt, video=video, images=images)


# ------------------------------------------------------------------------------------------------
# Keys: a pure function
# ------------------------------------------------------------------------------------------------
def test_handle_key_bindings():
    s = DemoState(k=8)
    assert handle_key(s, -1) is s and handle_key(s, None) is s and handle_key(s, ord("x")) is s
    assert handle_key(s, 255) is s
    c = handle_key(s, ord("f"))
    assert (c.fine, c.effective_k, c.k) == (False, 0, 8) and "coarse" in c.message
    assert handle_key(c, ord("f")).effective_k == 8  # k remembered while coarse
    assert handle_key(s, ord("+")).k == 16 and handle_key(s, ord("=")).k == 16
    assert handle_key(s, ord("-")).k == 4 and handle_key(s, ord("_")).k == 4
    assert handle_key(DemoState(k=6), ord("+")).k == 8 and handle_key(DemoState(k=6), ord("-")).k == 4
    one = DemoState(k=1)
    assert handle_key(one, ord("-")).k == 1 and "smallest" in handle_key(one, ord("-")).message
    up = handle_key(c, ord("+"))  # from coarse, + turns fine on at the remembered k
    assert up.fine and up.effective_k == 8
    down = handle_key(c, ord("-"))
    assert not down.fine and down.effective_k == 0 and "coarse only already" in down.message
    capped = DemoState(k=8, k_max=12)
    assert handle_key(capped, ord("+")).k == 12
    assert handle_key(handle_key(capped, ord("+")), ord("+")).k == 12
    assert "largest" in handle_key(DemoState(k=12, k_max=12), ord("+")).message
    v = handle_key(s, ord("v"))
    assert v.overlay and not handle_key(v, ord("v")).overlay
    assert "heat map only" in handle_key(c, ord("v")).message
    p = handle_key(s, ord(" "))
    assert p.paused and not handle_key(p, ord(" ")).paused
    assert handle_key(s, ord("s")).save_requested
    assert handle_key(s, ord("q")).quit and handle_key(s, 27).quit and handle_key(s, 27 | 0x100000).quit
    assert s == DemoState(k=8)  # never mutated


def test_handle_key_for_exported_model_ignores_k_and_overlay():
    s = DemoState(
        k=8,
        k_adjustable=False,
        overlay_available=False,
        fixed_reason="k is fixed at export",
        overlay_reason="needs the PyTorch model",
    )
    for key in "f+-=_":
        t = handle_key(s, ord(key))
        assert (t.k, t.fine) == (8, True) and t.message == "k is fixed at export"
    t = handle_key(s, ord("v"))
    assert not t.overlay and t.message == "needs the PyTorch model"
    assert handle_key(s, ord("q")).quit and handle_key(s, ord(" ")).paused


# ------------------------------------------------------------------------------------------------
# Headless video: same frame count, boxes drawn
# ------------------------------------------------------------------------------------------------
def test_headless_video_has_every_frame_with_boxes_drawn(assets, tmp_path):
    outs = []
    s = run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path, on_frame=outs.append, **RUN)
    assert (s.frames_read, s.frames_processed, s.frames_failed, s.frames_written) == (N_FRAMES, N_FRAMES, 0, N_FRAMES)
    assert s.output is not None and s.output.is_file() and s.output.parent == tmp_path
    written = _read_all(s.output)
    assert len(written) == N_FRAMES
    inputs = _read_all(assets.video)
    for out, frame_in, rec in zip(written, inputs, outs):
        assert out.shape == frame_in.shape
        assert len(rec.boxes) > 0
        edges = np.zeros(out.shape[:2], np.uint8)
        for x0, y0, x1, y1 in rec.boxes.round().astype(int):
            cv2.rectangle(edges, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), 1, 1)
        near = cv2.dilate(edges, np.ones((9, 9), np.uint8)) > 0
        diff = np.abs(out.astype(int) - frame_in.astype(int)).max(axis=2)
        lower = np.zeros_like(near)
        lower[out.shape[0] // 2 :] = True  # away from the status text (top left) and box labels (top)
        assert diff[(edges > 0) & lower].mean() > 40, "no box outline where a box was detected"
        assert diff[~near & lower].mean() < 12, "frame changed away from the boxes"
    assert [s_.label for s_ in s.per_k] == ["k=8 (fine)"] and s.per_k[0].frames == N_FRAMES
    assert s.per_k[0].p90_ms >= s.per_k[0].mean_ms * 0.5 > 0


def test_keys_fed_to_the_loop(assets, tmp_path, capsys):
    outs = []
    keys = [-1, ord("f"), -1, ord("f"), ord("+"), ord("s"), ord(" "), ord("v"), ord(" "), ord("q")]
    s = run_demo(
        str(assets.video),
        str(assets.pt),
        save_dir=tmp_path,
        on_frame=outs.append,
        keys=keys,
        **{**RUN, "verbose": True},
    )
    printed = capsys.readouterr().out
    # one key per loop step; while paused no frame is read, the paused frame is redrawn after 'v'
    # + goes to 16, capped at the 4x3 = 12 coarse tokens of layer 13 (128x96 input)
    assert [o.k for o in outs] == [8, 8, 0, 0, 8, 12, 12, 12]
    assert [o.index for o in outs] == list(range(8))
    assert len(outs[6].selections) == 0 and len(outs[7].selections) == 2  # overlay on after the pause
    assert s.frames_read == s.frames_processed == s.frames_written == 8 and s.rerendered == 1
    assert len(_read_all(s.output)) == 8
    assert {st.label: st.frames for st in s.per_k} == {"k=8 (fine)": 3, "k=0 (coarse only)": 2, "k=12 (fine)": 3}
    assert s.saved_frames == [tmp_path / "frame_000005.png"] and s.saved_frames[0].is_file()
    for line in (
        "frames read 8, processed 8, failed 0",
        "k=0 (coarse only)",
        "coarse only: k=0",
        "paused",
        "attention overlay on",
        "saved",
    ):
        assert line in printed, line


def test_paused_without_keys_or_window_resumes(assets, tmp_path):
    s = run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path, keys=[ord(" ")], max_frames=3, **RUN)
    assert s.frames_read == s.frames_processed == 3


def test_image_sources_write_annotated_images(assets, tmp_path):
    s = run_demo(str(assets.images), str(assets.pt), save_dir=tmp_path / "folder", overlay=True, **RUN)
    assert (s.frames_read, s.frames_processed) == (2, 2)
    assert s.unreadable == [str(assets.images / "broken.jpg")]
    # the annotated images, and the manifest that marks the folder as a pst-yolo run folder
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == [
        ".pst-yolo-manifest.json",
        "img0.png",
        "img1.png",
    ]
    single = assets.images / "img1.png"
    s = run_demo(str(single), str(assets.pt), save_dir=tmp_path / "one", **RUN)
    out = cv2.imread(str(tmp_path / "one" / "img1.png"))
    src = cv2.imread(str(single))
    assert s.frames_processed == 1 and out.shape == src.shape and not np.array_equal(out, src)


# ------------------------------------------------------------------------------------------------
# Exported model
# ------------------------------------------------------------------------------------------------
def test_onnx_model_runs_with_k_fixed_and_no_overlay(assets, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    with warnings.catch_warnings():  # tracer and exporter chatter
        warnings.simplefilter("ignore")
        onnx = Path(YOLO(str(assets.pt)).export(format="onnx", imgsz=IMGSZ, simplify=False))
    capsys.readouterr()
    outs = []
    s = run_demo(
        str(assets.video),
        str(onnx),
        save_dir=tmp_path,
        keys=[ord("f"), ord("+"), ord("v"), -1],
        max_frames=5,
        on_frame=outs.append,
        **{**RUN, "verbose": True},
    )
    printed = capsys.readouterr().out
    assert s.frames_read == s.frames_processed == 5 and len(_read_all(s.output)) == 5
    assert [st.label for st in s.per_k] == ["k=8 (fixed at export)"]
    assert all(len(o.selections) == 0 and len(o.boxes) > 0 for o in outs)
    assert printed.count("k is fixed at export (k=8)") >= 3  # f and + (plus the summary note)
    assert "attention overlay needs the PyTorch model" in printed


@pytest.mark.slow
def test_openvino_model_runs_with_k_fixed_and_no_overlay(assets, tmp_path, capsys):
    """An OpenVINO export (a folder, not a file) runs as an ONNX one does: k from its pst_topk, f/+/- and
    the overlay refused with a message."""
    from pst_yolo.eval.export_matrix import available, install_hint
    from pst_yolo.eval.exported import export

    if not available("openvino"):
        pytest.skip(install_hint("openvino"))
    from ultralytics import YOLO

    with warnings.catch_warnings():  # tracer and exporter chatter
        warnings.simplefilter("ignore")
        ov_dir = export(YOLO(str(assets.pt)), "openvino", IMGSZ, tmp_path / "export")
    assert ov_dir.is_dir() and ov_dir.name.endswith("_openvino_model")
    capsys.readouterr()
    outs = []
    s = run_demo(
        str(assets.video),
        str(ov_dir),
        save_dir=tmp_path / "out",
        keys=[ord("f"), ord("+"), ord("v"), -1],
        max_frames=3,
        on_frame=outs.append,
        **{**RUN, "verbose": True},
    )
    printed = capsys.readouterr().out
    assert s.frames_read == s.frames_processed == 3
    assert [st.label for st in s.per_k] == ["k=8 (fixed at export)"]
    assert all(len(o.selections) == 0 and len(o.boxes) > 0 for o in outs)
    assert printed.count("k is fixed at export (k=8)") >= 3
    assert "attention overlay needs the PyTorch model" in printed


# ------------------------------------------------------------------------------------------------
# Streams, cameras, bad input
# ------------------------------------------------------------------------------------------------
class FakeCapture:
    """Stands in for cv2.VideoCapture: delivers its frames, then fails (a drop)."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.opened = bool(self.frames)

    def isOpened(self):
        return self.opened

    def read(self):
        if self.opened and self.frames:
            return True, self.frames.pop(0)
        return False, None

    def get(self, prop):
        return 0.0

    def release(self):
        self.opened = False


def test_dropped_stream_reconnects_then_gives_up(assets, tmp_path, capsys):
    # 3 frames, drop, reconnect (attempt 1): 2 frames, drop, reconnect fails (attempt 2 of 2 since the stream
    # last ran steadily): the end
    sessions = [_frames(3), _frames(2), []]
    opened = []

    def factory(url):
        opened.append(url)
        return FakeCapture(sessions.pop(0) if sessions else [])

    url = "rtsp://user:secret@cam.local/live"
    s = run_demo(
        url,
        str(assets.pt),
        save_dir=tmp_path,
        reconnect=2,
        reconnect_delay=0,
        capture_factory=factory,
        **{**RUN, "verbose": True},
    )
    printed = capsys.readouterr().out
    assert opened == [url] * 3
    assert s.kind == "stream" and s.frames_read == s.frames_processed == 5 and len(_read_all(s.output)) == 5
    assert "dropped after 3 frames; reconnecting (attempt 1/2)" in printed
    assert "dropped after 5 frames; reconnecting (attempt 2/2)" in printed
    assert "reconnected" in printed
    assert "gave up after 2 reconnect attempts (1 succeeded, but the stream dropped again" in printed
    assert "secret" not in printed and "rtsp://***@cam.local/live" in printed


def test_sources_that_cannot_be_read(assets, tmp_path):
    closed = lambda target: FakeCapture([])  # noqa: E731
    with pytest.raises(DemoError, match="camera 7 could not be opened"):
        open_source(7, capture_factory=closed, verbose=False)
    with pytest.raises(DemoError, match=r"could not open stream http://\*\*\*@host/x"):
        open_source("http://a:b@host/x", capture_factory=closed, verbose=False)
    with pytest.raises(DemoError, match="source not found"):
        open_source(str(tmp_path / "nope.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DemoError, match="no images in folder"):
        open_source(str(tmp_path / "empty"))
    assert open_source("0", capture_factory=lambda t: FakeCapture(_frames(1)), verbose=False).kind == "camera"


def test_cli_bad_input_is_one_line_and_nonzero(assets, tmp_path, capsys):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(os.urandom(2048))
    bad_image = assets.images / "broken.jpg"
    cases = [
        ([f"source={tmp_path / 'missing.mp4'}", f"model={assets.pt}"], 2, "source not found"),
        ([f"source={garbage}", f"model={assets.pt}"], 2, "could not read a video frame"),
        ([f"source={bad_image}", f"model={assets.pt}"], 2, "cannot read image"),
        (["source=99", f"model={assets.pt}"], 2, "camera 99 could not be opened"),
        ([f"source={assets.video}", f"model={tmp_path / 'missing.pt'}"], 2, "model file not found"),
        ([f"model={assets.pt}"], 2, "needs source="),
        ([f"source={assets.video}", f"model={assets.pt}", "speed=fast"], 2, "unknown key 'speed'"),
        ([f"source={assets.video}", f"model={assets.pt}", "topk=-1"], 2, "topk"),
    ]
    for argv, rc, text in cases:
        assert main(["demo", *argv]) == rc, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err and err.startswith("pst-yolo demo: error:"), err


def test_cli_demo_runs_and_scripts_demo_is_the_same_command(assets, tmp_path, capsys):
    argv = [
        f"source={assets.video}",
        f"model={assets.pt}",
        "show=False",
        f"imgsz={IMGSZ}",
        "max_frames=2",
        f"save_dir={tmp_path}",
        "topk=4",
        "overlay=true",
    ]
    assert main(["demo", *argv]) == 0
    out = capsys.readouterr().out
    assert "frames read 2, processed 2, failed 0, written 2" in out and "k=4 (fine)" in out
    script = runpy.run_path(str(REPO / "scripts" / "demo.py"), run_name="pst_yolo_demo_script")
    assert script["main"](["--help"]) == 0 and "keys: f coarse/fine" in capsys.readouterr().out
    assert script["main"](["explain", "--help"]) == 0 and "pst-yolo explain" in capsys.readouterr().out
    assert script["main"]([f"source={tmp_path / 'none.mp4'}", "model=x.pt"]) == 2


# ------------------------------------------------------------------------------------------------
# No display
# ------------------------------------------------------------------------------------------------
def test_without_a_display_the_demo_runs_headless(assets, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform not in ("win32", "darwin"):
        assert display_available() is False
    run = {**RUN, "show": None}
    s = run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path / "auto", max_frames=2, **run)
    assert s.frames_written == 2 and s.output.is_file()  # headless: written instead of shown
    run["show"], run["verbose"] = True, True
    s = run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path / "asked", max_frames=2, **run)
    assert s.frames_written == 2 and s.output.is_file()
    assert "no usable display" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="X11 display variable")
def test_unreachable_display_is_detected_without_crashing(tmp_path):
    """OpenCV's Qt back end aborts the process on a dead $DISPLAY; the probe runs in a child process."""
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env["DISPLAY"] = ":97"  # nothing listens there
    code = "from pst_yolo.viz.sources import display_available; print(display_available())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_window_loop_with_a_stand_in_for_opencv_highgui(assets, monkeypatch):
    """The show=True path, with cv2's window functions replaced: keys come from waitKey, the last image
    stays up until q, a key on it redraws it, and nothing is written unless asked."""
    import pst_yolo.viz.demo as demo

    shown, waits = [], []
    keys = iter([-1, -1, ord("v"), -1, ord("q")])  # img0, img1, (end: hold) v -> redraw, idle, q
    monkeypatch.setattr(demo, "display_available", lambda: True)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda ms=0: waits.append(ms) or next(keys, ord("q")))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    s = run_demo(str(assets.images), str(assets.pt), **{**RUN, "show": True}, delay=5)
    assert (s.frames_read, s.frames_processed, s.rerendered) == (2, 2, 1)
    assert s.output is None and s.run_dir is None  # shown, not written
    assert len(shown) == 5 and waits[:5] == [5, 5, 40, 40, 40]  # image delay, then idle while held
    assert not np.array_equal(shown[2], shown[3])  # the held image redrawn with the attention overlay
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: -1.0)  # window closed with the mouse
    s = run_demo(str(assets.video), str(assets.pt), **{**RUN, "show": True})
    assert s.frames_read == 1 and s.frames_processed == 1


# ------------------------------------------------------------------------------------------------
# Issue 22: text that scales, overlay opacity, coarse mode, the k logged, real-time playback, flapping streams
# ------------------------------------------------------------------------------------------------
def _grey(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def _hud_lines(img: np.ndarray) -> list[tuple[int, int]]:
    """(top, bottom) rows of each dark HUD box: runs of pure black in column 0 (the frames are grey)."""
    black = (img[:, 0] == 0).all(axis=1)
    runs, start = [], None
    for y, b in enumerate([*black, False]):
        if b and start is None:
            start = y
        elif not b and start is not None:
            runs.append((start, y))
            start = None
    return runs


def _text_rows(region: np.ndarray) -> int:
    """Height in rows of the bright text inside a dark box."""
    rows = np.nonzero((region.max(axis=2) > 120).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


@pytest.mark.parametrize(("h", "w", "min_text", "max_text"), [(120, 160, 10, 20), (1080, 1920, 22, 40)])
def test_hud_and_box_labels_scale_with_the_frame(assets, h, w, min_text, max_text):
    from pst_yolo.viz.attention_maps import draw_detections
    from pst_yolo.viz.demo import initial_state, process_frame
    from pst_yolo.viz.detector import Detector

    det = Detector(str(assets.pt), imgsz=IMGSZ, conf=0.0, max_det=3, verbose=False)
    try:
        out = process_frame(det, _grey(h, w), initial_state(det, overlay=True), fps=25.0, help_line=True)
    finally:
        det.close()
    boxes = _hud_lines(out.image)
    assert len(boxes) == len(out.hud) >= 2  # status, overlay legend (and the keys at the bottom where they fit)
    assert (len(out.hud) == 3) == (w > 1000)
    top, bottom = boxes[0]
    text_h = _text_rows(out.image[top:bottom, :])
    assert min_text <= text_h <= max_text, (text_h, out.hud)
    assert out.hud[0].startswith("k=8 fine") and all(out.hud)
    hud = np.zeros((h, w), bool)  # what the HUD covers: its dark boxes
    for top, bottom in boxes:
        cols = np.nonzero((out.image[top:bottom] == 0).all(axis=2).any(axis=0))[0]
        hud[top:bottom, : cols[-1] + 1] = True
    assert hud.mean() < 0.35, f"the HUD covers {hud.mean():.0%} of a {w}x{h} frame"
    img = _grey(h, w)  # a box label, as big as the HUD text
    draw_detections(img, np.array([[w * 0.3, h * 0.5, w * 0.7, h * 0.9]]), np.array([0]), np.array([0.9]), ["obj"])
    y0 = int(h * 0.5)
    label = (img[: y0 - 3] == img[y0 - 4, int(w * 0.3) + 1]).all(axis=2)  # the label's fill, above the box
    rows = np.nonzero(label.any(axis=1))[0]
    assert min_text <= _text_rows(img[rows[0] : rows[-1] + 1, int(w * 0.3) : int(w * 0.7)]) <= max_text


def test_overlay_opacity_defaults_low_and_keys_and_argument_change_it(assets, tmp_path):
    from pst_yolo.viz.demo import initial_state, process_frame
    from pst_yolo.viz.detector import Detector

    assert DemoState().overlay_alpha <= 0.35
    s = DemoState(overlay=True)
    up, down = handle_key(s, ord("]")), handle_key(s, ord("["))
    assert up.overlay_alpha == pytest.approx(s.overlay_alpha + 0.1) and "opacity" in up.message
    assert down.overlay_alpha == pytest.approx(s.overlay_alpha - 0.1)
    zero = DemoState(overlay_alpha=0.0)
    assert handle_key(zero, ord("[")).overlay_alpha == 0.0 and "already 0%" in handle_key(zero, ord("[")).message
    assert handle_key(DemoState(overlay_alpha=1.0), ord("]")).overlay_alpha == 1.0
    frame = cv2.resize(_frames(1)[0], (640, 480))  # wide enough for the full legend
    det = Detector(str(assets.pt), imgsz=IMGSZ, conf=0.9, verbose=False)  # no boxes: only the overlay changes pixels
    try:
        diffs = []
        for alpha in (0.0, 0.3, 0.8):
            out = process_frame(det, frame, replace_state(initial_state(det, overlay=True), overlay_alpha=alpha))
            lower = slice(frame.shape[0] // 2, None)  # away from the HUD
            diffs.append(np.abs(out.image[lower].astype(int) - frame[lower].astype(int)).mean())
            assert out.hud[1].endswith("heat off" if alpha == 0 else f" | heat L16 {round(alpha * 100)}%"), out.hud
    finally:
        det.close()
    assert diffs[0] < diffs[1] < diffs[2], diffs
    outs = []
    keys = [-1, ord("]"), -1]
    run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path, overlay=True, overlay_alpha=0.5, keys=keys,
             max_frames=3, on_frame=outs.append, **RUN)  # fmt: skip
    assert [o.hud[1].split()[-1] for o in outs] == ["50%", "50%", "60%"]  # (the short legend of a 160 px frame)
    with pytest.raises(DemoError, match="overlay_alpha must be a number from 0 to 1"):
        run_demo(str(assets.video), str(assets.pt), overlay_alpha=1.5, **RUN)


def replace_state(state, **changes):
    from dataclasses import replace

    return replace(state, **changes)


def test_coarse_mode_shows_no_fine_patches(assets, tmp_path):
    outs = []
    run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path, overlay=True, keys=[-1, ord("f"), -1],
             max_frames=3, on_frame=outs.append, **RUN)  # fmt: skip
    fine, coarse = outs[0], outs[2]
    assert fine.k == 8 and fine.hud[1].startswith("L13:") and all(s.k == 8 for s in fine.selections)
    assert coarse.k == 0 and all(s.k == 0 and s.tokens().size == 0 for s in coarse.selections)
    assert coarse.hud[1].startswith("no fine patches") and "L13:" not in coarse.hud[1], coarse.hud
    assert coarse.hud[0].startswith("k=0 coarse only")


def test_the_k_asked_for_is_the_k_logged(assets, tmp_path, monkeypatch):
    import pst_yolo.integration.callbacks as callbacks

    logged = []
    monkeypatch.setattr(callbacks, "log", logged.append)  # the `PST top-k:` line the predictor's model logs
    outs = []
    run_demo(str(assets.video), str(assets.pt), save_dir=tmp_path, topk=4, max_frames=2, on_frame=outs.append,
             **RUN)  # fmt: skip
    assert logged and all("k=4" in line and "k=8" not in line for line in logged), logged
    assert [o.k for o in outs] == [4, 4]
    from ultralytics import YOLO

    from pst_yolo.nn.topk import get_topk
    from pst_yolo.viz.detector import Detector

    yolo = YOLO(str(assets.pt))
    Detector(yolo, imgsz=IMGSZ, topk=2, verbose=False).close()
    assert get_topk(yolo) == 8  # a caller's YOLO object is left as found
    with pytest.raises(DemoError, match="topk: top-k must be a non-negative integer"):
        run_demo(str(assets.video), str(assets.pt), topk=-1, **RUN)


@pytest.fixture
def slow_clip(tmp_path):
    """4 frames at 2 FPS: 1.5 s from the first frame to the last when played in real time."""
    path = tmp_path / "slow.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, (160, 120))
    for f in _frames(4):
        writer.write(f)
    writer.release()
    return path


def _span(**kwargs) -> float:
    import time

    times = []
    run_demo(kwargs.pop("source"), kwargs.pop("model"), on_frame=lambda o: times.append(time.perf_counter()), **kwargs)
    assert len(times) == 4
    return times[-1] - times[0]


def test_video_files_play_at_their_own_frame_rate(assets, slow_clip, tmp_path, monkeypatch):
    import pst_yolo.viz.demo as demo

    monkeypatch.setattr(demo, "display_available", lambda: True)  # a window, with cv2's highgui stood in for
    monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
    monkeypatch.setattr(cv2, "imshow", lambda *a: None)
    monkeypatch.setattr(cv2, "waitKey", lambda ms=0: -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    common = dict(source=str(slow_clip), model=str(assets.pt), **RUN)
    assert _span(**{**common, "show": True}) >= 1.4  # in a window: real time by default
    assert _span(**{**common, "show": True, "realtime": False}) < 1.2  # flat out
    assert _span(**common, save_dir=tmp_path / "a") < 1.2  # headless conversion: flat out by default
    assert _span(**common, save_dir=tmp_path / "b", realtime=True) >= 1.4


def test_a_flapping_stream_ends_after_the_reconnect_budget(assets, tmp_path, capsys):
    opened = []

    def factory(url):  # every connection delivers 2 frames and drops; reconnecting always works
        opened.append(url)
        return FakeCapture(_frames(2))

    s = run_demo("rtsp://cam.local/live", str(assets.pt), save_dir=tmp_path, reconnect=3, reconnect_delay=0,
                 capture_factory=factory, max_frames=40, **{**RUN, "verbose": True})  # fmt: skip
    printed = capsys.readouterr().out
    assert len(opened) == 4 and s.frames_read == 8
    assert "lost after 8 frames: gave up after 3 reconnect attempts (3 succeeded" in printed
    assert any("gave up after 3 reconnect attempts" in n for n in s.notes)
