"""pst-yolo study: the grid, resuming, the report's statistics, the command line, and one real cell."""

from __future__ import annotations

import json
import os
import statistics

import pytest

from pst_yolo.data.synth import SynthSpec
from pst_yolo.eval import study
from pst_yolo.eval.study import Cell, grid, mean_std, report_markdown, run_study, select, study_status


def _fake_record(cell: Cell, ap: dict) -> dict:
    """A cell result as run_cell writes it, with the given AP per k (None: a stock model)."""
    return {
        "cell": {"id": cell.id, "seed": cell.seed},
        "results": [{"k": k, "stats": {"AP": v, "AP50": min(1.0, v + 0.3)}, "params": 1} for k, v in ap.items()],
        "train_seconds": 60.0,
        "seconds": 90.0,
        "epochs": cell.epochs or 8,
        "train_args": {},
        "fine_train": cell.fine_train,
        "curve": [{"epoch": e, "AP": 0.01 * e, "AP50": 0.02 * e} for e in range(1, (cell.epochs or 8) + 1)],
        "machine": "test machine",
        "versions": {},
        "started": "2026-12-03T00:00:00+00:00",
        "run_dir": "-",
        "dataset": "-",
    }


def _write(project, cell_id: str, ap: dict) -> None:
    cell = next(c for c in grid() if c.id == cell_id)
    study._write_json(study.cells_dir(project) / cell.file_name, _fake_record(cell, ap))


# --------------------------------------------------------------------------------------------------
# The grid and selecting cells
# --------------------------------------------------------------------------------------------------
def test_grid_has_what_the_issue_asks_for():
    cells = grid()
    ids = [c.id for c in cells]
    assert len(ids) == len(set(ids)) and len({c.file_name for c in cells}) == len(cells)
    noise = [c for c in cells if c.group == "noise"]
    assert {(c.model, c.seed) for c in noise} == {
        (m, s) for m in ("yolo11n.yaml", "yolo11n-pst.yaml", "yolo12n.yaml", "yolo12n-pst.yaml") for s in (0, 1, 2)
    }
    fine = [c for c in cells if c.group == "fine"]
    assert {c.fine_train for c in fine} == {"2", "0.5"} and {c.seed for c in fine} == {0, 1, 2}
    assert all(c.model == "yolo11n-pst.yaml" and c.epochs is None for c in fine)
    curves = [c for c in cells if c.group == "curves"]
    assert all(c.epochs >= 5 * 8 and dict(c.train_args)["val"] is True for c in curves)
    recipe = [dict(c.train_args)["lr0"] for c in cells if c.group == "recipe"]
    assert sorted(set(recipe)) == [0.001, 0.01]  # with the main job's 0.003: three values
    assert {c.group for c in cells} == set(study.GROUPS)


def test_the_shipped_p4_config_puts_pst_at_p4_only():
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.nn.topk import pst_layers

    for scale in "nsm":
        model = DetectionModel(f"yolo11{scale}-pst-p4.yaml", nc=5, verbose=False)  # by bare name, like stock
        assert {m.i for m in model.model if pst_layers(m)} == {13} and model.yaml["scale"] == scale


def test_study_configs_put_pst_where_they_say():
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.nn.topk import pst_layers

    full = DetectionModel("yolo11n-pst.yaml", nc=5, verbose=False)
    full_at = {m.i for m in full.model if pst_layers(m)}
    assert full_at == {13, 16}
    for name, level in study.STUDY_CONFIGS.items():
        model = DetectionModel(study._study_config(name), nc=5, verbose=False)
        at = {m.i for m in model.model if pst_layers(m)}
        assert at == {"P3": {16}, "P4": {13}, "P3 and P4": {13, 16}}[level], name
        assert len(model.model) == len(full.model)  # same graph, one fusion block swapped
        assert model.yaml["scale"] == "n"


