#!/usr/bin/env python3
"""Real-time PST detection demo: the same code as ``pst-yolo demo`` (``pst_yolo.viz.demo.run_demo``).

    python scripts/demo.py source=0 model=runs/detect/train/weights/best.pt
    python scripts/demo.py source=clip.mp4 model=best.onnx show=False
    python scripts/demo.py explain image=bus.jpg model=best.pt     # the attention figure (pst-yolo explain)

Keys in the window: f coarse/fine, +/- k, v attention overlay, space pause, s save frame, q/Esc quit.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(REPO))


def main(argv: list[str]) -> int:
    from pst_yolo.cli import main as pst_yolo

    if argv and argv[0] in ("demo", "explain"):
        return pst_yolo(argv)
    return pst_yolo(["demo", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
