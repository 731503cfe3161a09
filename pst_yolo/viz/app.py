"""``pst-yolo app``: the real-time demo as a page in the browser (Streamlit), with PST's k switched live.

    pip install "pst-yolo[app]"
    pst-yolo app model=best.pt                    # http://127.0.0.1:8501
    pst-yolo app model=best.pt host=0.0.0.0 port=8080 source=rtsp://cam.local/live

The page offers a source (the browser's camera, an uploaded video or image, a stream URL or a file on the
server, or a sample rendered from Ultralytics' bundled pictures, offline), a model (a ``.pt``, PST or
stock, or an export), and live controls: k (0 ... 16), confidence, the attention overlay and its opacity,
which PST layers it shows, and k = 0 side by side with the chosen k. A panel shows FPS, the number of
boxes and latency mean / p90 per k -- the desktop demo's summary. Frames are processed by the same
``process_frame`` as ``pst-yolo demo``.

Nothing is written outside a temporary folder (uploads live there while the server runs); the annotated
frame can be downloaded from the page. ``serve`` starts Streamlit on ``host:port`` (127.0.0.1 by
default); the page itself is this file, run by Streamlit (``page()``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from pst_yolo.viz.common import IMAGE_SUFFIXES, DemoError
from pst_yolo.viz.sources import VIDEO_SUFFIXES, Frame, FrameSource

__all__ = ("AppSettings", "LatencyPanel", "SampleSource", "app_available", "page", "serve")

SETTINGS_ENV = "PST_YOLO_APP"  # JSON of AppSettings, from `serve` to the page
K_SLIDER_MAX = 16
SOURCES = ("Sample (offline)", "Upload a video or image", "Stream URL or file on the server", "Browser camera")
INSTALL_HINT = 'the browser demo needs the [app] extra: pip install "pst-yolo[app]" (Streamlit)'


@dataclass
class AppSettings:
    """What ``pst-yolo app`` hands the page: its starting values."""

    model: str = "yolo11n-pst.yaml"
    source: Optional[str] = None  # a stream URL or a file on the server; None: the sample
    imgsz: int = 640
    conf: float = 0.25
    topk: Optional[int] = None
    device: str = "cpu"
    max_frames: Optional[int] = None  # frames per play (None: until the source ends)
    tmp: Optional[str] = None  # the server's temporary folder (uploads); None: one per session

    @classmethod
    def from_env(cls) -> AppSettings:
        raw = os.environ.get(SETTINGS_ENV, "")
        if not raw:
            return cls()
        try:
            values = json.loads(raw)
            return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError) as e:
            raise DemoError(f"{SETTINGS_ENV} is not valid JSON of the app's settings: {e}") from None


def app_available() -> Optional[str]:
    """None when Streamlit can be imported, else the line that says how to install it."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


def check_start(model: str, source: Optional[str]) -> None:
    """The model and source the page starts with, checked before the server starts (the page would show a
    problem only once opened): a model path that does not exist or is no model file, a local source that is
    missing or unreadable (a camera or stream is tried by the page)."""
    from pst_yolo.integration.runtime import check_model_name
    from pst_yolo.viz.detector import check_model_path
    from pst_yolo.viz.sources import open_source, source_kind

    check_model_path(model)
    try:
        check_model_name(model)
    except ValueError as e:
        raise DemoError(str(e)) from None
    if source is not None and source_kind(source) == "path":
        open_source(source, verbose=False).close()