def test_select_by_group_prefix_and_id_in_grid_order():
    assert [c.id for c in select(["fine/last2"])] == ["fine/last2/s0", "fine/last2/s1", "fine/last2/s2"]
    both = select(["curves/yolo11n/s0", "curves/yolo11n-pst/s0", "noise/yolo11n/s2"])
    assert [c.id for c in both] == ["noise/yolo11n/s2", "curves/yolo11n/s0", "curves/yolo11n-pst/s0"]
    assert [c.id for c in select(["curves"])][:2] == ["curves/yolo11n/s0", "curves/yolo11n-pst/s0"]
    assert select(None) == grid()
    with pytest.raises(ValueError, match="no study cell or group 'nois'"):
        select(["nois"])


# --------------------------------------------------------------------------------------------------
# Resuming: finished cells are skipped, an interrupted cell reruns, force reruns
# --------------------------------------------------------------------------------------------------
def test_run_study_skips_finished_cells_and_resumes_after_an_interruption(tmp_path, monkeypatch):
    ran = []

    def fake_run_cell(cell, project, synth=None, device="cpu", verbose=True):
        if cell.id == "noise/yolo12n/s0" and not any(r == "interrupt" for r in ran):
            ran.append("interrupt")
            raise KeyboardInterrupt  # the user stops the study in the middle of this cell
        ran.append(cell.id)
        record = _fake_record(cell, {None: 0.5} if "pst" not in cell.model else {0: 0.4, 8: 0.41})
        study._write_json(study.cells_dir(project) / cell.file_name, record)
        return record

    monkeypatch.setattr(study, "run_cell", fake_run_cell)
    with pytest.raises(KeyboardInterrupt):
        run_study(
            ["noise/yolo11n/s0", "noise/yolo11n-pst/s0", "noise/yolo12n/s0"], project=tmp_path, jobs=1, verbose=False
        )  # in this process: the fake run_cell does not reach worker processes
    assert ran == ["noise/yolo11n/s0", "noise/yolo11n-pst/s0", "interrupt"]
    assert sorted(p.name for p in study.cells_dir(tmp_path).iterdir()) == [
        "noise__yolo11n-pst__s0.json",
        "noise__yolo11n__s0.json",
    ]  # nothing written for the interrupted cell

    out = run_study(
        ["noise/yolo11n/s0", "noise/yolo11n-pst/s0", "noise/yolo12n/s0"], project=tmp_path, jobs=1, verbose=False
    )
    assert out.ran == ["noise/yolo12n/s0"] and out.skipped == ["noise/yolo11n/s0", "noise/yolo11n-pst/s0"]
    assert out.report == tmp_path / "study.md" and out.report.is_file()
    assert (tmp_path / "noise.png").read_bytes()[:4] == b"\x89PNG"

    again = run_study(["noise/yolo11n/s0"], project=tmp_path, force=True, report=False, jobs=1, verbose=False)
    assert again.ran == ["noise/yolo11n/s0"] and again.report is None


def test_a_damaged_cell_file_is_named_not_ignored(tmp_path):
    cell = grid()[0]
    study.cells_dir(tmp_path).mkdir(parents=True)
    (study.cells_dir(tmp_path) / cell.file_name).write_text("{not json")
    with pytest.raises(ValueError, match="delete it to rerun the cell"):
        study.read_cell(tmp_path, cell)


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------
def test_mean_std_is_the_sample_standard_deviation():
    assert mean_std([0.5, 0.6, 0.7]) == f"{0.6:.3f} ± {statistics.stdev([0.5, 0.6, 0.7]):.3f} (n=3)"
    assert mean_std([0.5, 0.6, 0.7]).startswith("0.600 ± 0.100")
    assert mean_std([0.25]) == "0.250 (n=1)" and mean_std([]) == "pending"


