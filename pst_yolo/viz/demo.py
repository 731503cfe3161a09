"""Real-time detection demo with a live view of what PST's fine branch looks at.

    pst-yolo demo source=0 model=best.pt               # webcam 0, OpenCV window
    pst-yolo demo source=clip.mp4 model=best.onnx show=False   # headless: annotated video in runs/pst/demo*

Python::

    from pst_yolo.viz.demo import run_demo
    summary = run_demo("clip.mp4", "best.pt", show=False, imgsz=640)
    print(summary.frames_read, summary.frames_processed, summary.per_k)

Sources: a webcam index (``0``), a video file, a folder of images, a single image, or an
RTSP/RTMP/HTTP(S) stream URL (reconnected when it drops). Models: PyTorch ``.pt`` (or a ``.yaml``,
random weights) and exported models -- ``.onnx``, an OpenVINO ``*_openvino_model`` folder, or any other
format Ultralytics' AutoBackend loads (k fixed at export; no attention overlay, which needs hooks
in the PyTorch forward pass).

Keys in the window (``handle_key`` is a pure function of (state, key)):
``f`` coarse/fine, ``+``/``-`` k up/down (powers of two), ``v`` attention overlay, ``[``/``]`` its
opacity, ``space`` pause,
``s`` save the frame, ``q``/Esc quit.

Without a display (``show=False``, or none detected: ``$DISPLAY`` unset or unusable) the annotated
frames go to the run folder instead -- one output frame per frame read, as a video for video-like
sources and as images for image sources. The summary at the end counts frames read, processed and
failed, and gives mean/p90 latency and FPS for each k used.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import cv2
import numpy as np

from pst_yolo.data.writer import open_video, write_image
from pst_yolo.viz.attention_maps import OVERLAY_ALPHA, OverlayInfo, draw_detections, draw_overlay, text_style
from pst_yolo.viz.common import WRITABLE_IMAGE_SUFFIXES, DemoError, check_save_dir, run_folder, say
from pst_yolo.viz.detector import Detector
from pst_yolo.viz.sources import Frame, ImageSource, display_available, open_source

__all__ = (
    "KEYS_HELP",
    "DemoError",
    "DemoLoop",
    "DemoState",
    "DemoSummary",
    "Detector",
    "FrameOutput",
    "display_available",
    "handle_key",
    "open_source",
    "process_frame",
    "run_demo",
)

WINDOW = "pst-yolo demo"
KEYS_HELP = "f coarse/fine | +/- k | v attention | [/] opacity | space pause | s save | q quit"
ALPHA_STEP = 0.1  # what [ and ] change the overlay opacity by
K_LIMIT = 4096  # upper bound for '+' before the coarse-map size is known


# ------------------------------------------------------------------------------------------------
# Keys: a pure function (state, key) -> state
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoState:
    """Everything the keys change. ``effective_k`` is what the PST layers run with."""

    k: int = 8  # the fine-branch k, remembered while coarse
    fine: bool = True
    overlay: bool = False
    overlay_alpha: float = OVERLAY_ALPHA  # opacity of the heat map (0: patches only)
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
    power of two (min 1); v: attention overlay; [ / ]: overlay opacity down / up by 0.1 (0 ... 1);
    space: pause;
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
    if ch in "[]":
        if not state.overlay_available:
            return replace(state, message=state.overlay_reason or "attention overlay not available for this model")
        step = ALPHA_STEP if ch == "]" else -ALPHA_STEP
        alpha = round(float(np.clip(state.overlay_alpha + step, 0.0, 1.0)), 2)
        if alpha == state.overlay_alpha:
            return replace(state, message=f"overlay opacity already {round(alpha * 100)}%")
        msg = f"overlay opacity {round(alpha * 100)}%" + ("" if state.overlay else " (v shows the overlay)")
        return replace(state, overlay_alpha=alpha, message=msg)
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
    hud: list = field(default_factory=list)  # the status lines drawn on the image (text)


Segment = tuple[str, tuple[int, int, int]]  # text, BGR colour


def _fit_segments(segments: Sequence[Segment], width: int, scale: float, thickness: int) -> list[Segment]:
    """The leading segments that fit in ``width`` pixels (the last ones are the least important); a first
    segment too wide on its own is cut short with '..'."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    out: list[Segment] = []
    used = 4  # the label box's padding
    for text, color in segments:
        w = cv2.getTextSize(text, font, scale, thickness)[0][0]
        if used + w > width:
            if not out:
                while len(text) > 1 and used + cv2.getTextSize(text + "..", font, scale, thickness)[0][0] > width:
                    text = text[:-1]
                out.append((text + "..", color))
            break
        out.append((text, color))
        used += w
    return out