def serve(
    host: str = "127.0.0.1",
    port: int = 8501,
    model: str = "yolo11n-pst.yaml",
    source: Optional[str] = None,
    imgsz: int = 640,
    conf: float = 0.25,
    topk: Optional[int] = None,
    device: str = "cpu",
    max_frames: Optional[int] = None,
    verbose: bool = True,
) -> int:
    """Serve the page on ``http://host:port`` until Ctrl-C; returns Streamlit's exit status."""
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise DemoError(f"port must be a whole number from 1 to 65535, got {port!r}")
    if not str(host).strip():
        raise DemoError("host must name an address to listen on, e.g. 127.0.0.1 (this machine only) or 0.0.0.0")
    if not 0.0 <= float(conf) <= 1.0:
        raise DemoError(f"conf must be from 0 to 1, got {conf}")
    check_start(model, source)
    hint = app_available()  # after the input checks: bad input is named whether or not Streamlit is installed
    if hint:
        raise DemoError(hint)
    tmp = tempfile.mkdtemp(prefix="pst-yolo-app-")  # uploads; removed when the server stops
    settings = AppSettings(model, source, int(imgsz), float(conf), topk, device, max_frames, tmp)
    env = {**os.environ, SETTINGS_ENV: json.dumps(asdict(settings))}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(__file__).resolve()),
        "--server.address",
        str(host),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    if verbose:
        print(f"pst-yolo app: serving http://{host}:{port} (Ctrl-C stops)", flush=True)
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM ends the server as Ctrl-C does
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    proc = None
    try:
        proc = subprocess.Popen(cmd, env=env)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------------
# The offline sample and the statistics panel (no Streamlit needed)
# ------------------------------------------------------------------------------------------------
class SampleSource(FrameSource):
    """A short clip rendered on the fly: a slow pan across Ultralytics' bundled ``bus.jpg`` (no download,
    no file written). ``frames`` frames of ``size`` (w, h) at ``fps``."""

    kind = "video"

    def __init__(self, frames: int = 60, size: tuple[int, int] = (480, 360), fps: float = 10.0) -> None:
        super().__init__("sample: a pan across Ultralytics' bus.jpg", verbose=False)
        from ultralytics.utils import ASSETS

        picture = cv2.imread(str(Path(ASSETS) / "bus.jpg"), cv2.IMREAD_COLOR)
        if picture is None:
            raise DemoError(f"the sample picture {Path(ASSETS) / 'bus.jpg'} is missing from the Ultralytics package")
        self.picture, self.frames, self.size, self.fps = picture, int(frames), size, float(fps)
        self.stem = "sample"

    def seek(self, index: int) -> bool:
        self.read_count = max(0, min(int(index), self.frames))
        return True

    def read(self) -> Optional[Frame]:
        if self.read_count >= self.frames:
            return None
        h, w = self.picture.shape[:2]
        cw, ch = self.size
        scale = min(w / cw, h / ch) * 0.8  # a crop of the picture's aspect, 80 % of it
        crop_w, crop_h = int(cw * scale), int(ch * scale)
        t = 0.5 - 0.5 * math.cos(math.pi * self.read_count / max(self.frames - 1, 1))  # eased 0 -> 1
        x, y = int(t * (w - crop_w)), int((1 - t) * (h - crop_h))
        img = cv2.resize(self.picture[y : y + crop_h, x : x + crop_w], self.size, interpolation=cv2.INTER_AREA)
        frame = Frame(img, f"frame_{self.read_count:06d}", self.read_count)
        self.read_count += 1
        return frame


