"""What the demo and ``explain`` share: their error type, console messages, output folders, image suffixes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

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


def run_folder(project: str | Path, name: str, save_dir: Optional[str | Path]) -> Path:
    """``save_dir`` if given (created), else ``project/name`` numbered like Ultralytics runs (``name2``, ...)."""
    if save_dir is not None:
        path = Path(save_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    from ultralytics.utils.files import increment_path

    return increment_path(Path(project) / name, exist_ok=False, mkdir=True)