def _draw_segments(img: np.ndarray, segments: Sequence[Segment], y: int, scale: float, thickness: int) -> int:
    """One HUD line at height ``y``: coloured segments on one dark box; returns the box height."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, th), base = cv2.getTextSize("Ag", font, scale, thickness)
    widths = [cv2.getTextSize(t, font, scale, thickness)[0][0] for t, _ in segments]
    h = th + base + 4
    cv2.rectangle(img, (0, y), (sum(widths) + 3, y + h - 1), (0, 0, 0), -1)
    x = 2
    for (text, color), w in zip(segments, widths):
        cv2.putText(img, text, (x, y + th + 2), font, scale, color, thickness, cv2.LINE_AA)
        x += w
    return h


def draw_hud(img: np.ndarray, lines: Sequence[Sequence[Segment] | Segment], bottom: Optional[str] = None) -> list[str]:
    """Status lines top-left (and an optional help line bottom-left), in place, on dark boxes.

    Each line is one (text, colour) pair, a list of them drawn side by side, or a list of such lists (the
    first that fits the frame's width is drawn, else the last one cut short); text is sized by
    ``text_style`` (legible from 160x120 to 1080p) and a line too wide for the frame loses its last
    segments; the help line is drawn only where it fits whole. Returns the lines as drawn (text only).
    """
    scale, thickness = text_style(img.shape)
    width = img.shape[1]
    drawn = []
    y = 0
    for line in lines:
        options = [[line]] if isinstance(line, tuple) else [list(line)]
        if line and isinstance(line, list) and isinstance(line[0], list):  # alternatives, longest first
            options = line
        segments = _fit_segments([seg for seg in options[-1] if seg[0]], width, scale, thickness)
        for option in options[:-1]:  # the first that fits whole
            option = [seg for seg in option if seg[0]]
            if _fit_segments(option, width, scale, thickness) == option:
                segments = option
                break
        if segments:
            y += _draw_segments(img, segments, y, scale, thickness) + 1
            drawn.append("".join(t for t, _ in segments))
    if bottom and cv2.getTextSize(bottom, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] + 4 <= width:
        (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        _draw_segments(img, [(bottom, (200, 200, 200))], img.shape[0] - th - base - 4, scale, thickness)
        drawn.append(bottom)  # (only whole: a frame too narrow for it leaves it out)
    return drawn


def _k_text(detector: Detector, state: DemoState) -> str:
    if detector.layers:
        return f"k={state.effective_k} {'fine' if state.fine and state.effective_k else 'coarse only'}"
    if detector.pytorch:
        return "no PST layers"
    return f"{detector.k_label()} (export)"


def overlay_segments(info: OverlayInfo, alpha: float, fine: bool) -> list[list[Segment]]:
    """The HUD line that explains the overlay: each layer's fine patches in its colour (coarse only: none,
    and it says so), then the heat map's layer and opacity. Two forms: full, and short for narrow frames."""
    white = (255, 255, 255)
    pct = f"{round(alpha * 100)}%"
    heat = f" | heat L{info.heat_layer} {pct}" if info.heat_layer is not None else " | heat off"
    short_heat = f" {pct}" if info.heat_layer is not None else " heat off"
    if not fine:
        return [[("k=0: no fine patches", white), (heat, white)], [("no fine patches", white), (short_heat, white)]]
    counts = [(f" L{layer}:{n}", info.colors.get(layer, white)) for layer, n in info.patches.items()]
    counts[0] = (counts[0][0].lstrip(), counts[0][1]) if counts else ("", white)
    return [[("patches ", white), *counts, (heat, white)], [*counts, (short_heat, white)]]