def test_report_tables_follow_the_cells(tmp_path):
    stock, pst0, pst8 = [0.60, 0.62, 0.64], [0.50, 0.45, 0.55], [0.51, 0.47, 0.55]
    for s in range(3):
        _write(tmp_path, f"noise/yolo11n/s{s}", {None: stock[s]})
        _write(tmp_path, f"noise/yolo11n-pst/s{s}", {0: pst0[s], 8: pst8[s]})
    _write(tmp_path, "fine/last2/s0", {0: 0.40, 8: 0.46})
    _write(tmp_path, "recipe/yolo11n/lr0.01", {None: 0.70})
    _write(tmp_path, "recipe/yolo11n-pst/lr0.001", {0: 0.30, 8: 0.31})
    md = report_markdown(tmp_path)
    lines = md.splitlines()

    def row(prefix: str) -> str:
        return next(line for line in lines if line.startswith(prefix))

    assert mean_std(stock) in row("| yolo11n | - |")
    assert mean_std(pst0) in row("| yolo11n-pst | 0 |") and "0.500, 0.450, 0.550" in row("| yolo11n-pst | 0 |")
    assert mean_std(pst8) in row("| yolo11n-pst | 8 |")
    assert "pending" in row("| yolo12n | - |")
    gaps = [p - s for p, s in zip(pst0, stock)]
    assert f"{statistics.mean(gaps):+.3f} ± {statistics.stdev(gaps):.3f} (n=3)" in row("| yolo11n-pst − yolo11n |")
    k_gain = [b - a for a, b in zip(pst0, pst8)]
    assert f"{statistics.mean(k_gain):+.3f} ± {statistics.stdev(k_gain):.3f}" in row("| coarse only")
    assert "+0.060 (n=1)" in row("| fine branch on in the last 2") and "-0.040 (n=1)" in row(
        "| fine branch on in the last 2"
    )  # k=8 of the fine-aware seed 0 (0.46) vs the coarse-only seed 0 at k=0 (0.50)
    # recipe: lr0 0.003 is the noise seed-0 cell; each model's best is named
    assert row("| yolo11n | pending | 0.600 | 0.700 |").endswith("| 0.700 at 0.01 |")
    assert row("| yolo11n-pst (k = 0) | 0.300 | 0.500 | pending |").endswith("| 0.500 at 0.003 |")
    assert "best learning rate: pending" in md  # two of the four other-lr cells are missing
    _write(tmp_path, "recipe/yolo11n/lr0.001", {None: 0.55})
    _write(tmp_path, "recipe/yolo11n-pst/lr0.01", {0: 0.52, 8: 0.5})
    assert "PST − stock = -0.180 AP" in report_markdown(tmp_path)  # 0.52 (PST at 0.01) - 0.70 (stock at 0.01)
    assert "| curves/yolo11n/s0 | yolo11n.yaml | 0 | 40 | val=True | pending |" in md
    assert f"from 9 of {len(grid())} cells" in md


