"""Where demo frames come from: webcams, video files, images, folders and network streams; and whether a
window can be opened here."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np

from pst_yolo.viz.common import IMAGE_SUFFIXES, DemoError, say

VIDEO_SUFFIXES = {".asf", ".avi", ".gif", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".ts", ".wmv", ".webm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


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
        say(f"pst-yolo demo: {msg}", self.verbose)


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
STEADY_SECONDS = 30.0  # a stream that delivered frames this long after (re)connecting gets its reconnect budget back


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

    def __init__(
        self,
        target: Any,
        kind: str,
        description: str,
        capture_factory: Optional[Callable] = None,
        reconnect: int = 0,
        reconnect_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        verbose: bool = True,
    ) -> None:
        super().__init__(description, verbose)
        self.kind = kind
        self.target = target
        self.factory = capture_factory or (_open_stream if kind == "stream" else cv2.VideoCapture)
        self.reconnect = max(int(reconnect), 0)
        self.reconnect_delay = float(reconnect_delay)
        self.sleep = sleep
        self.reconnects = 0  # successful reconnects in all
        self.attempts_in_row = 0  # reconnect attempts since the stream last ran steadily
        self.reconnected_in_row = 0  # ... of which succeeded
        self.connected_at = time.monotonic()
        self.cap = None
        self._peeked: Optional[np.ndarray] = None
        self.declared_frames: Optional[int] = None
        self.stem = {"camera": f"camera{target}", "stream": "stream"}.get(kind, Path(str(target)).stem or "video")
        if not self._open():
            raise DemoError(self._open_error())
        self._frame_size = self._peeked.shape[:2]

    def _open_error(self) -> str:
        if self.kind == "camera":
            return (
                f"camera {self.target} could not be opened or gave no frame (no such device, no permission, or in use)"
            )
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
            except Exception:
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

    def seek(self, index: int) -> bool:
        """Video files only: continue from frame ``index`` (0-based). False when the file cannot seek there."""
        if self.kind != "video" or self.cap is None or index <= 0:
            return index <= 0
        if not self.cap.set(cv2.CAP_PROP_POS_FRAMES, float(index)):
            return False
        ok, img = self.cap.read()
        if not ok or img is None:
            return False
        self._peeked, self.read_count = img, int(index)
        return True

    def _on_read_failure(self) -> Optional[np.ndarray]:
        if self.kind == "video":
            if self.declared_frames and self.read_count < self.declared_frames - 1:
                self._note(f"video ended after {self.read_count} frames; its header announced {self.declared_frames}")
            return None
        if self.kind == "camera":
            self._note(f"camera {self.target} stopped delivering frames after {self.read_count} frames")
            return None
        # stream: reconnect, at most `reconnect` attempts until it runs steadily again (a stream that keeps
        # dropping right after each reconnect ends instead of flapping forever)
        if time.monotonic() - self.connected_at >= STEADY_SECONDS:
            self.attempts_in_row = self.reconnected_in_row = 0
        while self.attempts_in_row < self.reconnect:
            self.attempts_in_row += 1
            attempt = self.attempts_in_row
            delay = self.reconnect_delay * attempt
            self._note(
                f"stream {_redact(str(self.target))} dropped after {self.read_count} frames; "
                f"reconnecting (attempt {attempt}/{self.reconnect}) in {delay:g} s"
            )
            if delay > 0:
                self.sleep(delay)
            if self._open():
                self.reconnects += 1
                self.reconnected_in_row += 1
                self.connected_at = time.monotonic()
                self._note(f"stream reconnected (attempt {attempt}); continuing")
                img, self._peeked = self._peeked, None
                return img
        flapping = (
            f" ({self.reconnected_in_row} succeeded, but the stream dropped again within {STEADY_SECONDS:g} s)"
            if self.reconnected_in_row
            else ""
        )
        self._note(
            f"stream {_redact(str(self.target))} lost after {self.read_count} frames: gave up after "
            f"{self.reconnect} reconnect attempts{flapping}"
        )
        return None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def source_kind(source: Any) -> str:
    """``camera``, ``stream`` or ``path`` (an existing file or folder), without opening anything; a missing,
    empty or missing-path source is a DemoError (the demo and the app check it before they start)."""
    text = "" if isinstance(source, bool) or source is None else str(source).strip()
    if not text:  # (an empty path would mean the current folder)
        raise DemoError(
            "source= is required: a webcam index (0), a video file, an image, a folder of images or a stream URL"
        )
    if isinstance(source, int) or (text.isdigit() and not Path(text).exists()):
        return "camera"
    if text.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if not Path(text).expanduser().exists():
        raise DemoError(f"source not found: {text} (no such file or folder)")
    return "path"


def open_source(
    source: Any,
    capture_factory: Optional[Callable] = None,
    reconnect: int = 3,
    reconnect_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    verbose: bool = True,
) -> FrameSource:
    """A FrameSource for a webcam index, stream URL, video file, image file or folder of images.

    Raises DemoError (one line) for a missing path, an empty folder, an unreadable image or video, or
    a camera/stream that does not open.
    """
    kind = source_kind(source)
    text = str(source).strip()
    common = dict(capture_factory=capture_factory, sleep=sleep, verbose=verbose)
    if kind == "camera":
        return CaptureSource(int(text), "camera", f"camera {int(text)}", **common)
    if kind == "stream":
        if Path(text.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES:
            reconnect = 0  # an image behind a URL: one frame, nothing to reconnect to
        return CaptureSource(
            text, "stream", _redact(text), reconnect=reconnect, reconnect_delay=reconnect_delay, **common
        )
    path = Path(text).expanduser()
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