def process_frame(
    detector: Detector,
    frame: np.ndarray,
    state: DemoState,
    index: int = 0,
    name: str = "",
    fps: Optional[float] = None,
    message: str = "",
    help_line: bool = False,
    layers: Optional[Sequence[str]] = None,
) -> FrameOutput:
    """Run one frame at ``state``'s k (and overlay), and draw boxes, labels, k, FPS and the overlay.

    ``layers``: the PST layers whose attention the overlay shows (None: all). Returns a FrameOutput
    whose image has the input's size. Pure apart from setting k on the model.
    """
    overlay = state.overlay and state.overlay_available and detector.recorder is not None
    if detector.k_adjustable and detector.k != state.effective_k:
        detector.set_k(state.effective_k)
    det = detector(frame, capture=overlay)
    img = frame.copy()
    info = None
    if overlay and det.selections:
        img, info = draw_overlay(img, det.selections, alpha=state.overlay_alpha, layers=layers)
    draw_detections(img, det.boxes, det.classes, det.confs, detector.names)
    k_used = state.effective_k if detector.layers else detector.k_label()
    status: list[Segment] = [(_k_text(detector, state), (0, 255, 255))]
    if fps:
        status.append((f" | {fps:.1f} FPS", (255, 255, 255)))
    status.append((f" | {det.latency_ms:.0f} ms", (255, 255, 255)))
    lines: list = [status]
    if info is not None:
        lines.append(overlay_segments(info, state.overlay_alpha, state.effective_k > 0))
    if message:
        lines.append((message, (0, 200, 255)))
    hud = draw_hud(img, lines, KEYS_HELP if help_line else None)
    return FrameOutput(
        index, name, img, det.boxes, det.classes, det.confs, det.latency_ms, k_used, det.selections, hud=hud
    )


def _failed_frame(frame: np.ndarray, index: int, name: str, error: str) -> FrameOutput:
    img = frame.copy()
    hud = draw_hud(img, [(f"processing failed: {error}"[:120], (0, 0, 255))])
    empty = np.zeros((0, 4), np.float32)
    return FrameOutput(
        index, name, img, empty, np.zeros(0, np.int64), np.zeros(0, np.float32), None, None, [], error, hud
    )


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
            writer = open_video(path, fourcc, fps, self.size)
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
            out.append(
                f"  {s.label:<28} {s.frames:>6} frames  latency mean {s.mean_ms:7.1f} ms  "
                f"p90 {s.p90_ms:7.1f} ms  {s.fps:6.1f} FPS"
            )
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


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------
_NO_MORE_KEYS = object()


def initial_state(
    detector: Detector, topk: Optional[int] = None, overlay: bool = False, overlay_alpha: float = OVERLAY_ALPHA
) -> DemoState:
    """The state a run starts in for this model (what the keys may change, and why not)."""
    from pst_yolo.nn.topk import DEFAULT_TOPK

    if detector.layers:
        current = detector.k if isinstance(detector.k, int) else max(detector.k.values())
        k = current if current > 0 else (topk if topk else DEFAULT_TOPK)
        return DemoState(k=k, fine=current > 0, overlay=overlay, overlay_alpha=overlay_alpha)
    if detector.pytorch:
        reason = f"{detector.model_name} has no PST layers: no k to change, no attention to show"
        return DemoState(
            k=0, fine=False, k_adjustable=False, overlay_available=False, fixed_reason=reason, overlay_reason=reason
        )
    export_k = detector.k if isinstance(detector.k, int) else 0
    return DemoState(
        k=export_k,
        fine=export_k > 0,
        k_adjustable=False,
        overlay_available=False,
        fixed_reason=f"k is fixed at export ({detector.k_label()}) in {detector.model_name}; f/+/- ignored",
        overlay_reason=f"attention overlay needs the PyTorch model (forward hooks); not available for {detector.model_name}",
    )