def test_report_refuses_a_folder_without_cells(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `pst-yolo study project="):
        study.write_report(tmp_path)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def test_study_command_lists_and_reports(tmp_path, cli, capsys):
    _write(tmp_path, "noise/yolo11n/s1", {None: 0.612})
    assert cli("study", "list", f"project={tmp_path}", "cells=noise/yolo11n") == 0
    out = capsys.readouterr().out
    assert "| noise/yolo11n/s1 | yolo11n.yaml | 1 | 8 | - | done 2026-12-03 | 0.612 |" in out
    assert "| noise/yolo11n/s0 | yolo11n.yaml | 0 | main | - | pending |" in out
    assert cli("study", "report", f"project={tmp_path}", f"out={tmp_path / 'rep'}") == 0
    assert "0.612 (n=1)" in (tmp_path / "rep" / "study.md").read_text()
    cli.error("study", "rerun", match="run, list or report")
    cli.error("study", "cells=nonsense", f"project={tmp_path}", match="no study cell or group 'nonsense'")
    cli.error(
        "study",
        "report",
        "cells=noise",
        f"project={tmp_path}",
        match="cells= would be ignored .a report reads every finished cell",
    )
    cli.error(
        "study",
        "out=x",
        f"project={tmp_path}",
        match="out= would be ignored .a run writes its report into project=; out= is for `pst-yolo study report`",
    )


# --------------------------------------------------------------------------------------------------
# One real cell: trained, scored at k = 0 and 8 with pycocotools, fine-aware, then skipped
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_real_fine_aware_cell_trains_scores_and_is_then_skipped(tmp_path, monkeypatch, capsys):
    tiny = Cell("fine/last2/s0", "fine", "yolo11n-pst.yaml", 0, epochs=1, fine_train="1", train_args=(("batch", 4),))
    monkeypatch.setattr(study, "grid", lambda: [tiny])
    spec = SynthSpec(train=8, val=4, imgsz=64, seed=0)
    out = run_study(project=tmp_path, synth=spec, verbose=True)
    assert out.ran == ["fine/last2/s0"]
    assert "=== fine/last2/s0 done in" in capsys.readouterr().out
    rec = json.loads((study.cells_dir(tmp_path) / tiny.file_name).read_text())
    # the fine branch really trained: its gate (zero at initialisation, unused by coarse-only training) moved
    from ultralytics import YOLO

    weights = YOLO(f"{rec['run_dir']}/yolo11n-pst/weights/last.pt").model.state_dict()
    gates = [v for name, v in weights.items() if "gate_conv1d.weight" in name]
    assert gates and any(g.abs().sum() > 0 for g in gates)
    assert [r["k"] for r in rec["results"]] == [0, 8]
    assert all(0.0 <= r["stats"]["AP"] <= 1.0 for r in rec["results"])
    assert rec["epochs"] == 1 and rec["train_args"]["batch"] == 4
    assert rec["fine_train"] == "fine branch on in the last 1 epoch(s)"
    assert rec["versions"]["torch"] and "CPU threads" in rec["machine"]
    assert str(tmp_path / "data") in rec["dataset"]
    assert run_study(project=tmp_path, synth=spec, verbose=False).ran == []
    assert "| fine/last2/s0 |" in study_status(tmp_path) and "done" in study_status(tmp_path)


@pytest.mark.slow
def test_cells_in_parallel_give_the_results_of_one_after_the_other(tmp_path):
    """Two real grid cells at a tiny size in worker processes, and one after the other here: the same records.
    The upgrade cell starts from the stock cell's weights, so it runs in the second wave."""
    spec = SynthSpec(train=8, val=4, imgsz=64, seed=0)
    ids = ["precisebn/yolo11n/s0", "upgrade/yolo11n/s0"]
    seq = run_study(ids, project=tmp_path / "seq", synth=spec, jobs=1, report=False, verbose=False)
    par = run_study(ids, project=tmp_path / "par", synth=spec, jobs=2, report=False, verbose=True)
    assert seq.ran == par.ran == ids
    assert (tmp_path / "par" / "logs" / "precisebn__yolo11n__s0.log").is_file()
    for cell in (c for c in grid() if c.id in ids):
        a, b = (json.loads((study.cells_dir(tmp_path / p) / cell.file_name).read_text()) for p in ("seq", "par"))
        assert a["results"] == b["results"], cell.id
        assert a.get("results_precise_bn") == b.get("results_precise_bn")
    upgrade = json.loads((study.cells_dir(tmp_path / "par") / "upgrade__yolo11n__s0.json").read_text())
    assert upgrade["transferred"]["matched"] == upgrade["transferred"]["total"]  # stock into stock: everything
    assert upgrade["train_args"]["pretrained"].endswith("precisebn__yolo11n__s0/yolo11n/weights/best.pt")


def test_two_study_processes_share_the_cells(tmp_path, monkeypatch):
    """A cell locked by another live process is left to it; a lock left behind by a dead one is taken over."""
    import subprocess
    import sys

    from pst_yolo.data.writer import target_lock

    ran = []

    def fake_run_cell(cell, project, synth=None, device="cpu", verbose=True):
        lock = study.cells_dir(project) / f".{cell.file_name}.pst-yolo-lock"
        assert f"pid {os.getpid()} " in lock.read_text()  # this process holds the cell
        ran.append(cell.id)
        record = _fake_record(cell, {None: 0.5})
        study._write_json(study.cells_dir(project) / cell.file_name, record)
        return record

    monkeypatch.setattr(study, "run_cell", fake_run_cell)
    busy, stale = grid()[0], grid()[4]  # noise/yolo11n/s0 and noise/yolo11n/s1
    cells = study.cells_dir(tmp_path)
    cells.mkdir(parents=True)
    holder = (
        "import sys, time\nfrom pathlib import Path\nfrom pst_yolo.data.writer import target_lock\n"
        "with target_lock(Path(sys.argv[1]), 'study'):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", holder, str(cells / busy.file_name)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "held"
        (cells / f".{stale.file_name}.pst-yolo-lock").write_text("pid 999999 (pst-yolo study)\n")  # killed holder
        out = run_study([busy.id, stale.id], project=tmp_path, report=False, jobs=1, verbose=False)
        with target_lock(cells / stale.file_name, "test"):  # released afterwards
            pass
    finally:
        other.kill()
    assert out.busy == [busy.id] and out.ran == ran == [stale.id]
    assert study.read_cell(tmp_path, busy) is None
    assert sorted(p.name for p in cells.iterdir()) == [
        f".{busy.file_name}.pst-yolo-lock",  # still the other process's
        stale.file_name,  # done; its lock released
    ]


# --------------------------------------------------------------------------------------------------
# Issue 20: the pre-declared candidates
# --------------------------------------------------------------------------------------------------
def test_grid_declares_every_candidate_with_three_seeds():
    cells = grid()
    by_prefix = lambda p: sorted(c.seed for c in cells if c.id.startswith(p + "/"))  # noqa: E731
    for prefix in (
        "layers/yolo11n-pst-p4",
        "init/yolo11n-pst-identity",
        "init/yolo11n-pst-p4-identity",
        "precisebn/yolo11n",
        "precisebn/yolo11n-pst",
        "upgrade/yolo11n",
        "upgrade/yolo11n-pst",
        "upgrade/yolo11n-pst-p4",
        "curves/yolo11n",
        "curves/yolo11n-pst",
        "curves/yolo11n-pst-p4",
    ):
        assert by_prefix(prefix) == [0, 1, 2], prefix
    ids = [c.id for c in cells]
    for c in cells:
        if c.pretrained:  # starts from a stock model of the same seed, trained earlier in the grid
            base = next(b for b in cells if b.id == c.pretrained)
            assert base.model == "yolo11n.yaml" and base.seed == c.seed and ids.index(base.id) < ids.index(c.id)
    assert all(c.precise_bn == study.PRECISE_BN_IMAGES for c in cells if c.group == "precisebn")


@pytest.mark.parametrize("name, n_layers", [("yolo11n-pst-identity.yaml", 2), ("yolo11n-pst-p4-identity.yaml", 1)])
def test_identity_init_configs_start_as_their_convolutional_path(name, n_layers):
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.nn.pst import PST

    model = DetectionModel(study._study_config(name), nc=5, verbose=False)
    layers = [m for m in model.model if isinstance(m, PST)]
    assert [m.init for m in layers] == ["identity"] * n_layers
    assert all(
        float(b.attn.proj.bn.weight.detach().abs().sum()) == 0 and float(b.mlp[1].bn.weight.detach().abs().sum()) == 0
        for m in layers
        for b in m._blocks()
    )


def _pairs_record(cell_id: str, ap: float, key: str = "results") -> dict:
    cell = next(c for c in grid() if c.id == cell_id)
    rec = _fake_record(cell, {None: ap} if "pst" not in cell_id else {0: ap - 0.001, 8: ap})
    if key != "results":
        rec[key] = rec["results"]
    return rec


def test_verdict_follows_the_shipping_rule():
    assert study.verdict([(0, 0.60, 0.61), (1, 0.62, 0.61), (2, 0.63, 0.61)]).endswith("qualifies")
    assert study.verdict([(0, 0.60, 0.61), (1, 0.60, 0.61), (2, 0.70, 0.61)]).startswith("trails")  # 1 of 3 seeds
    assert study.verdict([(0, 0.62, 0.61), (1, 0.62, 0.61), (2, 0.50, 0.61)]).startswith("trails")  # mean < 0
    assert study.verdict([(0, 0.70, 0.61)]).startswith("pending (1 of 3")


def test_candidates_table_pairs_each_candidate_with_its_control_by_seed():
    recs = {}
    for seed, (stock, p4) in enumerate([(0.61, 0.62), (0.62, 0.60), (0.60, 0.63)]):
        recs[f"noise/yolo11n/s{seed}"] = _pairs_record(f"noise/yolo11n/s{seed}", stock)
        p4_id = "layers/yolo11n-pst-p4/s0" if seed == 0 else f"layers/yolo11n-pst-p4/s{seed}"
        recs[p4_id] = _pairs_record(p4_id, p4)
    a = next(c for c in study.candidates() if c.name == "a")
    assert study.candidate_pairs(recs, a) == [(0, 0.62, 0.61), (1, 0.60, 0.62), (2, 0.63, 0.60)]
    row = next(line for line in study.candidates_markdown(recs) if line.startswith("| a |"))
    assert "+0.007 ± 0.025 (n=3)" in row and "+0.010, -0.020, +0.030" in row and "qualifies" in row
    e = next(c for c in study.candidates() if c.name == "e")
    assert study.candidate_pairs(recs, e) == []  # precise-BN results only, never the plain ones


def test_cells_from_different_machines_are_not_paired():
    """Another CPU changes the bits and so the run as much as another seed: such a "pair" is two draws."""
    recs = {}
    for seed, (stock, p4) in enumerate([(0.61, 0.62), (0.62, 0.60), (0.60, 0.63)]):
        recs[f"noise/yolo11n/s{seed}"] = _pairs_record(f"noise/yolo11n/s{seed}", stock)
        recs[f"layers/yolo11n-pst-p4/s{seed}"] = _pairs_record(f"layers/yolo11n-pst-p4/s{seed}", p4)
    recs["layers/yolo11n-pst-p4/s1"]["machine"] = "another CPU"
    a = next(c for c in study.candidates() if c.name == "a")
    assert study.candidate_pairs(recs, a) == [(0, 0.62, 0.61), (2, 0.63, 0.60)]
    row = next(line for line in study.candidates_markdown(recs) if line.startswith("| a |"))
    assert "pending (2 of 3 seeds)" in row and "seed(s) 1 not paired: candidate and control ran on different" in row
    assert study._paired(recs, "layers/yolo11n-pst-p4", 8, "noise/yolo11n", None) == pytest.approx([0.01, 0.03])


def test_an_upgrade_cell_needs_its_base_run_and_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run it first .*cells=precisebn/yolo11n/s1"):
        study.trained_weights(tmp_path, "precisebn/yolo11n/s1")
    weights = tmp_path / "runs" / "precisebn__yolo11n__s1" / "yolo11n" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert study.trained_weights(tmp_path, "precisebn/yolo11n/s1") == weights


def test_transfer_count_of_stock_weights_into_pst(tmp_path):
    from ultralytics import YOLO

    YOLO("yolo11n.yaml").save(tmp_path / "stock.pt")
    same = study.transfer_count(tmp_path / "stock.pt", "yolo11n.yaml")
    assert same["matched"] == same["total"] and same["pst_tensors"] == 0
    pst = study.transfer_count(tmp_path / "stock.pt", "yolo11n-pst.yaml")
    assert 0 < pst["matched"] < pst["total"] and pst["pst_tensors"] > 0
    assert pst["pst_matched"] < pst["pst_tensors"]  # C3k2's tensors do not fit PST's convolutions
    assert "model.13.cv1.conv.weight" in pst["pst_same_name_other_shape"]


@pytest.mark.slow
def test_gpu_study_script_runs_end_to_end_on_a_tiny_cpu_set(tmp_path):
    """scripts/gpu_study.sh as the GPU run calls it, rehearsed on the CPU at a tiny size: cells the report reads."""
    import subprocess
    import sys

    from helpers import REPO

    project = tmp_path / "gpu"
    cells = "gpu/yolo11n/s0,gpu/yolo11n-pst/s0"
    run = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "gpu_study.sh"),
            "device=cpu",
            "jobs=2",
            "train=8",
            "val=4",
            "synth_imgsz=64",
            f"cells={cells}",
            f"project={project}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "torch" in run.stdout and "2 cell(s) to run" in run.stdout
    for cid in cells.split(","):
        rec = json.loads((study.cells_dir(project) / (cid.replace("/", "__") + ".json")).read_text())
        assert rec["epochs"] == study.GPU_EPOCHS and rec["train_args"]["batch"] == 32
        assert rec["train_args"]["imgsz"] == 64  # the dataset's own size (synth_imgsz=)
    md = (project / "study.md").read_text()
    gpu_section = md.split("## On a GPU")[1].splitlines()
    row = next(line for line in gpu_section if line.startswith("| yolo11n-pst | 8 |"))
    assert "(n=1)" in row and "CPU threads" in row  # PST − stock paired for seed 0, and the machine named
    with pytest.raises(ValueError, match="run them alone"):
        run_study(["gpu/yolo11n/s0", "noise/yolo11n/s0"], project=tmp_path / "mixed", verbose=False)


def test_a_study_without_cells_runs_everything_but_the_gpu_cells(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(study, "run_claimed_cell", lambda cell_id, *a, **k: asked.append(cell_id) or "ran")
    out = run_study(project=tmp_path, jobs=1, report=False, verbose=False)
    assert asked == out.ran == [c.id for c in grid() if c.group != "gpu"]
    assert [c.id for c in select(["gpu"])] == [c.id for c in grid() if c.group == "gpu"] and len(select(["gpu"])) == 9


@pytest.mark.parametrize(
    "model, inits", [("yolo11n-pst.yaml", ["authors", "authors"]), ("yolo11n-pst-identity.yaml", ["identity"] * 2)]
)
def test_cells_keep_the_start_they_were_measured_with(tmp_path, monkeypatch, model, inits):
    """The default start became `identity` after the cells ran: a cell still builds the authors' start unless its
    config names another, so rerunning it reproduces its recorded AP."""
    from ultralytics.nn.tasks import DetectionModel

    import pst_yolo.eval.bench as bench_module
    from pst_yolo.nn.pst import PST

    built = {}

    class Built(Exception):
        pass

    def building_bench(models, **_):
        built["inits"] = [m.init for m in DetectionModel(models[0], nc=5, verbose=False).model if isinstance(m, PST)]
        raise Built

    monkeypatch.delenv("PST_INIT", raising=False)
    monkeypatch.setattr(bench_module, "bench", building_bench)
    cell = Cell("noise/x/s0", "noise", model, 0, epochs=1)
    with pytest.raises(Built):
        study.run_cell(cell, tmp_path, synth=SynthSpec(train=2, val=2, imgsz=64, seed=0), verbose=False)
    assert built["inits"] == inits
    assert "PST_INIT" not in os.environ  # the study's start does not leak into what runs after it
