"""Real-time detection demo with a live view of what PST's fine branch looks at.

    pst-yolo demo source=0 model=best.pt               # webcam 0, OpenCV window
    pst-yolo demo source=clip.mp4 model=best.onnx show=False   # headless: annotated video in runs/pst/demo*

Python::

    from pst_yolo.demo import run_demo
    summary = run_demo("clip.mp4", "best.pt", show=False, imgsz=640)
    print(summary.frames_read, summary.frames_processed, summary.per_k)

Sources: a webcam index (``0``), a video file, a folder of images, a single image, or an
RTSP/RTMP/HTTP(S) stream URL (reconnected when it drops). Models: PyTorch ``.pt`` (or a ``.yaml``,
random weights) and exported ``.onnx`` (k fixed at export; no attention overlay, which needs hooks
in the PyTorch forward pass).

Keys in the window (``handle_key`` is a pure function of (state, key)):
``f`` coarse/fine, ``+``/``-`` k up/down (powers of two), ``v`` attention overlay, ``space`` pause,
``s`` save the frame, ``q``/Esc quit.

Without a display (``show=False``, or none detected: ``$DISPLAY`` unset or unusable) the annotated
frames go to the run folder instead -- one output frame per frame read, as a video for video-like
sources and as images for image sources. The summary at the end counts frames read, processed and
failed, and gives mean/p90 latency and FPS for each k used.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import cv2
import numpy as np

from pst_yolo.attention_maps import LAYER_COLORS, SelectionRecorder, draw_detections, draw_overlay
from pst_yolo.cli import to_bool as _bool

__all__ = (
    "DemoError",
    "DemoState",
    "DemoSummary",
    "Detector",
    "FrameOutput",
    "KEYS_HELP",
    "cli_demo",
    "display_available",
    "handle_key",
    "open_source",
    "process_frame",
    "run_demo",
)

WINDOW = "pst-yolo demo"
KEYS_HELP = "f coarse/fine | +/- k | v attention | space pause | s save | q quit"
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".jp2", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".asf", ".avi", ".gif", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".ts", ".wmv", ".webm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
WRITABLE_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
K_LIMIT = 4096  # upper bound for '+' before the coarse-map size is known


class DemoError(RuntimeError):
    """Bad input or an unusable source/model; the message is one line that says what to fix."""


def _say(msg: str, verbose: bool = True) -> None:
    if verbose:
        print(msg, flush=True)


def _redact(url: str) -> str:
    """Hide credentials in a stream URL (rtsp://user:pass@host -> rtsp://***@host)."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", url)


# ------------------------------------------------------------------------------------------------
# Display detection
# ------------------------------------------------------------------------------------------------
_DISPLAY_CACHE: dict = {}
_PROBE = (
    "import cv2, numpy as np\n"
    "cv2.namedWindow('pst-yolo-probe')\n"
    "cv2.imshow('pst-yolo-probe', np.zeros((8, 8, 3), np.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)


def display_available() -> bool:
    """True if OpenCV can open a window here.

    On Linux and other X11/Wayland systems there must be a ``$DISPLAY`` or ``$WAYLAND_DISPLAY``;
    then a window is tried in a child process, because OpenCV's Qt/GTK back ends abort the whole
    process (not an exception) when the display cannot be reached, and a headless OpenCV build
    raises. The answer is cached per display setting.
    """
    posix_gui = sys.platform not in ("win32", "darwin")
    if posix_gui and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    key = tuple(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    if key not in _DISPLAY_CACHE:
        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=30)
            _DISPLAY_CACHE[key] = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _DISPLAY_CACHE[key] = False
    return _DISPLAY_CACHE[key]


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------
@dataclass
class Frame:
    image: np.ndarray
    name: str  # file name for images, frame_000123 for video-like sources
    index: int  # 0-based among the frames read from this source


class FrameSource:
    """Frames one by one: ``read()`` returns a Frame, or None at the end."""

    kind = "?"  # images | video | camera | stream

    def __init__(self, description: str, verbose: bool = True) -> None:
        self.description = description
        self.verbose = verbose
        self.read_count = 0
        self.notes: list[str] = []  # things the summary should mention
        self.fps: Optional[float] = None
        self.stem = "output"

    def read(self) -> Optional[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _note(self, msg: str) -> None:
        self.notes.append(msg)
        _say(f"pst-yolo demo: {msg}", self.verbose)


class ImageSource(FrameSource):
    kind = "images"

    def __init__(self, paths: Sequence[Path], description: str, verbose: bool = True) -> None:
        super().__init__(description, verbose)
        self.paths = list(paths)
        self.pos = 0
        self.unreadable: list[str] = []
        self.stem = Path(description).stem or "images"

    def read(self) -> Optional[Frame]:
        while self.pos < len(self.paths):
            p = self.paths[self.pos]
            self.pos += 1
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                self.unreadable.append(str(p))
                self._note(f"skipped unreadable image {p}")
                continue
            frame = Frame(img, p.name, self.read_count)
            self.read_count += 1
            return frame
        return None


class _quiet_opencv:
    """Silence OpenCV's logger for a moment (restored after)."""

    def __enter__(self):
        logging = getattr(getattr(cv2, "utils", None), "logging", None)
        self._logging = logging
        if logging is not None:
            self._level = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        return self

    def __exit__(self, *exc):
        if self._logging is not None:
            self._logging.setLogLevel(self._level)


STREAM_TIMEOUT_MS = 10000


def _open_stream(url: str):
    """cv2.VideoCapture for a network stream, with open/read timeouts so a dead stream is noticed."""
    props = []
    for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
        if hasattr(cv2, name):
            props += [getattr(cv2, name), STREAM_TIMEOUT_MS]
    if props and hasattr(cv2, "CAP_FFMPEG"):
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, props)
        if cap.isOpened():
            return cap
    return cv2.VideoCapture(url)


class CaptureSource(FrameSource):
    """A video file, a camera or a stream through ``cv2.VideoCapture`` (or a drop-in factory)."""

    def __init__(self, target: Any, kind: str, description: str, capture_factory: Callable = None,
                 reconnect: int = 0, reconnect_delay: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 verbose: bool = True) -> None:
        super().__init__(description, verbose)
        self.kind = kind
        self.target = target
        self.factory = capture_factory or (_open_stream if kind == "stream" else cv2.VideoCapture)
        self.reconnect = max(int(reconnect), 0)
        self.reconnect_delay = float(reconnect_delay)
        self.sleep = sleep
        self.reconnects = 0
        self.cap = None
        self._peeked: Optional[np.ndarray] = None
        self.declared_frames: Optional[int] = None
        self.stem = {"camera": f"camera{target}", "stream": "stream"}.get(kind, Path(str(target)).stem or "video")
        if not self._open():
            raise DemoError(self._open_error())
        self._frame_size = self._peeked.shape[:2]

    def _open_error(self) -> str:
        if self.kind == "camera":
            return f"camera {self.target} could not be opened or gave no frame (no such device, no permission, or in use)"
        if self.kind == "stream":
            return f"could not open stream {_redact(str(self.target))} (unreachable, wrong URL, or no video in it)"
        return f"could not read a video frame from {self.target} (not a video, corrupt, or an unsupported codec)"

    def _open(self) -> bool:
        """(Re)open the capture and peek one frame; False when that fails."""
        if self.cap is not None:
            self.cap.release()
        with _quiet_opencv():  # OpenCV's own multi-line warnings would bury the one-line error
            try:
                self.cap = self.factory(self.target)
            except Exception:  # noqa: BLE001 - a factory may raise instead of returning a closed capture
                self.cap = None
                return False
            if self.cap is None or not self.cap.isOpened():
                return False
            ok, img = self.cap.read()
        if not ok or img is None:
            return False
        self._peeked = img
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if math.isfinite(fps) and 0.5 <= fps <= 240:
            self.fps = fps
        if self.kind == "video":
            n = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.declared_frames = int(n) if n and math.isfinite(n) and n > 0 else None
        return True

    def read(self) -> Optional[Frame]:
        if self._peeked is not None:
            img, self._peeked = self._peeked, None
        else:
            ok, img = self.cap.read() if self.cap is not None else (False, None)
            if not ok or img is None:
                img = self._on_read_failure()
                if img is None:
                    return None
        frame = Frame(img, f"frame_{self.read_count:06d}", self.read_count)
        self.read_count += 1
        return frame

    def _on_read_failure(self) -> Optional[np.ndarray]:
        if self.kind == "video":
            if self.declared_frames and self.read_count < self.declared_frames - 1:
                self._note(f"video ended after {self.read_count} frames; its header announced {self.declared_frames}")
            return None
        if self.kind == "camera":
            self._note(f"camera {self.target} stopped delivering frames after {self.read_count} frames")
            return None
        # stream: reconnect
        for attempt in range(1, self.reconnect + 1):
            delay = self.reconnect_delay * attempt
            self._note(
                f"stream {_redact(str(self.target))} dropped after {self.read_count} frames; "
                f"reconnecting (attempt {attempt}/{self.reconnect}) in {delay:g} s"
            )
            if delay > 0:
                self.sleep(delay)
            if self._open():
                self.reconnects += 1
                self._note(f"stream reconnected (attempt {attempt}); continuing")
                img, self._peeked = self._peeked, None
                return img
        self._note(f"stream lost after {self.read_count} frames: gave up after {self.reconnect} reconnect attempts")
        return None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def open_source(source: Any, capture_factory: Callable = None, reconnect: int = 3, reconnect_delay: float = 1.0,
                sleep: Callable[[float], None] = time.sleep, verbose: bool = True) -> FrameSource:
    """A FrameSource for a webcam index, stream URL, video file, image file or folder of images.

    Raises DemoError (one line) for a missing path, an empty folder, an unreadable image or video, or
    a camera/stream that does not open.
    """
    if isinstance(source, bool) or source is None:
        raise DemoError("source= is required: a webcam index (0), a video file, an image, a folder of images or a stream URL")
    text = str(source).strip()
    common = dict(capture_factory=capture_factory, sleep=sleep, verbose=verbose)
    if isinstance(source, int) or (text.isdigit() and not Path(text).exists()):
        return CaptureSource(int(text), "camera", f"camera {int(text)}", **common)
    if text.lower().startswith(STREAM_SCHEMES):
        if Path(text.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES:
            reconnect = 0  # an image behind a URL: one frame, nothing to reconnect to
        return CaptureSource(text, "stream", _redact(text), reconnect=reconnect, reconnect_delay=reconnect_delay, **common)
    path = Path(text).expanduser()
    if not path.exists():
        raise DemoError(f"source not found: {text} (no such file or folder)")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            videos = [p.name for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
            hint = f" (it holds videos: pass one file, e.g. source={path / videos[0]})" if videos else ""
            raise DemoError(f"no images in folder {path}{hint}")
        return ImageSource(images, str(path), verbose)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
            raise DemoError(f"cannot read image {path} (corrupt or not an image)")
        return ImageSource([path], str(path), verbose)
    if suffix in VIDEO_SUFFIXES:
        return CaptureSource(str(path), "video", str(path), **common)
    # unknown suffix: an image if OpenCV decodes it as one, else try it as a video
    if cv2.imread(str(path), cv2.IMREAD_COLOR) is not None:
        return ImageSource([path], str(path), verbose)
    try:
        return CaptureSource(str(path), "video", str(path), **common)
    except DemoError:
        raise DemoError(f"cannot read {path} as an image or a video") from None


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------
MODEL_FILE_SUFFIXES = {".pt", ".pth", ".onnx", ".torchscript", ".engine", ".mlpackage", ".tflite"}


def load_model(model: Any):
    """An Ultralytics YOLO object from a path (``.pt``, ``.onnx``, ``.yaml`` ...) or a YOLO object."""
    from ultralytics import YOLO

    if model is None or (isinstance(model, str) and not model.strip()):
        raise DemoError("model= is required: a .pt checkpoint, an exported .onnx, or e.g. yolo11n-pst.yaml (random weights)")
    if not isinstance(model, (str, Path)):
        if hasattr(model, "predict"):
            return model
        raise DemoError(f"model must be a path or an Ultralytics YOLO object, got {type(model).__name__}")
    path = Path(model).expanduser()
    if (path.suffix.lower() in MODEL_FILE_SUFFIXES or len(path.parts) > 1) and not path.exists():
        raise DemoError(f"model file not found: {model}")
    try:
        return YOLO(str(path) if path.exists() else str(model))
    except Exception as e:  # noqa: BLE001 - anything Ultralytics raises becomes one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DemoError(f"could not load model {model}: {first}") from e


def _parse_export_k(raw: Any) -> Any:
    """``pst_topk`` export metadata ({layer: k}, possibly as a string) -> an int if all agree, else the dict."""
    import ast

    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    if isinstance(raw, dict):
        values = set(raw.values())
        return values.pop() if len(values) == 1 else raw
    return raw if isinstance(raw, int) else None


@dataclass
class Detection:
    """One frame's result: boxes in original-image pixels, and what the fine branch selected."""

    boxes: np.ndarray  # [n, 4] xyxy
    classes: np.ndarray  # [n]
    confs: np.ndarray  # [n]
    latency_ms: float
    k: Any
    selections: list
    result: Any = None  # the Ultralytics Results object


class Detector:
    """A YOLO model behind Ultralytics' predictor, with PST's k and the selection hooks on the very
    module the predictor runs (Ultralytics' predictor works on its own copy of the model).

    Args:
        model: ``.pt``/``.onnx``/``.yaml`` path or a YOLO object.
        topk: k for every PST layer (None: keep the model's). Ignored, with a message, for exports.
    """

    def __init__(self, model: Any, imgsz: int = 640, conf: float = 0.25, iou: float = 0.7, device: str = "cpu",
                 max_det: int = 300, topk: Optional[int] = None, verbose: bool = True) -> None:
        self.verbose = verbose
        self.yolo = load_model(model)
        if isinstance(model, (str, Path)):
            self.model_name = str(model)
        else:  # a YOLO object: name it by its checkpoint or config
            ref = getattr(model, "ckpt_path", None) or getattr(model, "cfg", None)
            self.model_name = Path(str(ref)).name if ref else type(model).__name__
        self.args = dict(imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det, verbose=False)
        self.net = None
        self.layers: list = []
        self.recorder: Optional[SelectionRecorder] = None
        self.export_k: Any = None
        self.notes: list[str] = []
        self._backend = None
        self._predict(np.zeros((max(int(imgsz), 32), max(int(imgsz), 32), 3), np.uint8))  # sets the predictor up
        self.pytorch = self.net is not None
        self._k_at_start = self.k if self.layers else None  # restored on close(): a caller's YOLO object is left as found
        if topk is not None:
            if self.layers:
                self.set_k(int(topk))
            elif not self.pytorch and self.export_k is not None:
                self._note(f"topk={topk} ignored: {self.model_name} is an export with k fixed at {self.k_label()}")
            else:
                self._note(f"topk={topk} ignored: {self.model_name} has no PST layers")
        if not self.pytorch:
            fixed = self.yolo.predictor.args.imgsz
            if fixed != imgsz and fixed != [imgsz, imgsz]:
                self._note(f"{self.model_name} has a fixed input size {fixed}; imgsz={imgsz} ignored")

    def _note(self, msg: str) -> None:
        self.notes.append(msg)
        _say(f"pst-yolo demo: {msg}", self.verbose)

    def _attach(self) -> None:
        """Find the predictor's model; hook its PST layers (again, if the predictor was rebuilt)."""
        from torch import nn

        from pst_yolo import pst_layers

        backend = self.yolo.predictor.model
        if backend is self._backend:
            return
        previous_k = self.k if self.layers else None
        self._backend = backend
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None
        net = getattr(backend, "model", None) if getattr(backend, "format", "pt") == "pt" else None
        self.net = net if isinstance(net, nn.Module) else None
        self.layers = pst_layers(self.net) if self.net is not None else []
        if self.layers:
            self.recorder = SelectionRecorder(self.net, enabled=False)
            if previous_k is not None:
                self.set_k(previous_k)
        if self.net is None:
            metadata = getattr(backend, "metadata", None) or {}
            self.export_k = _parse_export_k(metadata.get("pst_topk") if isinstance(metadata, dict) else None)

    def _predict(self, image: np.ndarray):
        result = self.yolo.predict(image, **self.args)[0]
        self._attach()
        return result

    # -- k --------------------------------------------------------------------------------------
    @property
    def k_adjustable(self) -> bool:
        return bool(self.layers)

    @property
    def k(self) -> Any:
        """k in force: from the PST layers (PyTorch) or the export metadata; None without PST."""
        from pst_yolo import get_topk

        if self.layers:
            return get_topk(self.net)
        return self.export_k

    def k_label(self) -> str:
        k = self.k
        if not self.layers:
            if self.pytorch:
                return "no PST layers"
            return f"k={k}" if k is not None else "k=? (not recorded in the export)"
        return f"k={k}"

    def set_k(self, k: int) -> None:
        from pst_yolo import set_topk

        if self.layers:
            set_topk(self.net, int(k))

    # -- inference ------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray, capture: bool = False) -> Detection:
        if self.recorder is not None:
            self.recorder.enabled = bool(capture)
        t0 = time.perf_counter()
        result = self.yolo.predict(image, **self.args)[0]
        latency = (time.perf_counter() - t0) * 1000.0
        if self.yolo.predictor.model is not self._backend:  # predictor rebuilt: hooks were on the old copy
            self._attach()
            if self.recorder is not None:
                self.recorder.enabled = bool(capture)
            t0 = time.perf_counter()
            result = self.yolo.predict(image, **self.args)[0]
            latency = (time.perf_counter() - t0) * 1000.0
        selections = list(self.recorder.selections) if (self.recorder is not None and capture) else []
        boxes = getattr(result, "boxes", None)
        if boxes is not None and len(boxes):
            xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
            cls = boxes.cls.cpu().numpy().astype(np.int64)
            conf = boxes.conf.cpu().numpy().astype(np.float32)
        else:
            xyxy, cls, conf = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return Detection(xyxy, cls, conf, latency, self.k, selections, result)

    @property
    def names(self) -> Any:
        return getattr(self.yolo, "names", None)

    def close(self) -> None:
        """Remove the hooks and put back the k the model had (the run's k changes are not left behind)."""
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None
        if self.layers and self._k_at_start is not None:
            from pst_yolo import set_topk

            set_topk(self.net, self._k_at_start)


# ------------------------------------------------------------------------------------------------
# Keys: a pure function (state, key) -> state
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoState:
    """Everything the keys change. ``effective_k`` is what the PST layers run with."""

    k: int = 8  # the fine-branch k, remembered while coarse
    fine: bool = True
    overlay: bool = False
    paused: bool = False
    quit: bool = False
    save_requested: bool = False
    k_adjustable: bool = True
    overlay_available: bool = True
    k_max: Optional[int] = None  # largest k every PST layer can use (coarse tokens), once known
    fixed_reason: str = ""  # shown when f/+/- cannot change k
    overlay_reason: str = ""  # shown when v cannot turn the overlay on
    message: str = ""  # what the last key did

    @property
    def effective_k(self) -> int:
        return self.k if self.fine else 0


def _next_k(k: int) -> int:
    return 1 << max(int(k), 0).bit_length()  # next power of two above k


def _prev_k(k: int) -> int:
    return max(1, 1 << (max(int(k) - 1, 1).bit_length() - 1)) if k > 1 else 1  # previous power of two below k


def handle_key(state: DemoState, key: Optional[int]) -> DemoState:
    """The demo's key bindings. ``key`` is a code as returned by ``cv2.waitKey`` (-1 or None: none).

    f: coarse (k=0) <-> fine (k, remembered while coarse); + / =: k up to the next power of two
    (capped at ``k_max``; from coarse: fine on at the remembered k); - / _: k down to the previous
    power of two (min 1); v: attention overlay; space: pause;
    s: save the current frame; q / Esc: quit. Other keys leave the state unchanged (same object).
    """
    if key is None or key < 0:
        return state
    key &= 0xFF
    if key == 255:
        return state
    ch = chr(key)
    if key == 27 or ch in "qQ":
        return replace(state, quit=True, message="quit")
    if ch == " ":
        paused = not state.paused
        return replace(state, paused=paused, message="paused (space resumes)" if paused else "resumed")
    if ch in "sS":
        return replace(state, save_requested=True, message="saving frame")
    if ch in "vV":
        if not state.overlay_available:
            return replace(state, message=state.overlay_reason or "attention overlay not available for this model")
        on = not state.overlay
        msg = "attention overlay on" if on else "attention overlay off"
        if on and not state.fine:
            msg += " (fine branch off: score heat map only)"
        return replace(state, overlay=on, message=msg)
    if ch in "fF+=-_":
        if not state.k_adjustable:
            return replace(state, message=state.fixed_reason or "k cannot be changed for this model")
        if ch in "fF":
            fine = not state.fine
            return replace(state, fine=fine, message=f"fine branch on: k={state.k}" if fine else "coarse only: k=0")
        limit = state.k_max or K_LIMIT
        if not state.fine:  # from coarse (k=0): + turns the fine branch on at the remembered k
            if ch in "+=":
                k = min(state.k, limit)
                return replace(state, k=k, fine=True, message=f"fine branch on: k={k}")
            return replace(state, message="coarse only already (k=0); + or f turns the fine branch on")
        if ch in "+=":
            if state.k >= limit:
                return replace(state, message=f"k={state.k} is the largest k this input allows ({limit} coarse tokens)")
            k = min(_next_k(state.k), limit)
        else:
            if state.k <= 1:
                return replace(state, message="k=1 is the smallest fine k; f switches to coarse only")
            k = min(_prev_k(state.k), limit)
        return replace(state, k=k, message=f"fine branch on: k={k}")
    return state


# ------------------------------------------------------------------------------------------------
# Per-frame processing
# ------------------------------------------------------------------------------------------------
@dataclass
class FrameOutput:
    """What one frame became. ``image`` is the annotated frame (same size as the input)."""

    index: int
    name: str
    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    confs: np.ndarray
    latency_ms: Optional[float]  # None when processing failed
    k: Any  # effective k (int), export k, or None without PST layers
    selections: list = field(default_factory=list)
    error: Optional[str] = None


def _hud_scale(img: np.ndarray) -> float:
    return float(np.clip(img.shape[1] / 1100.0, 0.35, 0.75))


def draw_hud(img: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]], bottom: Optional[str] = None) -> None:
    """Status lines top-left (and an optional help line bottom-left), in place, on dark boxes."""
    from pst_yolo.attention_maps import draw_label

    scale = _hud_scale(img)
    y = 2
    for text, color in lines:
        if text:
            y += draw_label(img, text, (2, y), color=color, bg=(0, 0, 0), scale=scale) + 1
    if bottom:
        (_, th), base = cv2.getTextSize(bottom, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        draw_label(img, bottom, (2, img.shape[0] - th - base - 6), color=(200, 200, 200), bg=(0, 0, 0), scale=scale)


def _k_text(detector: Detector, state: DemoState) -> str:
    if detector.layers:
        return f"PST k={state.effective_k} ({'fine' if state.fine and state.effective_k else 'coarse only'})"
    if detector.pytorch:
        return "no PST layers"
    return f"PST {detector.k_label()} (fixed at export)"


def process_frame(detector: Detector, frame: np.ndarray, state: DemoState, index: int = 0, name: str = "",
                  fps: Optional[float] = None, message: str = "", help_line: bool = False) -> FrameOutput:
    """Run one frame at ``state``'s k (and overlay), and draw boxes, labels, k, FPS and the overlay.

    Returns a FrameOutput whose image has the input's size. Pure apart from setting k on the model.
    """
    overlay = state.overlay and state.overlay_available and detector.recorder is not None
    if detector.k_adjustable and detector.k != state.effective_k:
        detector.set_k(state.effective_k)
    det = detector(frame, capture=overlay)
    img = frame.copy()
    info = None
    if overlay and det.selections:
        img, info = draw_overlay(img, det.selections)
    draw_detections(img, det.boxes, det.classes, det.confs, detector.names)
    k_used = state.effective_k if detector.layers else detector.k_label()
    speed = f"{fps:.1f} FPS | " if fps else ""
    lines = [(_k_text(detector, state), (0, 255, 255)), (f"{speed}{det.latency_ms:.1f} ms", (255, 255, 255))]
    if info is not None:
        lines.append((f"attention heat: PST layer {info.heat_layer}", (255, 255, 255)))
        for i, (layer, count) in enumerate(info.patches.items()):
            lines.append((f"layer {layer}: {count} fine patches", LAYER_COLORS[i % len(LAYER_COLORS)]))
    if message:
        lines.append((message, (0, 200, 255)))
    draw_hud(img, lines, KEYS_HELP if help_line else None)
    return FrameOutput(index, name, img, det.boxes, det.classes, det.confs, det.latency_ms, k_used, det.selections)


def _failed_frame(frame: np.ndarray, index: int, name: str, error: str) -> FrameOutput:
    img = frame.copy()
    draw_hud(img, [(f"processing failed: {error}"[:120], (0, 0, 255))])
    empty = np.zeros((0, 4), np.float32)
    return FrameOutput(index, name, img, empty, np.zeros(0, np.int64), np.zeros(0, np.float32), None, None, [], error)


# ------------------------------------------------------------------------------------------------
# Outputs and summary
# ------------------------------------------------------------------------------------------------
class VideoSink:
    """Annotated frames to a video: mp4v in .mp4, else MJPG in .avi (whichever this OpenCV can write)."""

    def __init__(self, stem: Path, fps: float, size_wh: tuple[int, int]) -> None:
        self.size = (int(size_wh[0]), int(size_wh[1]))
        self.count = 0
        self.writer = None
        for fourcc, ext in (("mp4v", ".mp4"), ("MJPG", ".avi")):
            path = stem.with_suffix(ext)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), self.size)
            if writer.isOpened():
                self.writer, self.path = writer, path
                break
            writer.release()
            path.unlink(missing_ok=True)
        if self.writer is None:
            raise DemoError(f"OpenCV cannot write video here (tried mp4v/.mp4 and MJPG/.avi in {stem.parent})")

    def write(self, img: np.ndarray) -> None:
        if (img.shape[1], img.shape[0]) != self.size:  # a stream may change size after reconnecting
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(img)
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


@dataclass
class KStats:
    """Latency of the frames processed at one k."""

    k: Any
    label: str
    frames: int
    mean_ms: float
    p90_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")


@dataclass
class DemoSummary:
    source: str
    kind: str
    model: str
    frames_read: int = 0
    frames_processed: int = 0
    frames_failed: int = 0
    frames_written: int = 0
    rerendered: int = 0  # re-runs of a paused frame after a key changed k/overlay (not in the stats)
    unreadable: list = field(default_factory=list)
    per_k: list = field(default_factory=list)  # [KStats]
    wall_fps: Optional[float] = None  # read + infer + draw + write/show, frames processed per second
    output: Optional[Path] = None  # the annotated video, or the folder of annotated images
    saved_frames: list = field(default_factory=list)
    run_dir: Optional[Path] = None
    notes: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.frames_processed > 0

    def lines(self) -> list[str]:
        out = [
            f"pst-yolo demo summary: {self.kind} {self.source}, model {self.model}",
            f"  frames read {self.frames_read}, processed {self.frames_processed}, failed {self.frames_failed}"
            + (f", written {self.frames_written}" if self.output else "")
            + (f", unreadable images skipped {len(self.unreadable)}" if self.unreadable else "")
            + (f", paused-frame re-runs {self.rerendered}" if self.rerendered else "")
            + (" (interrupted)" if self.interrupted else ""),
        ]
        for s in self.per_k:
            out.append(f"  {s.label:<28} {s.frames:>6} frames  latency mean {s.mean_ms:7.1f} ms  "
                       f"p90 {s.p90_ms:7.1f} ms  {s.fps:6.1f} FPS")
        if self.wall_fps:
            out.append(f"  end to end (read, infer, draw, write/show): {self.wall_fps:.1f} FPS")
        out.extend(f"  note: {n}" for n in self.notes)
        if self.output:
            out.append(f"  output: {self.output}")
        out.extend(f"  saved frame: {p}" for p in self.saved_frames)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _k_stats(latencies: dict, label_for: Callable[[Any], str]) -> list[KStats]:
    stats = []
    for k, values in latencies.items():
        a = np.asarray(values, dtype=np.float64)
        stats.append(KStats(k, label_for(k), len(a), float(a.mean()), float(np.percentile(a, 90))))
    return stats


def _run_dir(project: str | Path, name: str, save_dir: Optional[str | Path]) -> Path:
    if save_dir is not None:
        path = Path(save_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    from ultralytics.utils.files import increment_path

    return increment_path(Path(project) / name, exist_ok=False, mkdir=True)


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------
_NO_MORE_KEYS = object()


def initial_state(detector: Detector, topk: Optional[int] = None, overlay: bool = False) -> DemoState:
    """The state a run starts in for this model (what the keys may change, and why not)."""
    from pst_yolo.policy import DEFAULT_TOPK

    if detector.layers:
        current = detector.k if isinstance(detector.k, int) else max(detector.k.values())
        k = current if current > 0 else (topk if topk else DEFAULT_TOPK)
        return DemoState(k=k, fine=current > 0, overlay=overlay)
    if detector.pytorch:
        reason = f"{detector.model_name} has no PST layers: no k to change, no attention to show"
        return DemoState(k=0, fine=False, k_adjustable=False, overlay_available=False, fixed_reason=reason,
                         overlay_reason=reason)
    export_k = detector.k if isinstance(detector.k, int) else 0
    return DemoState(
        k=export_k, fine=export_k > 0, k_adjustable=False, overlay_available=False,
        fixed_reason=f"k is fixed at export ({detector.k_label()}) in {detector.model_name}; f/+/- ignored",
        overlay_reason=f"attention overlay needs the PyTorch model (forward hooks); not available for {detector.model_name}",
    )


def run_demo(
    source: Any,
    model: Any,
    *,
    show: Optional[bool] = None,
    save: Optional[bool] = None,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    topk: Optional[int] = None,
    device: str = "cpu",
    max_det: int = 300,
    overlay: bool = False,
    project: str | Path = "runs/pst",
    name: str = "demo",
    save_dir: Optional[str | Path] = None,
    max_frames: Optional[int] = None,
    delay: int = 1000,
    reconnect: int = 3,
    reconnect_delay: float = 1.0,
    keys: Optional[Iterable[Optional[int]]] = None,
    on_frame: Optional[Callable[[FrameOutput], None]] = None,
    capture_factory: Optional[Callable] = None,
    verbose: bool = True,
) -> DemoSummary:
    """Run the demo; returns (and prints) the summary.

    Args:
        source: webcam index, video file, image, folder of images, or RTSP/RTMP/HTTP(S) stream URL.
        model: ``.pt``/``.onnx``/``.yaml`` path, or a YOLO object.
        show: open a window (None: if a display is available). Without one the run is headless.
        save: write annotated output to the run folder (None: only when headless).
        topk: k to start with (None: the model's own; PyTorch PST models only).
        overlay: start with the attention overlay on.
        save_dir: exact output folder (default: ``project/name``, numbered like Ultralytics runs).
        max_frames: stop after this many frames read (None: until the source ends or q).
        delay: ms each image of an image source stays in the window (show mode).
        reconnect, reconnect_delay: attempts and base delay (s) when a stream drops.
        keys: key codes fed to the loop instead of the keyboard, one per loop step (tests, scripting);
            after they run out, the keyboard takes over in a window, nothing headless.
        on_frame: called with each new frame's FrameOutput.
        capture_factory: replaces ``cv2.VideoCapture`` (tests).

    Raises:
        DemoError: bad source or model (one-line message).
    """
    src = open_source(source, capture_factory=capture_factory, reconnect=reconnect,
                      reconnect_delay=reconnect_delay, verbose=verbose)
    try:
        detector = Detector(model, imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det, topk=topk,
                            verbose=verbose)
    except BaseException:
        src.close()
        raise
    display = display_available() if show is None else bool(show)
    notes: list[str] = []
    if show and not display_available():
        display = False
        msg = "show=True but no usable display here ($DISPLAY unset or unreachable): running headless"
        notes.append(msg)
        _say(f"pst-yolo demo: {msg}", verbose)
    save = (not display) if save is None else bool(save)
    summary = DemoSummary(source=src.description, kind=src.kind, model=detector.model_name)
    state = initial_state(detector, topk, overlay)
    if not detector.k_adjustable:
        notes.append(state.fixed_reason)
    run_dir: Optional[Path] = None

    def get_run_dir() -> Path:
        nonlocal run_dir
        if run_dir is None:
            run_dir = _run_dir(project, name, save_dir)
            summary.run_dir = run_dir
        return run_dir

    sink: Optional[VideoSink] = None
    latencies: dict = {}
    key_iter: Optional[Iterator] = iter(keys) if keys is not None else None
    current: Optional[FrameOutput] = None
    in_hand: Optional[Frame] = None
    rendered: Optional[tuple] = None
    hold = False
    fps_ema: Optional[float] = None
    t_prev: Optional[float] = None
    t_start = time.perf_counter()
    message, message_until = "", 0.0
    error_counts: dict = {}

    def run_one(fr: Frame, count: bool) -> FrameOutput:
        nonlocal rendered
        msg = message if time.perf_counter() < message_until else ""
        try:
            out = process_frame(detector, fr.image, state, fr.index, fr.name, fps_ema, msg, help_line=display)
        except Exception as e:  # noqa: BLE001 - one bad frame must not end a live demo; it is counted
            err = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            error_counts[err] = error_counts.get(err, 0) + 1
            if error_counts[err] <= 3:
                _say(f"pst-yolo demo: frame {fr.index} ({fr.name}) failed: {err}", verbose)
            out = _failed_frame(fr.image, fr.index, fr.name, err)
        rendered = (state.effective_k, state.overlay)
        if count:
            if out.error is None:
                summary.frames_processed += 1
                latencies.setdefault(out.k, []).append(out.latency_ms)
            else:
                summary.frames_failed += 1
        else:
            summary.rerendered += 1
        return out

    try:
        if display:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        while True:
            if not state.paused and not hold:
                if max_frames is not None and summary.frames_read >= max_frames:
                    break
                fr = src.read()
                if fr is None:
                    if display and src.kind == "images" and current is not None:
                        hold = True  # keep the last image on screen until q
                        message, message_until = "end of images: q quits", time.perf_counter() + 1e9
                        _say("pst-yolo demo: end of images; q or Esc closes the window", verbose)
                        continue
                    break
                summary.frames_read += 1
                in_hand = fr
                now = time.perf_counter()
                if t_prev is not None and now > t_prev:
                    inst = 1.0 / (now - t_prev)
                    fps_ema = inst if fps_ema is None else 0.9 * fps_ema + 0.1 * inst
                t_prev = now
                if summary.frames_read == 1 or (detector.recorder is not None and state.k_max is None):
                    # untimed pass at the source's frame size: warms up, and tells the coarse-map sizes
                    with contextlib.suppress(Exception):
                        detector(fr.image)
                if detector.recorder is not None:  # hooks record map sizes even with the overlay off
                    k_max = detector.recorder.min_coarse_tokens()
                    if k_max and k_max != state.k_max:
                        state = replace(state, k_max=k_max)
                        if state.k > k_max:  # the layers would clamp it anyway: say so, and count the k really used
                            state = replace(state, k=k_max)
                            note = f"k clamped to {k_max}: the smallest PST coarse map at this input size has {k_max} tokens"
                            notes.append(note)
                            _say(f"pst-yolo demo: {note}", verbose)
                current = run_one(fr, count=True)
                if save:
                    if src.kind == "images":
                        suffix = Path(fr.name).suffix.lower()
                        out_name = fr.name if suffix in WRITABLE_IMAGE_SUFFIXES else f"{Path(fr.name).stem}.png"
                        cv2.imwrite(str(get_run_dir() / out_name), current.image)
                        summary.output = get_run_dir()
                    else:
                        if sink is None:
                            h, w = current.image.shape[:2]
                            sink = VideoSink(get_run_dir() / src.stem, src.fps or 30.0, (w, h))
                            summary.output = sink.path
                        sink.write(current.image)
                    summary.frames_written += 1
                if on_frame is not None:
                    on_frame(current)
            elif in_hand is not None and rendered != (state.effective_k, state.overlay):
                current = run_one(in_hand, count=False)  # paused: show the same frame with the new setting

            if display and current is not None:
                cv2.imshow(WINDOW, current.image)
            # next key: scripted keys first, then the keyboard (window) or nothing (headless)
            key = None
            if key_iter is not None:
                key = next(key_iter, _NO_MORE_KEYS)
                if key is _NO_MORE_KEYS:
                    key, key_iter = None, None
            if key_iter is None and key is None and display:
                wait = 40 if (state.paused or hold) else (max(int(delay), 1) if src.kind == "images" else 1)
                key = cv2.waitKey(wait)
                if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                    break  # window closed with the mouse
            new = handle_key(state, key)
            if new.save_requested:
                if current is not None:
                    path = get_run_dir() / f"frame_{current.index:06d}.png"
                    cv2.imwrite(str(path), current.image)
                    summary.saved_frames.append(path)
                    new = replace(new, save_requested=False, message=f"saved {path}")
                else:
                    new = replace(new, save_requested=False, message="nothing to save yet")
            if new is not state and new.message:
                _say(f"pst-yolo demo: {new.message}", verbose)
                message, message_until = new.message, time.perf_counter() + 2.0
            state = new
            if state.quit:
                break
            if state.paused and not display and key_iter is None:
                _say("pst-yolo demo: paused with no window and no keys left: resuming", verbose)
                state = replace(state, paused=False)
    except KeyboardInterrupt:
        summary.interrupted = True
        _say("pst-yolo demo: interrupted", verbose)
    finally:
        src.close()
        if sink is not None:
            sink.close()
        detector.close()
        if display:
            try:
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            except cv2.error:
                pass

    elapsed = time.perf_counter() - t_start
    if summary.frames_processed and elapsed > 0:
        summary.wall_fps = summary.frames_processed / elapsed

    def label(k: Any) -> str:
        if detector.layers:
            return f"k={k} ({'fine' if k else 'coarse only'})"
        if detector.pytorch:
            return "no PST layers"
        return f"{detector.k_label()} (fixed at export)"

    summary.per_k = _k_stats(latencies, label)
    if isinstance(src, ImageSource):
        summary.unreadable = list(src.unreadable)
    summary.notes = [*notes, *detector.notes, *src.notes]
    summary.notes += [f"{n}x {err}" for err, n in error_counts.items()]
    if summary.frames_read == 0:
        summary.notes.append("no frame could be read from the source")
    _say(str(summary), verbose)
    return summary


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def _topk_value(value: str) -> int:
    from pst_yolo.policy import parse_topk

    return parse_topk(value, source="topk")


DEMO_KEYS: dict = {
    "source": str, "model": str, "show": _bool, "save": _bool, "imgsz": int, "conf": float, "iou": float,
    "topk": _topk_value, "device": str, "max_det": int, "overlay": _bool, "project": str, "name": str,
    "save_dir": str, "max_frames": int, "delay": int, "reconnect": int,
}

DEMO_USAGE = f"""usage: pst-yolo demo source=SOURCE model=MODEL [key=value ...]

  source     webcam index (0), video file, image, folder of images, or rtsp:// / http(s):// stream URL
  model      .pt checkpoint, exported .onnx (k fixed at export, no overlay), or e.g. yolo11n-pst.yaml (random weights)
  show       open a window (default: when a display is available; else headless)
  save       write the annotated video/images to the run folder (default: when headless)
  imgsz conf iou max_det device    as for yolo predict (defaults 640 0.25 0.7 300 cpu)
  topk       k to start with (default: the model's); overlay=true starts with the attention overlay on
  project name save_dir            run folder (default runs/pst/demo, numbered)
  max_frames stop after N frames; delay=ms per image in the window; reconnect=N attempts for dropped streams

keys: {KEYS_HELP}
"""


def _cli(argv: Sequence[str], command: str, keys: dict, usage: str, run: Callable[[dict], int]) -> int:
    from pst_yolo.cli import CLIError, parse_kv

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # command line: no FFmpeg chatter around our one-line errors
    words = list(argv)
    if words and words[0] in ("-h", "--help", "help"):
        print(usage)
        return 0
    try:
        opts = parse_kv(words, keys, command)
        return run(opts)
    except CLIError as e:
        print(f"pst-yolo {command}: error: {e}", file=sys.stderr)
        return 2
    except DemoError as e:
        print(f"pst-yolo {command}: error: {e}", file=sys.stderr)
        return 1


def cli_demo(argv: list[str]) -> int:
    """``pst-yolo demo key=value ...`` -> ``run_demo``. Exit 0 if any frame was processed, 1 if none
    (or bad source/model), 2 for bad arguments."""

    def run(opts: dict) -> int:
        from pst_yolo.cli import CLIError

        if "source" not in opts:
            raise CLIError("source= is required (webcam index, video, image, folder or stream URL)")
        if "model" not in opts:
            raise CLIError("model= is required (.pt, .onnx, or yolo11n-pst.yaml for random weights)")
        summary = run_demo(opts.pop("source"), opts.pop("model"), **opts)
        if not summary.ok:
            print("pst-yolo demo: error: no frame was processed", file=sys.stderr)
            return 1
        return 0

    return _cli(argv, "demo", DEMO_KEYS, DEMO_USAGE, run)