@dataclass
class LatencyPanel:
    """Latency per k (ms), frames and boxes: what the page's panel shows."""

    latencies: dict = field(default_factory=dict)  # label -> [ms]
    frames: int = 0
    boxes: dict = field(default_factory=dict)  # label -> boxes in the latest frame processed at it
    current: dict = field(default_factory=dict)  # label -> boxes, for the frame on screen
    started: Optional[float] = None
    wall_fps: Optional[float] = None

    def add(self, label: str, latency_ms: Optional[float], boxes: int) -> None:
        if latency_ms is not None:
            self.latencies.setdefault(label, []).append(float(latency_ms))
        self.boxes[label] = self.current[label] = int(boxes)

    def new_play(self) -> None:
        """FPS and frame count start again (a rerun of the page); the latencies per k go on."""
        self.started, self.frames, self.wall_fps, self.current = None, 0, None, {}

    def frame_done(self) -> None:
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        self.frames += 1
        if self.frames > 1 and now > self.started:
            self.wall_fps = (self.frames - 1) / (now - self.started)

    def rows(self) -> list[dict]:
        out = []
        for label, values in self.latencies.items():
            a = np.asarray(values, dtype=np.float64)
            mean = float(a.mean())
            out.append(
                {
                    "k": label,
                    "frames": len(a),
                    "mean ms": f"{mean:.1f}",
                    "p90 ms": f"{float(np.percentile(a, 90)):.1f}",
                    "FPS (model)": f"{1000.0 / mean:.1f}" if mean > 0 else "-",
                    "boxes (last frame)": self.boxes.get(label, 0),
                }
            )
        return out

    def summary(self) -> str:
        lines = [f"frames {self.frames}" + (f", {self.wall_fps:.1f} FPS end to end" if self.wall_fps else "")]
        for r in self.rows():
            lines.append(
                f"  {r['k']:<20} {r['frames']:>5} frames  latency mean {r['mean ms']:7.1f} ms  "
                f"p90 {r['p90 ms']:7.1f} ms  {r['boxes (last frame)']} boxes"
            )
        return "\n".join(lines)


def _k_label(k: int) -> str:
    return f"k={k} ({'fine' if k else 'coarse only'})"


def layer_names(detector: Any) -> list[str]:
    """The PST layers' names as the overlay knows them (the Ultralytics layer index, e.g. "13")."""
    return [str(getattr(layer, "i", "")) or name for name, layer in getattr(detector, "layers", [])]


# ------------------------------------------------------------------------------------------------
# The page (run by Streamlit)
# ------------------------------------------------------------------------------------------------
def _temp_dir(st) -> Path:
    """This session's temporary folder (uploads): in the one ``serve`` made (and removes), else its own."""
    root = st.session_state.get("pst_settings_tmp")
    if root and Path(root).is_dir():
        if "pst_tmp_dir" not in st.session_state:
            st.session_state["pst_tmp_dir"] = tempfile.mkdtemp(prefix="session-", dir=root)
        return Path(st.session_state["pst_tmp_dir"])
    if "pst_tmp" not in st.session_state:
        tmp = tempfile.TemporaryDirectory(prefix="pst-yolo-app-")
        st.session_state["pst_tmp"] = tmp  # (the object removes the folder when it is collected)
    return Path(st.session_state["pst_tmp"].name)


def _save_upload(st, upload, allowed: set[str]) -> Path:
    """An uploaded file, written into the session's temporary folder under its own suffix."""
    suffix = Path(upload.name).suffix.lower()
    if suffix not in allowed:
        raise DemoError(f"{upload.name}: not a file this demo reads (expected one of {', '.join(sorted(allowed))})")
    folder = _temp_dir(st) / f"upload-{abs(hash((upload.name, upload.size))) % 10**8}"
    folder.mkdir(exist_ok=True)
    path = folder / (re.sub(r"[^\w.-]", "_", Path(upload.name).name) or f"upload{suffix}")  # its own name, shown
    if not path.exists():
        from pst_yolo.data.writer import write_bytes

        write_bytes(path, upload.getvalue())
    return path


def _detector(st, model: str, imgsz: int, conf: float, device: str):
    """The session's Detector for ``model`` (loaded once; a new model closes the old one)."""
    from pst_yolo.viz.detector import Detector

    key = (model, int(imgsz), device)
    held = st.session_state.get("pst_detector")
    if held is not None and held[0] == key:
        held[1].args["conf"] = float(conf)
        return held[1]
    if held is not None:
        held[1].close()
        del st.session_state["pst_detector"]
    with st.spinner(f"loading {Path(model).name} ..."):
        det = Detector(model, imgsz=int(imgsz), conf=float(conf), device=device, verbose=False)
    st.session_state["pst_detector"] = (key, det)
    return det


