"""Draw docs/images/pst.png: the data flow of one PST layer (boxes and arrows, no numbers).

python scripts/pst_diagram.py [out=docs/images/pst.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# name -> (x, y, width, height, text, colour); the canvas is 100 x 44 units
BOXES = {
    "fine": (1, 30, 17, 9, "fine map\n(P3, H × W)", "#dbe9f6"),
    "coarse": (1, 5, 17, 9, "coarse map\n(P4, H/2 × W/2)", "#dbe9f6"),
    "q": (25, 30, 11, 9, "queries", "#eeeeee"),
    "kv": (25, 5, 11, 9, "keys,\nvalues", "#eeeeee"),
    "coarse_attn": (43, 17, 17, 10, "coarse attention\n(always on)", "#fde3c8"),
    "select": (43, 31, 17, 9, "top-k coarse tokens\n(mean query score)", "#e4f2dc"),
    "fine_attn": (66, 31, 16, 9, "attention to their\n2×2 fine patches", "#e4f2dc"),
    "gate": (70, 17, 12, 10, "gate\n(blend)", "#f4d6e4"),
    "out": (88, 17, 11, 10, "output\n(H × W)", "#dbe9f6"),
}
ARROWS = [
    ("fine", "q", ""),
    ("coarse", "kv", ""),
    ("q", "coarse_attn", ""),
    ("kv", "coarse_attn", ""),
    ("q", "select", ""),
    ("select", "fine_attn", "k > 0"),
    ("kv", "select", ""),
    ("fine_attn", "gate", ""),
    ("coarse_attn", "gate", ""),
    ("gate", "out", ""),
]


def centre(name: str) -> tuple[float, float]:
    x, y, w, h, _, _ = BOXES[name]
    return x + w / 2, y + h / 2


def draw(out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4.4), dpi=100)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 47)
    ax.axis("off")
    for x, y, w, h, text, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4", fc=colour, ec="#444444", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)
    for a, b, label in ARROWS:
        (x0, y0), (x1, y1) = centre(a), centre(b)
        arrow = FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color="#444444", lw=1)
        arrow.set_patchA(ax.patches[list(BOXES).index(a)])
        arrow.set_patchB(ax.patches[list(BOXES).index(b)])
        ax.add_patch(arrow)
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 1.5, label, ha="center", fontsize=8, color="#2a6b1f")
    # the fine patches come from the fine map, through the same key/value projection
    patches = FancyArrowPatch(
        (9.5, 39.5),
        (74, 40.5),
        arrowstyle="-|>",
        mutation_scale=12,
        color="#2a6b1f",
        lw=1,
        connectionstyle="arc3,rad=-0.12",
    )
    ax.add_patch(patches)
    ax.text(40, 44.5, "2×2 fine patches (same key/value projection)", ha="center", fontsize=8, color="#2a6b1f")
    ax.text(
        50,
        1,
        "training: coarse only (k = 0);  inference: fine branch on the k best coarse tokens (default k = 8)",
        ha="center",
        fontsize=8.5,
        style="italic",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    print(draw(Path(args.get("out", "docs/images/pst.png"))))
