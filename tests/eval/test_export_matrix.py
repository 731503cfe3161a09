"""Every CPU export format whose package is installed here (pst_yolo/eval/export_matrix.py): export
yolo11n-pst at k = 0 and k = 8, run it through Ultralytics' AutoBackend and predict, and compare with
PyTorch. docs/export.md lists the same checks as a table (scripts/export_matrix.py); a format whose
package is missing is skipped with the extra that installs it."""

from __future__ import annotations

import numpy as np
import pytest

from pst_yolo.eval.export_matrix import (
    FORMATS,
    TOLERANCE,
    available,
    boxes_match,
    check_format,
    install_hint,
    parity_model,
    relative_error,
)
from pst_yolo.eval.exported import export
from pst_yolo.integration.export_formats import ENV_EXPORT_FINE, FORMAT_SUPPORT

IMGSZ = 128  # yolo11n-pst: 16 coarse tokens at layer 13 (P5 4x4), 64 at layer 16 (P4 8x8); k = 8 picks among them
FAST = {"torchscript", "onnx", "openvino", "mnn"}  # export + run in a few seconds at 128 px


def _format_params():
    for fmt in FORMATS:
        for k in (0, 8):
            marks = [] if fmt in FAST else [pytest.mark.slow]
            yield pytest.param(fmt, k, marks=marks, id=f"{fmt}-k{k}")


@pytest.mark.parametrize("fmt, k", list(_format_params()))
def test_format_exports_runs_and_matches_pytorch(fmt, k, tmp_path):
    if not available(fmt):
        pytest.skip(install_hint(fmt))
    r = check_format(fmt, k, imgsz=IMGSZ, out_dir=tmp_path, latency=False)
    assert r.exported, r.error
    assert r.metadata_topk == {"13": k, "16": k}, "pst_topk must survive in the export's metadata"
    expected = "off" if k == 0 else FORMAT_SUPPORT[fmt].fine
    assert r.fine_branch == expected
    if not FORMAT_SUPPORT[fmt].runs_here:
        assert not r.ran and r.error is None  # export only (CoreML runs on macOS)
        return
    assert r.ran, r.error
    assert r.parity < TOLERANCE, f"{fmt} k={k}: {r.parity:.2e} of the output scale off PyTorch"
    if k:  # the parity bound is far below what dropping the fine branch would change
        assert r.fine_effect > 1000 * TOLERANCE
    if r.precision == "fp32":
        assert r.predict_match, "YOLO(export).predict boxes differ from PyTorch's"
    assert r.works


@pytest.mark.skipif(not available("ncnn"), reason=install_hint("ncnn"))
@pytest.mark.slow
def test_ncnn_native_fine_branch_would_not_run(tmp_path, monkeypatch):
    """Why NCNN gets the portable formulation: with the default graph PNNX keeps torch.topk/torch.gather
    layers that NCNN does not have (the export 'succeeds', the model cannot run). When a PNNX release
    converts them, this fails and FORMAT_SUPPORT['ncnn'] can become native."""
    monkeypatch.setenv(ENV_EXPORT_FINE, "native")
    path = export(parity_model(k=8), "ncnn", IMGSZ, tmp_path)
    param = (path / "model.ncnn.param").read_text()
    assert "torch.topk" in param and "torch.gather" in param


def test_install_hint_names_the_extra():
    assert install_hint("openvino") == (
        'format=openvino needs openvino: pip install "pst-yolo[openvino]" (versions: constraints/deploy.txt)'
    )
    assert "numpy<=2.3.5" in install_hint("coreml") and '"pst-yolo[coreml]"' in install_hint("coreml")
    assert '"pst-yolo[tensorflow]"' in install_hint("pb")


# ------------------------------------------------------------------------------------------------
# The measures, against slow obvious versions
# ------------------------------------------------------------------------------------------------
def test_relative_error_takes_boxes_and_classes_each_against_their_own_scale():
    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.uniform(0, 128, (1, 4, 21)), rng.uniform(0, 1, (1, 3, 21))], axis=1)
    out = ref.copy()
    out[0, 2, 5] += 0.128  # 1e-3 of the box scale (max 128 at most)
    out[0, 5, 7] += 0.002  # 2e-3 of the class scale (max 1 at most)
    expected = max(
        max(abs(out[0, i, j] - ref[0, i, j]) for i in range(4) for j in range(21)) / np.abs(ref[0, :4]).max(),
        max(abs(out[0, i, j] - ref[0, i, j]) for i in range(4, 7) for j in range(21)) / np.abs(ref[0, 4:]).max(),
    )
    assert relative_error(out, ref) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="differs from PyTorch's"):
        relative_error(out[:, :, :20], ref)


def test_boxes_match_pairs_boxes_of_one_class_regardless_of_order():
    a = np.array([[0, 0, 10, 10, 0.9, 1], [5, 5, 20, 20, 0.8, 2]], dtype=np.float32)
    swapped = a[::-1].copy()
    assert boxes_match(a, swapped)
    moved = a.copy()
    moved[1, 0] += 0.1  # > 0.05 px
    assert not boxes_match(a, moved)
    other_class = a.copy()
    other_class[0, 5] = 3
    assert not boxes_match(a, other_class)
    assert not boxes_match(a, a[:1])
