"""What the demo and ``explain`` share: their error type, console messages, output folders, image suffixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

IMAGE_SUFFIXES = {
    ".bmp",
    ".dng",
    ".jpeg",
    ".jpg",
    ".jp2",
    ".mpo",
    ".png",
    ".tif",
    ".tiff",
    ".webp",
    ".pbm",
    ".pgm",
    ".ppm",
}
WRITABLE_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class DemoError(RuntimeError):
    """Bad input or an unusable source/model; the message is one line that says what to fix."""


def say(msg: str, verbose: bool = True) -> None:
    if verbose:
        print(msg, flush=True)


def run_folder(
    project: str | Path, name: str, save_dir: Optional[str | Path], tool: str, sources: Iterable[Any] = ()
) -> Path:
    """``save_dir`` if given (new, empty or an earlier pst-yolo run folder; not an input), else ``project/name``
    numbered like Ultralytics runs (``name2``, ...). The rules are ``pst_yolo.data.writer``'s."""
    from pst_yolo.data.writer import WriterError
    from pst_yolo.data.writer import run_folder as writer_run_folder

    local = [s for s in sources if isinstance(s, (str, Path)) and Path(str(s)).exists()]  # (not webcams, URLs)
    try:
        if save_dir is not None:
            return writer_run_folder(save_dir, tool, numbered=False, sources=local)
        return writer_run_folder(Path(project) / name, tool, numbered=True, sources=local, key="project/name")
    except WriterError as e:
        raise DemoError(str(e)) from None


def check_save_dir(
    save_dir: Optional[str | Path], sources: Iterable[Any] = (), project: str | Path = "runs/pst", name: str = "run"
) -> None:
    """Refuse an unusable ``save_dir`` (or, without one, ``project/name``) before any work starts (the folder
    itself is made on first use)."""
    from pst_yolo.data.writer import WriterError, check_run_folder, resolve_target

    local = [s for s in sources if isinstance(s, (str, Path)) and Path(str(s)).exists()]
    try:
        if save_dir is not None:
            check_run_folder(save_dir, local)
        else:  # a numbered folder may be made there (when saving): no file where a folder goes
            resolve_target(Path(project) / name, "project/name")
    except WriterError as e:
        raise DemoError(str(e)) from None