def _model_picker(st, settings: AppSettings) -> Optional[str]:
    st.sidebar.header("Model")
    path = st.sidebar.text_input(
        "Checkpoint, export or config",
        settings.model,
        help=".pt (PST or stock), an export (.onnx, *_openvino_model folder ...: k fixed), or yolo11n-pst.yaml "
        "(random weights)",
        key="model_path",
    )
    upload = st.sidebar.file_uploader("... or upload a model", type=["pt", "onnx", "torchscript"], key="model_upload")
    if upload is not None:
        try:
            return str(_save_upload(st, upload, {".pt", ".onnx", ".torchscript"}))
        except DemoError as e:
            st.error(str(e))
            return None
    return path.strip() or None


def _source_picker(st, settings: AppSettings):
    """(kind, value) of the chosen source: ("sample", None), ("path", str), ("camera", None); None: not ready."""
    st.sidebar.header("Source")
    start = 2 if settings.source else 0
    choice = st.sidebar.radio("Frames from", SOURCES, index=start, key="source_kind")
    if choice == SOURCES[0]:
        return ("sample", None)
    if choice == SOURCES[1]:
        allowed = VIDEO_SUFFIXES | IMAGE_SUFFIXES
        upload = st.sidebar.file_uploader(
            "Video or image", type=sorted(s.lstrip(".") for s in allowed), key="source_upload"
        )
        if upload is None:
            st.info("Upload a video or an image in the sidebar.")
            return None
        try:
            return ("path", str(_save_upload(st, upload, allowed)), upload.name)
        except DemoError as e:
            st.error(str(e))
            return None
    if choice == SOURCES[2]:
        url = st.sidebar.text_input("rtsp:// or http(s):// URL, or a path on the server", settings.source or "")
        if not url.strip():
            st.info("Enter a stream URL or a video/image path in the sidebar.")
            return None
        return ("path", url.strip(), url.strip())
    return ("camera", None)


def _controls(st, det, settings: AppSettings) -> dict:
    """The live controls; k is disabled (with the reason) for a model without PST layers or an export."""
    st.sidebar.header("Controls")
    start_k = det.k if det.layers and isinstance(det.k, int) else 8
    if settings.topk is not None:
        start_k = settings.topk
    reason = ""
    if not det.layers:
        reason = (
            f"{Path(det.model_name).name} has no PST layers: k controls disabled (the stock model still runs)"
            if det.pytorch
            else f"k is fixed at export ({det.k_label()}) in {Path(det.model_name).name}: k controls disabled"
        )
    k = st.sidebar.slider("PST top-k (0 = coarse only)", 0, K_SLIDER_MAX, min(int(start_k), K_SLIDER_MAX),
                          disabled=bool(reason), key="k")  # fmt: skip
    side = st.sidebar.toggle("Side by side: k = 0 and this k", value=False, disabled=bool(reason), key="side")
    conf = st.sidebar.slider("Confidence", 0.0, 1.0, float(settings.conf), 0.01, key="conf")
    can_overlay = det.recorder is not None
    overlay = st.sidebar.toggle("Attention overlay", value=False, disabled=not can_overlay, key="overlay")
    alpha = st.sidebar.slider("Overlay opacity", 0.0, 1.0, 0.3, 0.05, disabled=not (overlay and can_overlay),
                              key="alpha")  # fmt: skip
    names = layer_names(det)
    layers = (
        st.sidebar.multiselect("PST layers shown", names, default=names, disabled=not overlay, key="layers")
        if names
        else []
    )
    return dict(k=k, side=side and not reason, conf=conf, overlay=overlay and can_overlay, alpha=alpha,
                layers=layers, reason=reason)  # fmt: skip