class DemoLoop:
    """One demo run, one frame per step: ``read`` the next frame, ``render`` it at the current k,
    ``emit`` it (window, files, callback), then ``step`` the state with the next key.

    Built by ``run_demo``; ``run()`` returns the summary. Everything the loop remembers between
    frames is an attribute here.
    """

    def __init__(
        self,
        src,
        detector: Detector,
        *,
        display: bool,
        save: bool,
        state: DemoState,
        project: str | Path,
        name: str,
        save_dir: Optional[str | Path],
        max_frames: Optional[int],
        delay: int,
        realtime: bool,
        keys: Optional[Iterable[Optional[int]]],
        on_frame: Optional[Callable[[FrameOutput], None]],
        notes: list[str],
        verbose: bool,
    ) -> None:
        self.src, self.detector, self.display, self.save, self.state = src, detector, display, save, state
        self.project, self.name, self.save_dir = project, name, save_dir
        self.max_frames, self.delay, self.on_frame, self.verbose = max_frames, delay, on_frame, verbose
        self.notes = notes
        # a video file plays at its own frame rate (realtime); cameras and streams set their own pace
        self.pace_fps = src.fps if (realtime and src.kind == "video") else None
        if realtime and src.kind == "video" and not src.fps:
            self.notes.append("the video does not state its frame rate: played as fast as it is processed")
        self.next_due: Optional[float] = None
        self.late = 0  # frames that came later than the clip's frame rate allows
        self.summary = DemoSummary(source=src.description, kind=src.kind, model=detector.model_name)
        self.keys: Optional[Iterator] = iter(keys) if keys is not None else None
        self.sink: Optional[VideoSink] = None
        self.latencies: dict = {}
        self.error_counts: dict = {}
        self.current: Optional[FrameOutput] = None  # the frame on screen
        self.in_hand: Optional[Frame] = None  # the frame read last (re-rendered while paused)
        self.rendered: Optional[tuple] = None  # (k, overlay) the current frame was drawn with
        self.hold = False  # image source ended in a window: keep the last image until q
        self.fps_ema: Optional[float] = None
        self.t_prev: Optional[float] = None
        self.message, self.message_until = "", 0.0
        self._run_dir: Optional[Path] = None

    # -- helpers ----------------------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        say(f"pst-yolo demo: {msg}", self.verbose)

    def run_dir(self) -> Path:
        """The output folder, made on first use."""
        if self._run_dir is None:
            self._run_dir = self.summary.run_dir = run_folder(self.project, self.name, self.save_dir, "demo")
        return self._run_dir

    def _show_message(self, text: str, seconds: float) -> None:
        self.message, self.message_until = text, time.perf_counter() + seconds

    def _setting(self) -> tuple:
        """What a paused frame is redrawn for when it changes."""
        return (self.state.effective_k, self.state.overlay, self.state.overlay_alpha)

    def _pace(self) -> None:
        """Real-time playback of a video file: wait until the next frame is due at the clip's frame rate.
        Falling behind (slow model) restarts the schedule instead of rushing to catch up."""
        if not self.pace_fps:
            return
        interval = 1.0 / self.pace_fps
        now = time.perf_counter()
        if self.next_due is not None and now < self.next_due:
            time.sleep(self.next_due - now)
            now = self.next_due
        elif self.next_due is not None and now - self.next_due > interval:
            self.late += 1
        self.next_due = (
            self.next_due if self.next_due is not None and now - self.next_due <= interval else now
        ) + interval

    # -- the four steps ---------------------------------------------------------------------------
    def read(self) -> Optional[Frame]:
        """The next frame (None: the run is over). Updates the FPS estimate and, once the map sizes are
        known, the largest usable k."""
        if self.max_frames is not None and self.summary.frames_read >= self.max_frames:
            return None
        self._pace()
        fr = self.src.read()
        if fr is None:
            return None
        self.summary.frames_read += 1
        self.in_hand = fr
        now = time.perf_counter()
        if self.t_prev is not None and now > self.t_prev:
            inst = 1.0 / (now - self.t_prev)
            self.fps_ema = inst if self.fps_ema is None else 0.9 * self.fps_ema + 0.1 * inst
        self.t_prev = now
        recorder = self.detector.recorder
        if self.summary.frames_read == 1 or (recorder is not None and self.state.k_max is None):
            # untimed pass at the source's frame size: warms up, and tells the coarse-map sizes
            with contextlib.suppress(Exception):
                self.detector(fr.image)
        if recorder is not None:  # hooks record map sizes even with the overlay off
            k_max = recorder.min_coarse_tokens()
            if k_max and k_max != self.state.k_max:
                self.state = replace(self.state, k_max=k_max)
                if self.state.k > k_max:  # the layers would clamp it anyway: say so, and count the k really used
                    self.state = replace(self.state, k=k_max)
                    note = f"k clamped to {k_max}: the smallest PST coarse map at this input size has {k_max} tokens"
                    self.notes.append(note)
                    self._say(note)
        return fr

    def render(self, fr: Frame, count: bool) -> FrameOutput:
        """Detect and draw ``fr`` at the current state; ``count``: a new frame (in the stats) or a re-run."""
        msg = self.message if time.perf_counter() < self.message_until else ""
        try:
            out = process_frame(
                self.detector, fr.image, self.state, fr.index, fr.name, self.fps_ema, msg, help_line=self.display
            )
        except Exception as e:
            err = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            self.error_counts[err] = self.error_counts.get(err, 0) + 1
            if self.error_counts[err] <= 3:
                self._say(f"frame {fr.index} ({fr.name}) failed: {err}")
            out = _failed_frame(fr.image, fr.index, fr.name, err)
        self.rendered = self._setting()
        if not count:
            self.summary.rerendered += 1
        elif out.error is None:
            self.summary.frames_processed += 1
            self.latencies.setdefault(out.k, []).append(out.latency_ms)
        else:
            self.summary.frames_failed += 1
        return out

    def emit(self, out: FrameOutput, fr: Frame) -> None:
        """Write a new frame's output (headless or save=True) and hand it to ``on_frame``."""
        if self.save:
            if self.src.kind == "images":
                suffix = Path(fr.name).suffix.lower()
                out_name = fr.name if suffix in WRITABLE_IMAGE_SUFFIXES else f"{Path(fr.name).stem}.png"
                write_image(self.run_dir() / out_name, out.image)
                self.summary.output = self.run_dir()
            else:
                if self.sink is None:
                    h, w = out.image.shape[:2]
                    self.sink = VideoSink(self.run_dir() / self.src.stem, self.src.fps or 30.0, (w, h))
                    self.summary.output = self.sink.path
                self.sink.write(out.image)
            self.summary.frames_written += 1
        if self.on_frame is not None:
            self.on_frame(out)

    def next_key(self) -> Optional[int]:
        """Scripted keys first, then the keyboard (window) or nothing (headless). -2: window closed."""
        key = None
        if self.keys is not None:
            key = next(self.keys, _NO_MORE_KEYS)
            if key is _NO_MORE_KEYS:
                key, self.keys = None, None
        if self.keys is None and key is None and self.display:
            paused = self.state.paused or self.hold
            wait = 40 if paused else (max(int(self.delay), 1) if self.src.kind == "images" else 1)
            key = cv2.waitKey(wait)
            if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return -2  # window closed with the mouse
        return key

    def step(self, key: Optional[int]) -> bool:
        """Apply a key to the state (saving a frame if asked); False when the run should end."""
        if key == -2:
            return False
        new = handle_key(self.state, key)
        if new.save_requested:
            if self.current is not None:
                path = self.run_dir() / f"frame_{self.current.index:06d}.png"
                write_image(path, self.current.image)
                self.summary.saved_frames.append(path)
                new = replace(new, save_requested=False, message=f"saved {path}")
            else:
                new = replace(new, save_requested=False, message="nothing to save yet")
        if new is not self.state and new.message:
            self._say(new.message)
            self._show_message(new.message, 2.0)
        self.state = new
        if self.state.paused:
            self.next_due = None  # playback restarts from the frame after the pause
        if self.state.quit:
            return False
        if self.state.paused and not self.display and self.keys is None:
            self._say("paused with no window and no keys left: resuming")
            self.state = replace(self.state, paused=False)
        return True

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> DemoSummary:
        t_start = time.perf_counter()
        try:
            if self.display:
                cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
            while True:
                if not self.state.paused and not self.hold:
                    fr = self.read()
                    if fr is None:
                        if (
                            self.display
                            and self.src.kind == "images"
                            and self.current is not None
                            and (self.max_frames is None or self.summary.frames_read < self.max_frames)
                        ):
                            self.hold = True  # keep the last image on screen until q
                            self._show_message("end of images: q quits", 1e9)
                            self._say("end of images; q or Esc closes the window")
                            continue
                        break
                    self.current = self.render(fr, count=True)
                    self.emit(self.current, fr)
                elif self.in_hand is not None and self.rendered != self._setting():
                    self.current = self.render(self.in_hand, count=False)  # paused: same frame, new setting
                if self.display and self.current is not None:
                    cv2.imshow(WINDOW, self.current.image)
                if not self.step(self.next_key()):
                    break
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self._say("interrupted")
        finally:
            self.close()
        return self.finish(time.perf_counter() - t_start)

    def close(self) -> None:
        self.src.close()
        if self.sink is not None:
            self.sink.close()
        self.detector.close()
        if self.display:
            try:
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            except cv2.error:
                pass

    def finish(self, elapsed: float) -> DemoSummary:
        """Fill in the summary's statistics and notes, print it, return it."""
        summary, detector = self.summary, self.detector
        if summary.frames_processed and elapsed > 0:
            summary.wall_fps = summary.frames_processed / elapsed

        def label(k: Any) -> str:
            if detector.layers:
                return f"k={k} ({'fine' if k else 'coarse only'})"
            if detector.pytorch:
                return "no PST layers"
            return f"{detector.k_label()} (fixed at export)"

        summary.per_k = _k_stats(self.latencies, label)
        if self.pace_fps and self.late > max(2, summary.frames_read // 10):
            self.notes.append(
                f"processing could not keep up with the clip's {self.pace_fps:g} FPS on {self.late} frames: "
                "played slower than real time"
            )
        if isinstance(self.src, ImageSource):
            summary.unreadable = list(self.src.unreadable)
        summary.notes = [*self.notes, *detector.notes, *self.src.notes]
        summary.notes += [f"{n}x {err}" for err, n in self.error_counts.items()]
        if summary.frames_read == 0:
            summary.notes.append("no frame could be read from the source")
        say(str(summary), self.verbose)
        return summary


def run_demo(
    source: Any,
    model: Any,
    *,
    show: Optional[bool] = None,
    save: Optional[bool] = None,
    imgsz: Optional[int] = None,
    conf: float = 0.25,
    iou: float = 0.7,
    topk: Optional[int] = None,
    device: str = "cpu",
    max_det: int = 300,
    overlay: bool = False,
    overlay_alpha: float = OVERLAY_ALPHA,
    realtime: Optional[bool] = None,
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
        model: ``.pt``/``.onnx``/``.yaml`` path, an export folder (``*_openvino_model``), or a YOLO object.
        show: open a window (None: if a display is available). Without one the run is headless.
        save: write annotated output to the run folder (None: only when headless).
        topk: k to start with (None: the model's own; PyTorch PST models only).
        overlay: start with the attention overlay on.
        overlay_alpha: opacity of the overlay's heat map, 0 ... 1 (keys ``[``/``]`` change it).
        realtime: play a video file at its own frame rate. None (default): when shown in a window;
            False: as fast as frames are processed (benchmarks, headless conversion); True: always.
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
    if not isinstance(overlay_alpha, (int, float)) or not 0.0 <= float(overlay_alpha) <= 1.0:
        raise DemoError(f"overlay_alpha must be a number from 0 to 1 (heat-map opacity), got {overlay_alpha!r}")
    check_save_dir(save_dir, [source], project, name)  # (the frames must not land on the images they come from)
    src = open_source(
        source, capture_factory=capture_factory, reconnect=reconnect, reconnect_delay=reconnect_delay, verbose=verbose
    )
    try:
        detector = Detector(
            model, imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det, topk=topk, verbose=verbose
        )
    except BaseException:
        src.close()
        raise
    display = display_available() if show is None else bool(show)
    notes: list[str] = []
    if show and not display_available():
        display = False
        msg = "show=True but no usable display here ($DISPLAY unset or unreachable): running headless"
        notes.append(msg)
        say(f"pst-yolo demo: {msg}", verbose)
    state = initial_state(detector, topk, overlay, float(overlay_alpha))
    if not detector.k_adjustable:
        notes.append(state.fixed_reason)
    loop = DemoLoop(
        src,
        detector,
        display=display,
        save=(not display) if save is None else bool(save),
        state=state,
        project=project,
        name=name,
        save_dir=save_dir,
        max_frames=max_frames,
        delay=delay,
        realtime=display if realtime is None else bool(realtime),
        keys=keys,
        on_frame=on_frame,
        notes=notes,
        verbose=verbose,
    )
    return loop.run()