def _states(det, c: dict) -> list:
    from pst_yolo.viz.demo import DemoState, initial_state

    base = initial_state(det, overlay=c["overlay"], overlay_alpha=c["alpha"])
    if not det.layers:
        return [base]
    ks = [0, c["k"]] if c["side"] else [c["k"]]
    return [DemoState(k=max(k, 1), fine=k > 0, overlay=c["overlay"], overlay_alpha=c["alpha"]) for k in ks]


def _label(det, state) -> str:
    if det.layers:
        return _k_label(state.effective_k)
    return "no PST layers" if det.pytorch else f"{det.k_label()} (fixed at export)"


def _open(st, chosen):
    from pst_yolo.viz.sources import open_source

    if chosen[0] == "sample":
        return SampleSource()
    try:
        return open_source(chosen[1], reconnect=2, reconnect_delay=0.5, verbose=False)
    except DemoError as e:
        st.error(f"cannot read {chosen[2]}: {e}")
        return None


def _show(st, slots, det, frame, states, c, panel):
    from pst_yolo.viz.demo import process_frame

    outs = []
    for state in states:
        out = process_frame(det, frame, state, fps=panel.wall_fps, layers=c["layers"])
        outs.append(out)
        panel.add(_label(det, state), out.latency_ms, len(out.boxes))
    panel.frame_done()
    for slot, state, out in zip(slots, states, outs):
        slot.image(out.image, channels="BGR", caption=f"{_label(det, state)}: {len(out.boxes)} boxes",
                   width="stretch")  # fmt: skip
    return outs


def _panel(st, where, panel: LatencyPanel) -> None:
    with where.container():
        cols = st.columns(3)
        cols[0].metric("FPS (end to end)", f"{panel.wall_fps:.1f}" if panel.wall_fps else "-")
        cols[1].metric("Frames", panel.frames)
        shown = panel.current
        boxes = " · ".join(f"{k.split()[0]}: {n}" for k, n in shown.items()) if len(shown) > 1 else None
        cols[2].metric("Boxes", boxes or str(next(iter(shown.values()), 0)))
        rows = panel.rows()
        if rows:
            st.markdown("**Latency per k**")
            st.table(rows)


def _camera(st, det, c, states) -> None:
    """The browser's camera: live through streamlit-webrtc when installed (k = 0 and k side by side in one
    picture), else one snapshot at a time. The statistics panel shows what the frames so far measured."""
    panel: LatencyPanel = st.session_state.setdefault("pst_camera_panel", LatencyPanel())
    lock: threading.Lock = st.session_state.setdefault("pst_camera_lock", threading.Lock())
    try:
        import av
        from streamlit_webrtc import webrtc_streamer
    except ImportError:
        shot = st.camera_input("Camera snapshot (install streamlit-webrtc for live video)")
        if shot is not None:
            img = cv2.imdecode(np.frombuffer(shot.getvalue(), np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                st.error("the camera snapshot could not be decoded")
                return
            _show(st, [col.empty() for col in st.columns(len(states))], det, img, states, c, panel)
            _panel(st, st.empty(), panel)
        return
    from pst_yolo.viz.demo import process_frame

    def callback(frame):  # (runs in streamlit-webrtc's thread)
        img = frame.to_ndarray(format="bgr24")
        outs = [process_frame(det, img, state, fps=panel.wall_fps, layers=c["layers"]) for state in states]
        with lock:
            for state, out in zip(states, outs):
                panel.add(_label(det, state), out.latency_ms, len(out.boxes))
            panel.frame_done()
        pictures = [outs[0].image]
        for out in outs[1:]:
            pictures += [np.full((img.shape[0], 8, 3), 255, np.uint8), out.image]
        return av.VideoFrame.from_ndarray(np.hstack(pictures), format="bgr24")

    webrtc_streamer(
        key="pst-camera",
        video_frame_callback=callback,
        media_stream_constraints={"video": True, "audio": False},
        rtc_configuration={"iceServers": []},  # this machine's browser: no STUN server to ask
    )
    st.button("Refresh the statistics", key="camera_stats")  # (a click reruns the page, which redraws them)
    with lock:
        _panel(st, st.empty(), panel)


def page() -> None:
    """The Streamlit page (Streamlit runs this file)."""
    import streamlit as st

    st.set_page_config(page_title="pst-yolo live demo", layout="wide")
    st.title("PST live detection demo")
    try:
        settings = AppSettings.from_env()
    except DemoError as e:
        st.error(str(e))
        st.stop()
    st.session_state["pst_settings_tmp"] = settings.tmp
    model = _model_picker(st, settings)
    chosen = _source_picker(st, settings)
    if not model:
        st.info("Name a model in the sidebar.")
        st.stop()
    try:
        det = _detector(st, model, settings.imgsz, settings.conf, settings.device)
    except DemoError as e:
        st.error(str(e))
        st.stop()
    c = _controls(st, det, settings)
    det.args["conf"] = float(c["conf"])
    if c["reason"]:
        st.warning(c["reason"])
    if chosen is None:
        st.stop()
    states = _states(det, c)
    if chosen[0] == "camera":
        _camera(st, det, c, states)
        st.stop()
    key = (model, chosen[1])
    if st.session_state.get("pst_key") != key:  # a new source or model: statistics and position start afresh
        st.session_state.update(pst_key=key, pst_pos=0, pst_panel=LatencyPanel(), pst_last=None, pst_ended=False)
    panel: LatencyPanel = st.session_state["pst_panel"]
    panel.new_play()
    slots = [col.empty() for col in st.columns(len(states))]  # one picture each, replaced frame by frame
    panel_slot = st.empty()
    src = _open(st, chosen)
    if src is None:
        st.stop()
    playing = src.kind != "images" and st.sidebar.toggle("Play", value=True, key="play")
    if playing and st.session_state.get("pst_ended"):  # the video ended: its last frame, at the new settings
        playing = st.sidebar.button("Play again", key="replay")
        if playing:
            st.session_state.update(pst_pos=0, pst_ended=False)
    limit = settings.max_frames
    try:
        if src.kind == "images" or not playing:
            frame = src.read() if src.kind == "images" else st.session_state.get("pst_last")
            if frame is None:
                frame = src.read()
            if frame is None:
                st.error(f"no frame could be read from {chosen[2] if len(chosen) > 2 else 'the source'}")
                st.stop()
            outs = _show(st, slots, det, frame.image, states, c, panel)
            _panel(st, panel_slot, panel)
            _download(st, outs)
            st.stop()
        if src.kind == "video" and st.session_state["pst_pos"]:
            src.seek(st.session_state["pst_pos"])
        interval = 1.0 / src.fps if src.kind == "video" and src.fps else 0.0
        shown, next_due, outs = 0, time.perf_counter(), []
        while limit is None or shown < limit:
            fr = src.read()
            if fr is None:
                break
            outs = _show(st, slots, det, fr.image, states, c, panel)
            st.session_state["pst_last"] = fr
            st.session_state["pst_pos"] = fr.index + 1
            _panel(st, panel_slot, panel)
            shown += 1
            if interval:  # a video plays at its own frame rate
                next_due += interval
                time.sleep(max(0.0, next_due - time.perf_counter()))
        if src.kind == "video" and (limit is None or shown < limit):
            st.session_state.update(pst_pos=0, pst_ended=True)
            st.success("end of the video: moving a control redraws its last frame; Play again replays it")
        for note in src.notes:
            st.warning(note)
        _download(st, outs)
    finally:
        src.close()


def _download(st, outs) -> None:
    if outs:
        ok, png = cv2.imencode(".png", outs[-1].image)
        if ok:
            st.download_button(
                "Download this frame (PNG)", png.tobytes(), "pst-yolo-frame.png", "image/png", on_click="ignore"
            )


if __name__ == "__main__":
    page()
