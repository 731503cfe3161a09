"""``pst-yolo study``: does PST help? A grid of training runs on the embedded set, resumable, with a report.

    from pst_yolo.eval.study import run_study, study_status, write_report
    run_study()                                   # every pending cell, in grid order, then the report
    run_study(cells=["noise"], seeds=None)        # one group (or cell ids such as "noise/yolo11n-pst/s1")
    run_study(cells=["recipe/yolo11n/lr0.01"], force=True)   # rerun one cell
    print(study_status())                         # which cells are done, where they ran, how long they took
    write_report("runs/pst-study", out="docs/accuracy")      # tables (study.md) and plots from the cells

A **cell** is one model trained once with one seed and one recipe, then scored with pycocotools on the
embedded set's val split (PST models at k = 0 and k = 8), exactly as ``pst-yolo bench`` does: each cell is
one ``bench()`` call on the same generated dataset. Its result is one JSON file in ``<project>/cells``,
written when the cell has finished (atomically), with the machine and versions it ran on; a cell whose
file exists is skipped, so an interrupted study resumes where it stopped. The report only reads those
files: the committed ``docs/accuracy/cells`` give ``docs/accuracy/study.md`` without training anything.

The groups (issue 14; the main job's budget is ``pst-yolo bench``'s: 8 epochs, batch 16, AdamW lr 0.003):

- ``noise``: yolo11n, yolo11n-pst, yolo12n, yolo12n-pst (the authors' layout), seeds 0-2, main-job budget;
- ``fine``: yolo11n-pst trained fine-aware (fine branch on in the last 2 of 8 epochs; on for half of the
  batches), seeds 0-2; compared with the coarse-only ``noise`` cells;
- ``layers``: PST at P3 only and at P4 only (``cfg/study``), seed 0;
- ``recipe``: lr0 0.001 and 0.01 for yolo11n and yolo11n-pst, seed 0 (lr0 0.003 is the ``noise`` seed-0 cell);
- ``curves``: yolo11n and yolo11n-pst for 40 epochs (5x the budget) with Ultralytics' validation after every
  epoch, pycocotools at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from pst_yolo.data.synth import SynthSpec

STUDY_TOPK = (0, 8)
# Every cell's PST layers start as the authors' did unless its config names another init: the cells were
# measured before the default became `identity` (candidate c), and a rerun must reproduce them.
STUDY_INIT = "authors"
SEEDS = (0, 1, 2)
CURVE_EPOCHS = 40
DEFAULT_PROJECT = "runs/pst-study"
GROUPS = ("noise", "fine", "layers", "recipe", "curves", "precisebn", "init", "upgrade", "gpu")
GPU_SYNTH = SynthSpec(train=2000, val=200, imgsz=640, seed=0)  # the gpu group's dataset: same generator, larger
GPU_EPOCHS = 10
GPU_TRAIN_ARGS = (("batch", 32), ("workers", 2))
GPU_MODELS = ("yolo11n.yaml", "yolo11n-pst.yaml", "yolo11n-pst-p4.yaml")
PRECISE_BN_IMAGES = 512  # train images the precisebn cells re-estimate BatchNorm statistics on


# --------------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One training run of the study: ``model`` trained with ``seed`` and the main job's recipe plus ``train_args``."""

    id: str  # "<group>/<name>/<variant>", also the file name of its result (with "/" -> "__")
    group: str
    model: str  # a shipped config name (yolo11n-pst.yaml) or a cfg/study config name (yolo11n-pst-p3.yaml)
    seed: int = 0
    epochs: Optional[int] = None  # None: the main job's
    train_args: tuple[tuple[str, Any], ...] = ()  # Ultralytics train() overrides on top of the main job's recipe
    fine_train: Optional[str] = None  # PST fine-aware schedule (bench's fine_train=); None: coarse only
    precise_bn: int = 0  # also score the model with BatchNorm statistics re-estimated on this many train images
    pretrained: Optional[str] = None  # a cell id: start from that cell's trained weights (its run must be here)

    @property
    def slug(self) -> str:
        """The id as one path component: the name of its run folder and (+ .json) of its result."""
        return self.id.replace("/", "__")

    @property
    def file_name(self) -> str:
        return self.slug + ".json"


def _study_config(name: str) -> str:
    """A path Ultralytics builds: cfg/study/yolo11-pst-p3.yaml read as yolo11n-pst-p3.yaml (scale from the name)."""
    from pst_yolo.integration.model_parsing import cfg_dir

    return str(cfg_dir() / "study" / name)


STUDY_CONFIGS = {  # configs in cfg/study (used by path) -> the levels PST is at
    "yolo11n-pst-p3.yaml": "P3",
    "yolo11n-pst-identity.yaml": "P3 and P4",  # init=identity
    "yolo11n-pst-p4-identity.yaml": "P4",  # init=identity
}
# yolo11n-pst-p4.yaml (PST at P4 only) began here and now ships (cfg/yolo11-pst-p4.yaml): cells use its bare name.


def grid() -> list[Cell]:
    """Every cell of the study, in the order they run (the most informative first)."""
    cells: list[Cell] = []
    noise_models = ("yolo11n.yaml", "yolo11n-pst.yaml", "yolo12n.yaml", "yolo12n-pst.yaml")
    for seed in SEEDS:  # seed by seed: a partial study still compares every model
        cells += [Cell(f"noise/{Path(m).stem}/s{seed}", "noise", m, seed) for m in noise_models]
    for seed in SEEDS:
        cells += [
            Cell(f"fine/last2/s{seed}", "fine", "yolo11n-pst.yaml", seed, fine_train="2"),
            Cell(f"fine/share0.5/s{seed}", "fine", "yolo11n-pst.yaml", seed, fine_train="0.5"),
        ]
    cells += [Cell(f"layers/{Path(m).stem}/s0", "layers", m, 0) for m in ("yolo11n-pst-p3.yaml", "yolo11n-pst-p4.yaml")]
    # Issue 20, candidate a: PST at P4 only, the seeds the one-seed lead lacked.
    cells += [Cell(f"layers/yolo11n-pst-p4/s{seed}", "layers", "yolo11n-pst-p4.yaml", seed) for seed in SEEDS[1:]]
    # Issue 20, candidate c: a steadier start, each PST block starting as the identity.
    cells += [Cell(f"init/yolo11n-pst-identity/s{seed}", "init", "yolo11n-pst-identity.yaml", seed) for seed in SEEDS]
    # Issue 20, candidate f (declared after a and c): both at once, PST at P4 only starting as the identity.
    cells += [
        Cell(f"init/yolo11n-pst-p4-identity/s{seed}", "init", "yolo11n-pst-p4-identity.yaml", seed) for seed in SEEDS
    ]
    # Issue 20, candidate e: Precise BatchNorm, stock and PST alike (each cell: as trained, and re-estimated).
    for seed in SEEDS:
        cells += [
            Cell(f"precisebn/{Path(m).stem}/s{seed}", "precisebn", m, seed, precise_bn=PRECISE_BN_IMAGES)
            for m in ("yolo11n.yaml", "yolo11n-pst.yaml")
        ]
    # Issue 20, candidate b: upgrade a trained YOLO11. Start from the stock model trained at the main job's budget
    # (the precisebn/yolo11n cell of the seed: its best.pt is that model) and train 8 more epochs as yolo11n-pst,
    # as PST at P4 only, and as yolo11n again (the fair control: the same 16 epochs in all, stock throughout).
    for seed in SEEDS:
        cells += [
            Cell(f"upgrade/{Path(m).stem}/s{seed}", "upgrade", m, seed, pretrained=f"precisebn/yolo11n/s{seed}")
            for m in ("yolo11n.yaml", "yolo11n-pst.yaml", "yolo11n-pst-p4.yaml")
        ]
    for lr in (0.001, 0.01):
        cells += [
            Cell(f"recipe/{Path(m).stem}/lr{lr}", "recipe", m, 0, train_args=(("lr0", lr),))
            for m in ("yolo11n.yaml", "yolo11n-pst.yaml")
        ]
    cells += [
        Cell(f"curves/{Path(m).stem}/s0", "curves", m, 0, epochs=CURVE_EPOCHS, train_args=(("val", True),))
        for m in ("yolo11n.yaml", "yolo11n-pst.yaml")
    ]
    # GPU cells (scripts/gpu_study.sh): stock, the paper's layout and the best CPU candidate so far, 3 seeds each,
    # at 640 px on a larger set from the same generator (GPU_SYNTH), all nine side by side on one GPU.
    for seed in SEEDS:
        cells += [
            Cell(f"gpu/{Path(m).stem}/s{seed}", "gpu", m, seed, epochs=GPU_EPOCHS, train_args=GPU_TRAIN_ARGS)
            for m in GPU_MODELS
        ]
    # Issue 20, candidate d: the 40-epoch runs with seeds 1 and 2 (seed 0 above), same recipe.
    for seed in SEEDS[1:]:
        cells += [
            Cell(f"curves/{Path(m).stem}/s{seed}", "curves", m, seed, epochs=CURVE_EPOCHS, train_args=(("val", True),))
            for m in ("yolo11n.yaml", "yolo11n-pst.yaml")
        ]
    # ... and the candidate that met the shipping rule at the main job's budget (a: PST at P4 only), seeds 0-2.
    cells += [
        Cell(f"curves/yolo11n-pst-p4/s{seed}", "curves", "yolo11n-pst-p4.yaml", seed, epochs=CURVE_EPOCHS,
             train_args=(("val", True),))
        for seed in SEEDS
    ]  # fmt: skip
    return cells


def select(names: Optional[Iterable[str]] = None) -> list[Cell]:
    """The cells named by group (``noise``), id prefix (``noise/yolo11n-pst``) or id; None: all. Unknown names raise."""
    cells = grid()
    if not names:
        return cells
    chosen: list[Cell] = []
    for name in names:
        name = name.strip().strip("/")
        hits = [c for c in cells if c.id == name or c.id.startswith(name + "/")]
        if not hits:
            raise ValueError(
                f"no study cell or group {name!r}; groups: {', '.join(GROUPS)}; cells: `pst-yolo study list`"
            )
        chosen += [c for c in hits if c not in chosen]
    return [c for c in cells if c in chosen]  # grid order


# --------------------------------------------------------------------------------------------------
# Running cells
# --------------------------------------------------------------------------------------------------
def cells_dir(project: str | Path) -> Path:
    return Path(project) / "cells"


def read_cell(project: str | Path, cell: Cell) -> Optional[dict]:
    """The result file of ``cell``, checked (:func:`cell_problem`), or None if it has none yet. A file that is
    not this cell's result is an error naming it: it is never counted, nor taken as "done"."""
    path = cells_dir(project) / cell.file_name
    if not path.exists() and not path.is_symlink():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a study cell result ({e}); delete it to rerun the cell") from e
    problem = cell_problem(record, cell)
    if problem:
        raise ValueError(f"{path} is not the result of study cell {cell.id}: {problem}; delete it to rerun the cell")
    return record


def _number(value: Any) -> bool:
    """A finite JSON number (not a boolean, a string such as "NaN", or null)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cell_problem(record: Any, cell: Cell) -> str:
    """What is wrong with ``record`` as the result of ``cell`` ("" if nothing): its shape, every number the
    list and the report read, and that the id and seed it records are the ones its file name stands for (a
    file copied under another cell's name would otherwise count twice)."""
    if not isinstance(record, dict):
        return f"it holds a JSON {type(record).__name__}, not an object"
    recorded = record.get("cell")
    if not isinstance(recorded, dict):
        return 'it has no "cell" object (the id and seed it was run with)'
    if recorded.get("id") != cell.id:
        return f"it records cell {recorded.get('id')!r}, not {cell.id!r} (a file copied under another name?)"
    if recorded.get("seed") != cell.seed:
        return f"it records seed {recorded.get('seed')!r}, but the cell's seed is {cell.seed}"
    for key in ("results", "results_precise_bn") if "results_precise_bn" in record else ("results",):
        results = record.get(key)
        if not isinstance(results, list) or not results:
            return f'its "{key}" is not a non-empty list'
        for r in results:
            if not isinstance(r, dict) or not (r.get("k") is None or (isinstance(r["k"], int) and r["k"] >= 0)):
                return f'a "{key}" entry is not an object with a k (null or an integer >= 0): {r!r}'
            stats = r.get("stats")
            if not isinstance(stats, dict) or not all(_number(stats.get(s)) for s in ("AP", "AP50")):
                return f'the {key} at k={r.get("k")} have no finite "AP" and "AP50" numbers: {stats!r}'
    if not all(_number(record.get(key)) for key in ("seconds", "epochs")):
        return '"seconds" and "epochs" must be finite numbers'
    if not all(isinstance(record.get(key), str) for key in ("started", "machine")):
        return '"started" and "machine" must be strings'
    curve = record.get("curve", [])
    if not isinstance(curve, list) or not all(
        isinstance(p, dict) and _number(p.get("epoch")) and _number(p.get("AP")) for p in curve
    ):
        return '"curve" must be a list of {"epoch", "AP"} numbers'
    return ""


def _write_json(path: Path, record: dict) -> None:
    """Whole or not at all: an interrupted write leaves no cell file (the cell then reruns)."""
    from pst_yolo.data.writer import write_json

    write_json(path, record, indent=1)


DATASET_WAIT_S = 1800.0  # how long a study waits for another process building the shared dataset
DATASET_POLL_S = 2.0


def _dataset(
    project: Path, spec: Optional[SynthSpec], verbose: bool, wait_s: Optional[float] = None, poll_s: float = 0.0
) -> Path:
    """The main job's embedded dataset (or ``spec``), generated once into ``<project>/data`` (reused while its
    spec matches). Another study process generating it right now is waited for (at most ``wait_s``, default
    :data:`DATASET_WAIT_S`), so two studies started together share the work instead of one giving up."""
    from pst_yolo.data.coco_map import MAP_FILE, read_map
    from pst_yolo.data.synth import generate
    from pst_yolo.data.writer import TargetBusyError
    from pst_yolo.eval.bench import DETECT

    spec = spec or DETECT.main_synth
    out = project / "data"
    limit = time.monotonic() + (DATASET_WAIT_S if wait_s is None else wait_s)
    said = False
    while True:
        if (out / "data.yaml").is_file() and read_map(out / MAP_FILE).get("spec") == asdict(spec):
            return out / "data.yaml"
        try:
            if verbose and not said:
                print(f"pst-yolo study: generating the main job's dataset into {out}")
            return generate(out, spec)
        except TargetBusyError as e:
            if time.monotonic() >= limit:
                waited = DATASET_WAIT_S if wait_s is None else wait_s
                raise TargetBusyError(
                    f"{e} (waited {waited:.0f} s); run the study again when that process has finished"
                ) from None
            if not said:
                print(f"pst-yolo study: another process is generating {out}; waiting for it", flush=True)
                said = True
            time.sleep(poll_s or DATASET_POLL_S)


def _versions() -> dict[str, str]:
    import numpy
    import torch
    import ultralytics

    from pst_yolo import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "numpy": numpy.__version__,
        "pst_yolo": __version__,
    }


def _curve(results_csv: Path) -> list[dict[str, float]]:
    """Ultralytics' per-epoch validation (``results.csv`` of the training run): epoch, mAP50-95, mAP50."""
    if not results_csv.is_file():
        return []
    rows = []
    with results_csv.open() as f:
        for r in csv.DictReader(f):
            r = {k.strip(): v for k, v in r.items()}
            try:
                rows.append(
                    {
                        "epoch": int(float(r["epoch"])),
                        "AP": float(r["metrics/mAP50-95(B)"]),
                        "AP50": float(r["metrics/mAP50(B)"]),
                    }
                )
            except (KeyError, ValueError):
                continue
    return rows


def run_cell(
    cell: Cell,
    project: str | Path = DEFAULT_PROJECT,
    synth: Optional[SynthSpec] = None,
    device: str = "cpu",
    verbose: bool = True,
) -> dict:
    """Train and score one cell now (whether or not it has a result) and write its result file.

    ``synth``: another generated dataset than the main job's (tests use a tiny one); the report does not
    tell cells of different datasets apart, so keep one dataset per project."""
    from pst_yolo.eval.bench import bench
    from pst_yolo.eval.tables import machine_description, model_label
    from pst_yolo.nn.pst import default_layer_init

    project = Path(project)
    data = _dataset(project, synth, verbose)
    model = _study_config(cell.model) if cell.model in STUDY_CONFIGS else cell.model
    train_args = dict(cell.train_args)
    transfer = None
    if cell.pretrained:
        base = trained_weights(project, cell.pretrained)
        train_args["pretrained"] = str(base)
        transfer = transfer_count(base, model)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with default_layer_init(STUDY_INIT):  # (a cell whose config names its init, e.g. `identity`, keeps it)
        res = bench(
            data=data,
            models=[model],
            topk=list(STUDY_TOPK),
            epochs=cell.epochs,
            seed=cell.seed,
            project=project / "runs",
            name=cell.slug,
            exist_ok=True,
            train_args=train_args,
            fine_train=cell.fine_train,
            precise_bn=cell.precise_bn,
            device=device,
            verbose=verbose,
        )
    from pst_yolo.eval.bench import PRECISE_BN_SUFFIX

    record = {
        "cell": asdict(cell),
        "results": [
            {"k": r.k, "stats": r.stats, "params": r.params}
            for r in res.rows
            if not r.model.endswith(PRECISE_BN_SUFFIX)
        ],
        "train_seconds": res.rows[0].train_seconds,
        "seconds": time.perf_counter() - t0,
        "epochs": res.settings["epochs"],
        "train_args": res.settings["train_args"],
        "fine_train": res.settings["fine_train"],
        "curve": _curve(res.run_dir / model_label(model) / "results.csv"),
        "machine": machine_description(),
        "versions": _versions(),
        "started": started.isoformat(timespec="seconds"),
        "run_dir": str(res.run_dir),
        "dataset": res.settings["dataset"],
    }
    if transfer is not None:
        record["transferred"] = transfer
    if cell.precise_bn:
        record["results_precise_bn"] = [
            {"k": r.k, "stats": r.stats, "params": r.params} for r in res.rows if r.model.endswith(PRECISE_BN_SUFFIX)
        ]
        record["precise_bn_images"] = cell.precise_bn
    _write_json(cells_dir(project) / cell.file_name, record)
    return record


def trained_weights(project: str | Path, cell_id: str) -> Path:
    """The best weights that cell ``cell_id`` trained in ``project`` (its run folder must be there)."""
    from pst_yolo.eval.tables import model_label

    by_id = {c.id: c for c in grid()}
    if cell_id not in by_id:
        raise ValueError(f"no study cell {cell_id!r}")
    base = by_id[cell_id]
    model = _study_config(base.model) if base.model in STUDY_CONFIGS else base.model
    path = Path(project) / "runs" / base.slug / model_label(model) / "weights" / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: this cell starts from the weights cell {cell_id} trains; run it first in the same "
            f"project (`pst-yolo study cells={cell_id} project={project}`)"
        )
    return path


def transfer_count(weights: str | Path, model: str) -> dict[str, Any]:
    """What Ultralytics' ``pretrained=`` transfers from ``weights`` into a fresh ``model``: tensors whose name and
    shape match (its own rule), out of the model's, and the PST layers' tensors that found no match."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.integration.runtime import quiet_ultralytics
    from pst_yolo.nn.pst import PST

    with quiet_ultralytics():
        source = YOLO(str(weights)).model
        theirs = source.float().state_dict()
        net = DetectionModel(model, nc=len(source.names), verbose=False)  # as the trainer builds it: the data's classes
    ours = net.state_dict()
    matched = [k for k, v in ours.items() if k in theirs and theirs[k].shape == v.shape]
    pst_prefixes = tuple(f"model.{i}." for i, m in enumerate(net.model) if isinstance(m, PST))
    same_name_other_shape = [
        k for k, v in ours.items() if k.startswith(pst_prefixes) and k in theirs and theirs[k].shape != v.shape
    ]
    return {
        "matched": len(matched),
        "total": len(ours),
        "pst_tensors": sum(k.startswith(pst_prefixes) for k in ours) if pst_prefixes else 0,
        "pst_matched": sum(k.startswith(pst_prefixes) for k in matched) if pst_prefixes else 0,
        "pst_same_name_other_shape": same_name_other_shape,
    }


@dataclass
class StudyRun:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished before (or by another process meanwhile)
    busy: list[str] = field(default_factory=list)  # being run by another live process
    report: Optional[Path] = None


@contextlib.contextmanager
def _claim(project: Path, cell: Cell) -> Iterator[bool]:
    """Yield True if this process may run ``cell`` now: it holds the cell's lock (``data.writer.target_lock``, a
    ``flock`` the kernel releases when the holder dies, so a killed study leaves no claim behind)."""
    from pst_yolo.data.writer import WriterError, target_lock

    cells_dir(project).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(target_lock(cells_dir(project) / cell.file_name, "study"))
        except WriterError:  # another live process runs this cell
            yield False
            return
        yield True


def run_study(
    cells: Optional[Sequence[str]] = None,
    project: str | Path = DEFAULT_PROJECT,
    force: bool = False,
    report: bool = True,
    synth: Optional[SynthSpec] = None,
    jobs: Optional[int] = None,
    device: str = "cpu",
    verbose: bool = True,
    overwrite: bool = False,
) -> StudyRun:
    """Run the study's pending cells (``cells``: groups, id prefixes or ids; default all) in grid order.

    A cell with a result file is skipped unless ``force``; each result is written as soon as its cell ends,
    so stopping the study (Ctrl-C, a lost session) loses at most the cell in progress. Then the report is
    written (``<project>/study.md``, ``noise.png``, ``curves.png``; report files pst-yolo did not write are
    replaced only with ``overwrite``, checked before any cell runs).

    ``jobs``: cells run at once, each in its own worker process (``eval.parallel``; output in
    ``<project>/logs/<cell>.log``); None: as many as the cores hold at Ultralytics' training thread count; 1: one
    after the other here. A cell gives the same result either way. ``device``: where cells train and are scored
    (``cpu``, ``0``, ...)."""
    from pst_yolo.eval.parallel import default_jobs
    from pst_yolo.integration.runtime import training_threads

    chosen = select(cells)
    if not cells:  # everything but the gpu cells, which need a dataset (and a project) of their own
        chosen = [c for c in chosen if c.group != "gpu"]
    project = Path(project)
    if report:
        check_report_folder(project, overwrite, key="project")
    groups = {c.group for c in chosen}
    if "gpu" in groups and len(groups) > 1:
        raise ValueError(
            "the gpu cells train on their own dataset (640 px): run them alone, in a project of their own "
            "(scripts/gpu_study.sh: cells=gpu project=runs/pst-study-gpu)"
        )
    if synth is None and groups == {"gpu"}:
        synth = GPU_SYNTH
    if synth is not None:  # (every cell trains on it and is scored on its val split)
        from pst_yolo.eval.bench import check_generated_set

        check_generated_set(synth, "val", ["every cell's models"])
    todo = [c for c in chosen if force or read_cell(project, c) is None]
    out = StudyRun(skipped=[c.id for c in chosen if c not in todo])
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1 (1 runs the cells one after the other, in this process)")
    jobs = min(jobs, len(todo)) if jobs is not None else default_jobs(len(todo), threads=training_threads())
    if verbose:
        print(
            f"pst-yolo study: {len(todo)} cell(s) to run, {len(out.skipped)} already done "
            f"(results in {cells_dir(project)}){f'; {jobs} at a time' if jobs > 1 else ''}"
        )
    if jobs > 1 and todo:
        _run_parallel(todo, project, synth, force, device, jobs, out, verbose)
    else:
        spent: list[float] = []
        for i, cell in enumerate(todo, 1):
            if verbose and spent:
                left = statistics.mean(spent) * (len(todo) - i + 1) / 60
                print(f"\n=== at most {left:.0f} min left at {statistics.mean(spent) / 60:.1f} min per cell")
            t0 = time.perf_counter()
            outcome = run_claimed_cell(cell.id, project, synth, force, device, verbose, f"[{i}/{len(todo)}] ")
            if outcome == "ran":
                spent.append(time.perf_counter() - t0)
            _tally(out, cell.id, outcome)
    if report:
        out.report = write_report(project, overwrite=overwrite)
        if verbose:
            print(f"\npst-yolo study: report written to {out.report}")
    return out


def _ap_line(record: dict) -> str:
    """``k=0: AP 0.452, k=8: AP 0.458``: a finished cell's scores, for the progress log."""
    return ", ".join(f"k={r['k']}: AP {r['stats']['AP']:.3f}" for r in record["results"])


def _tally(out: StudyRun, cell_id: str, outcome: str) -> None:
    {"ran": out.ran, "skipped": out.skipped, "busy": out.busy}[outcome].append(cell_id)


def run_claimed_cell(
    cell_id: str,
    project: str | Path,
    synth: Optional[SynthSpec] = None,
    force: bool = False,
    device: str = "cpu",
    verbose: bool = True,
    tag: str = "",
) -> str:
    """Run one cell if no other process runs or has run it: "ran", "skipped" (a result exists) or "busy"."""
    project = Path(project)
    cell = next(c for c in grid() if c.id == cell_id)
    # Looked at again just before the cell: another study process on the same project may have finished
    # it meanwhile, or be running it now (processes share the work; each cell runs once).
    if not force and read_cell(project, cell) is not None:
        return "skipped"
    with _claim(project, cell) as mine:
        if not mine:
            if verbose:
                print(f"\n=== pst-yolo study: {cell.id} is being run by another process; next cell")
            return "busy"
        if verbose:
            print(f"\n=== pst-yolo study {tag}{cell.id}", flush=True)
        t0 = time.perf_counter()
        record = run_cell(cell, project, synth=synth, device=device, verbose=verbose)
    if verbose:
        print(f"=== {cell.id} done in {(time.perf_counter() - t0) / 60:.1f} min: {_ap_line(record)}", flush=True)
    return "ran"


def _run_parallel(
    todo: list[Cell], project: Path, synth, force: bool, device: str, jobs: int, out: StudyRun, verbose: bool
) -> None:
    """The cells in worker processes, ``jobs`` at a time: the dataset and its label cache are made first (the
    workers share them), and cells that start from another cell's weights wait for a later wave."""
    from pst_yolo.eval.bench import DETECT
    from pst_yolo.eval.parallel import Job, describe_epochs, run_jobs
    from pst_yolo.integration.runtime import cache_dataset_labels, training_threads

    data = _dataset(project, synth, verbose)
    cache_dataset_labels(str(data), "detect", (synth or DETECT.main_synth).imgsz)
    ids = {c.id for c in todo}
    waves = [[c for c in todo if c.pretrained not in ids], [c for c in todo if c.pretrained in ids]]
    for wave in waves:
        if not wave:
            continue
        results = run_jobs(
            threads=training_threads(),
            jobs_to_run=[
                Job(
                    c.id,
                    run_claimed_cell,
                    dict(cell_id=c.id, project=project, synth=synth, force=force, device=device),
                    log=project / "logs" / f"{c.slug}.log",
                )
                for c in wave
            ],
            jobs=jobs,
            verbose=verbose,
            describe=describe_epochs,
        )
        for c in wave:
            _tally(out, c.id, results[c.id])
            if verbose and results[c.id] == "ran":
                rec = read_cell(project, c)
                print(f"=== {c.id} done in {rec['seconds'] / 60:.1f} min: {_ap_line(rec)}", flush=True)


def study_status(project: str | Path = DEFAULT_PROJECT, cells: Optional[Sequence[str]] = None) -> str:
    """A markdown table: every selected cell, done or pending, with its AP, minutes and machine."""
    if Path(project).exists() and not Path(project).is_dir():  # (else every cell would be listed as pending)
        raise ValueError(f"project={project} is a file; give the study folder (the one that holds cells/)")
    lines = ["| cell | model | seed | epochs | recipe change | status | AP k=0 (or stock) | AP k=8 | minutes |"]
    lines.append("|---|---|---:|---:|---|---|---:|---:|---:|")
    for c in select(cells):
        rec = read_cell(project, c)
        change = ", ".join(f"{k}={v}" for k, v in c.train_args) or "-"
        if c.fine_train:
            change = (change + ", " if change != "-" else "") + f"fine_train={c.fine_train}"
        epochs = c.epochs or "main"
        if rec is None:
            lines.append(f"| {c.id} | {c.model} | {c.seed} | {epochs} | {change} | pending | | | |")
            continue
        aps = _ap_by_k(rec)
        k0 = aps.get(0, aps.get(None))
        lines.append(
            f"| {c.id} | {c.model} | {c.seed} | {rec['epochs']} | {change} | done {rec['started'][:10]} | "
            f"{_f(k0)} | {_f(aps.get(8))} | {rec['seconds'] / 60:.1f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------
def _ap_by_k(record: dict, stat: str = "AP") -> dict[Optional[int], float]:
    return {r["k"]: float(r["stats"][stat]) for r in record["results"]}


def _f(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.3f}"


def mean_std(values: Sequence[float], signed: bool = False) -> str:
    """``mean ± sample std (n)``; one value: just it, marked n = 1. ``signed``: the mean with its sign (a gap)."""
    if not values:
        return "pending"
    fmt = "+.3f" if signed else ".3f"
    if len(values) == 1:
        return f"{values[0]:{fmt}} (n=1)"
    return f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values):.3f} (n={len(values)})"


def _records(project: Path, ids: Iterable[str]) -> dict[str, dict]:
    by_id = {c.id: c for c in grid()}
    out = {}
    for i in ids:
        rec = read_cell(project, by_id[i])
        if rec is not None:
            out[i] = rec
    return out


def _values(recs: dict[str, dict], prefix: str, k: Optional[int], stat: str = "AP") -> list[float]:
    return [
        _ap_by_k(r, stat)[k] for i, r in sorted(recs.items()) if i.startswith(prefix + "/") and k in _ap_by_k(r, stat)
    ]


def same_machine(a: dict, b: dict) -> bool:
    """Whether two cell records ran on the same kind of machine (CPU, versions): only then is a difference of the
    same seed a paired one. Another CPU changes the bits, and so the run, by as much as another seed does."""
    return a.get("machine") == b.get("machine")


def _paired(recs: dict[str, dict], prefix_a: str, k_a, prefix_b: str, k_b) -> list[float]:
    """Per seed: AP(a) - AP(b), for the seeds both have on the same machine."""
    out = []
    for seed in SEEDS:
        a, b = recs.get(f"{prefix_a}/s{seed}"), recs.get(f"{prefix_b}/s{seed}")
        if a is not None and b is not None and same_machine(a, b):
            out.append(_ap_by_k(a)[k_a] - _ap_by_k(b)[k_b])
    return out


def _gap(values: Sequence[float]) -> str:
    return mean_std(values, signed=True)


def report_markdown(project: str | Path) -> str:
    """The study's tables, from the cell files in ``<project>/cells`` (pending cells say so)."""
    project = Path(project)
    recs = _records(project, [c.id for c in grid()])
    n_done, n_all = len(recs), len(grid())
    lines = [
        "# pst-yolo study: results",
        "",
        f"Generated by `pst-yolo study report` from {n_done} of {n_all} cells (`{cells_dir(project)}`). "
        "COCO AP50-95 by pycocotools on the embedded set's val split (100 images, 160 px); "
        "mean ± sample standard deviation over seeds.",
        "",
        "## Noise: 3 seeds at the main job's budget (8 epochs)",
        "",
        "| model | k | AP | AP50 | AP per seed (0, 1, 2) |",
        "|---|---:|---:|---:|---|",
    ]
    for m, ks in (("yolo11n", [None]), ("yolo11n-pst", [0, 8]), ("yolo12n", [None]), ("yolo12n-pst", [0, 8])):
        for k in ks:
            aps = _values(recs, f"noise/{m}", k)
            seeds = ", ".join(f"{v:.3f}" for v in aps) or "pending"
            lines.append(
                f"| {m} | {'-' if k is None else k} | {mean_std(aps)} | "
                f"{mean_std(_values(recs, f'noise/{m}', k, 'AP50'))} | {seeds} |"
            )
    lines += [
        "",
        "PST minus its stock twin, paired by seed (AP):",
        "",
        "| pair | k = 0 | k = 8 |",
        "|---|---:|---:|",
    ]
    for pst, stock in (("yolo11n-pst", "yolo11n"), ("yolo12n-pst", "yolo12n")):
        lines.append(
            f"| {pst} − {stock} | {_gap(_paired(recs, f'noise/{pst}', 0, f'noise/{stock}', None))} | "
            f"{_gap(_paired(recs, f'noise/{pst}', 8, f'noise/{stock}', None))} |"
        )

    lines += [
        "",
        "## The fine branch: switched on at inference, and fine-aware training",
        "",
        "yolo11n-pst, 3 seeds, main-job budget. k = 8 − k = 0 is paired within each trained model.",
        "",
        "| training | AP k = 0 | AP k = 8 | k = 8 − k = 0 | k = 8 vs coarse-only training at k = 0 |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, prefix in (
        ("coarse only (the paper's recipe; `noise` cells)", "noise/yolo11n-pst"),
        ("fine branch on in the last 2 of 8 epochs (`fine_train=2`)", "fine/last2"),
        ("fine branch on for half of the batches (`fine_train=0.5`)", "fine/share0.5"),
    ):
        lines.append(
            f"| {label} | {mean_std(_values(recs, prefix, 0))} | {mean_std(_values(recs, prefix, 8))} | "
            f"{_gap(_paired(recs, prefix, 8, prefix, 0))} | "
            f"{_gap(_paired(recs, prefix, 8, 'noise/yolo11n-pst', 0))} |"
        )
    lines.append(
        f"| yolo12n-pst, coarse only (`noise` cells) | {mean_std(_values(recs, 'noise/yolo12n-pst', 0))} | "
        f"{mean_std(_values(recs, 'noise/yolo12n-pst', 8))} | "
        f"{_gap(_paired(recs, 'noise/yolo12n-pst', 8, 'noise/yolo12n-pst', 0))} | |"
    )

    lines += [
        "",
        "## Where the AP goes: PST at one level (seed 0; the seed-0 `noise` cells for comparison)",
        "",
        "| config | PST at | AP k = 0 (stock: -) | AP k = 8 | seed-0 AP − yolo11n seed 0 |",
        "|---|---|---:|---:|---:|",
    ]
    stock0 = recs.get("noise/yolo11n/s0")
    s0 = _ap_by_k(stock0)[None] if stock0 else None
    for label, where, cid in (
        ("yolo11n", "-", "noise/yolo11n/s0"),
        ("yolo11n-pst-p3", "P3 (layer 16)", "layers/yolo11n-pst-p3/s0"),
        ("yolo11n-pst-p4", "P4 (layer 13)", "layers/yolo11n-pst-p4/s0"),
        ("yolo11n-pst", "P3 and P4", "noise/yolo11n-pst/s0"),
    ):
        rec = recs.get(cid)
        if rec is None:
            lines.append(f"| {label} | {where} | pending | | |")
            continue
        aps = _ap_by_k(rec)
        first = aps.get(0, aps.get(None))
        gap = "" if s0 is None or label == "yolo11n" else f"{first - s0:+.3f}"
        lines.append(f"| {label} | {where} | {first:.3f} | {_f(aps.get(8))} | {gap} |")

    lines += [
        "",
        "## Recipe: learning rate (seed 0, main-job budget; AdamW, 1 warm-up epoch)",
        "",
        "| model | lr0 0.001 | lr0 0.003 (the main job) | lr0 0.01 | best |",
        "|---|---:|---:|---:|---:|",
    ]
    best: dict[str, Optional[float]] = {}
    complete = True
    for m, k in (("yolo11n", None), ("yolo11n-pst", 0)):
        cols = {
            0.001: recs.get(f"recipe/{m}/lr0.001"),
            0.003: recs.get(f"noise/{m}/s0"),
            0.01: recs.get(f"recipe/{m}/lr0.01"),
        }
        aps = {lr: _ap_by_k(r)[k] for lr, r in cols.items() if r is not None}
        complete = complete and len(aps) == len(cols)
        best[m] = max(aps.values()) if aps else None
        top = max(aps, key=aps.get) if aps else None
        cells = " | ".join(_f(aps.get(lr)) or "pending" for lr in cols)
        lines.append(
            f"| {m}{' (k = 0)' if k == 0 else ''} | {cells} | {'' if top is None else f'{aps[top]:.3f} at {top}'} |"
        )
    if complete:
        lines += ["", f"Each at its best learning rate: PST − stock = {best['yolo11n-pst'] - best['yolo11n']:+.3f} AP."]
    else:
        lines += ["", "Each at its best learning rate: pending (every learning rate of both models is needed)."]

    lines += [
        "",
        f"## Learning curves: {CURVE_EPOCHS} epochs (5× the main job), seed 0",
        "",
        "Ultralytics' validation mAP50-95 after each epoch (its own evaluator; validation runs in eval mode, so "
        "PST at its inference k, 8, while training stays coarse), and pycocotools AP of the best checkpoint at "
        "the end.",
        "",
    ]
    marks = (1, 2, 4, 8, 16, 24, 32, 40)
    lines += [
        "| model | " + " | ".join(f"epoch {e}" for e in marks) + " | pycocotools k = 0 (stock: -) | k = 8 |",
        "|---|" + "---:|" * (len(marks) + 2),
    ]
    for m in ("yolo11n", "yolo11n-pst"):
        rec = recs.get(f"curves/{m}/s0")
        if rec is None:
            lines.append(f"| {m} | " + " | ".join("" for _ in marks) + " | pending | |")
            continue
        by_epoch = {p["epoch"]: p["AP"] for p in rec["curve"]}
        aps = _ap_by_k(rec)
        lines.append(
            f"| {m} | "
            + " | ".join(_f(by_epoch.get(e)) for e in marks)
            + f" | {_f(aps.get(0, aps.get(None)))} | {_f(aps.get(8))} |"
        )

    lines += candidates_markdown(recs)
    lines += gpu_markdown(recs)

    machines = sorted({r["machine"] for r in recs.values()})
    lines += ["", "## Where the cells ran", ""]
    lines += [f"- {m}: {sum(r['machine'] == m for r in recs.values())} cell(s)" for m in machines] or ["- (none yet)"]
    minutes = sum(r["seconds"] for r in recs.values()) / 60
    lines += ["", f"Total compute of the finished cells: {minutes:.0f} min.", "", "## Cells", "", study_status(project)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Issue 20: where does PST pay? Pre-declared candidates, each paired by seed with its stock control
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A setup paired by seed with a control: (cell prefix, k, results key) for each side."""

    name: str
    setup: str
    pst: tuple[str, Optional[int], str]
    control: tuple[str, Optional[int], str]


# Where a candidate qualifies to ship (issue 20): mean paired difference >= 0 and at least 2 of 3 seeds >= stock.
SHIP_MIN_SEEDS = 2


def candidates() -> list[Candidate]:
    r, pbn = "results", "results_precise_bn"
    return [
        Candidate("paper", "yolo11n-pst, coarse-only training (the paper's recipe), k = 8",
                  ("noise/yolo11n-pst", 8, r), ("noise/yolo11n", None, r)),
        Candidate("a", "PST at P4 only (yolo11n-pst-p4.yaml), k = 8",
                  ("layers/yolo11n-pst-p4", 8, r), ("noise/yolo11n", None, r)),
        Candidate("b", "upgrade: stock 8 epochs, then 8 more as yolo11n-pst, k = 8 (control: 8 more as yolo11n)",
                  ("upgrade/yolo11n-pst", 8, r), ("upgrade/yolo11n", None, r)),
        Candidate("b-p4", "upgrade: stock 8 epochs, then 8 more as PST at P4 only, k = 8 (control as b)",
                  ("upgrade/yolo11n-pst-p4", 8, r), ("upgrade/yolo11n", None, r)),
        Candidate("c", "yolo11n-pst with init=identity (each block starts as the identity), k = 8",
                  ("init/yolo11n-pst-identity", 8, r), ("noise/yolo11n", None, r)),
        Candidate("d", f"{CURVE_EPOCHS} epochs, yolo11n-pst k = 8 vs yolo11n",
                  ("curves/yolo11n-pst", 8, r), ("curves/yolo11n", None, r)),
        Candidate("d-p4", f"{CURVE_EPOCHS} epochs, PST at P4 only k = 8 vs yolo11n",
                  ("curves/yolo11n-pst-p4", 8, r), ("curves/yolo11n", None, r)),
        Candidate("e", "Precise BatchNorm on both (512 train images), yolo11n-pst k = 8 vs yolo11n",
                  ("precisebn/yolo11n-pst", 8, pbn), ("precisebn/yolo11n", None, pbn)),
        Candidate("f", "PST at P4 only with init=identity (a + c), k = 8",
                  ("init/yolo11n-pst-p4-identity", 8, r), ("noise/yolo11n", None, r)),
    ]  # fmt: skip


def _seed_ap(recs: dict[str, dict], prefix: str, seed: int, k: Optional[int], key: str) -> Optional[float]:
    """AP of ``<prefix>/s<seed>`` at ``k`` from its ``key`` results (the P4 seed 0 is the ``layers`` cell)."""
    rec = recs.get(f"{prefix}/s{seed}")
    if rec is None or key not in rec:
        return None
    return {row["k"]: float(row["stats"]["AP"]) for row in rec[key]}.get(k)


def candidate_pairs(recs: dict[str, dict], cand: Candidate) -> list[tuple[int, float, float]]:
    """(seed, candidate AP, control AP) for every seed both sides have on the same machine."""
    out = []
    for seed in SEEDS:
        a, b = _seed_ap(recs, *_at(cand.pst, seed)), _seed_ap(recs, *_at(cand.control, seed))
        if a is not None and b is not None and not _cross_machine(recs, cand, seed):
            out.append((seed, a, b))
    return out


def _cross_machine(recs: dict[str, dict], cand: Candidate, seed: int) -> bool:
    """Both sides of this seed exist but ran on different machines (so they are not a pair)."""
    a, b = recs.get(f"{cand.pst[0]}/s{seed}"), recs.get(f"{cand.control[0]}/s{seed}")
    return a is not None and b is not None and not same_machine(a, b)


def _at(side: tuple[str, Optional[int], str], seed: int) -> tuple[str, int, Optional[int], str]:
    prefix, k, key = side
    return prefix, seed, k, key


def verdict(pairs: Sequence[tuple[int, float, float]]) -> str:
    """The shipping rule, applied to 3 seeds: qualifies, or trails / ties, or pending."""
    if len(pairs) < len(SEEDS):
        return f"pending ({len(pairs)} of {len(SEEDS)} seeds)"
    gaps = [a - b for _, a, b in pairs]
    at_least = sum(g >= 0 for g in gaps)
    if statistics.mean(gaps) >= 0 and at_least >= SHIP_MIN_SEEDS:
        return f"matches stock ({at_least}/3 seeds ≥ stock): qualifies"
    return f"trails stock ({at_least}/3 seeds ≥ stock)"


def candidates_markdown(recs: dict[str, dict]) -> list[str]:
    lines = [
        "",
        "## Where does PST pay? The pre-declared candidates (issue 20)",
        "",
        "Each candidate minus its control, paired by seed on the same machine (AP, pycocotools, the main job's "
        "data). A candidate "
        f"qualifies to ship if the mean difference is ≥ 0 and at least {SHIP_MIN_SEEDS} of 3 seeds are ≥ the "
        "control's same seed.",
        "",
        "| | setup | candidate AP | control AP | candidate − control | per seed (0, 1, 2) | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for cand in candidates():
        pairs = candidate_pairs(recs, cand)
        gaps = [a - b for _, a, b in pairs]
        apart = [seed for seed in SEEDS if _cross_machine(recs, cand, seed)]
        note = (
            f"; seed(s) {', '.join(map(str, apart))} not paired: candidate and control ran on different machines"
            if apart
            else ""
        )
        lines.append(
            f"| {cand.name} | {cand.setup} | {mean_std([a for _, a, _ in pairs])} | "
            f"{mean_std([b for _, _, b in pairs])} | {_gap(gaps)} | "
            f"{', '.join(f'{g:+.3f}' for g in gaps) or '-'} | {verdict(pairs)}{note} |"
        )
    lines += [
        "",
        "What Precise BatchNorm does to each model (after − before, paired within each trained model):",
        "",
        "| model | k | before | after | after − before |",
        "|---|---:|---:|---:|---:|",
    ]
    for m, k in (("yolo11n", None), ("yolo11n-pst", 0), ("yolo11n-pst", 8)):
        before = [_seed_ap(recs, f"precisebn/{m}", s, k, "results") for s in SEEDS]
        after = [_seed_ap(recs, f"precisebn/{m}", s, k, "results_precise_bn") for s in SEEDS]
        both = [(x, y) for x, y in zip(before, after) if x is not None and y is not None]
        lines.append(
            f"| {m} | {'-' if k is None else k} | {mean_std([x for x, _ in both])} | "
            f"{mean_std([y for _, y in both])} | {_gap([y - x for x, y in both])} |"
        )
    transfers = [
        (cid, rec["transferred"])
        for cid, rec in sorted(recs.items())
        if cid.startswith("upgrade/") and "transferred" in rec
    ]
    seen = set()
    lines += [
        "",
        "What `pretrained=` transfers from the stock checkpoint (Ultralytics' rule: same name and shape):",
        "",
    ]
    for cid, t in transfers:
        model = cid.split("/")[1]
        if model in seen:
            continue
        seen.add(model)
        lines.append(
            f"- {model}: {t['matched']}/{t['total']} tensors; of the PST layers' {t['pst_tensors']}, "
            f"{t['pst_matched']} (the output BatchNorm, whose name and shape C3k2 shares); same name, other shape: "
            f"{len(t['pst_same_name_other_shape'])}"
            if t["pst_tensors"]
            else f"- {model}: {t['matched']}/{t['total']} tensors"
        )
    if not transfers:
        lines.append("- pending")
    return lines


def gpu_markdown(recs: dict[str, dict]) -> list[str]:
    """The gpu group: each model's AP over seeds, and PST minus stock paired by seed (at k = 8)."""
    gpu = {cid: r for cid, r in recs.items() if cid.startswith("gpu/")}
    spec = GPU_SYNTH
    lines = [
        "",
        f"## On a GPU: {spec.imgsz} px, {spec.train} train / {spec.val} val images, {GPU_EPOCHS} epochs (`gpu` cells)",
        "",
    ]
    if not gpu:
        return lines + ["pending: no GPU was lent to the sessions that ran this study (`scripts/gpu_study.sh`)."]
    lines += ["| model | k | AP | − yolo11n, paired by seed | machine |", "|---|---:|---:|---:|---|"]
    for m in GPU_MODELS:
        stem = Path(m).stem
        for k in [None] if "pst" not in stem else [0, 8]:
            aps = [_seed_ap(gpu, f"gpu/{stem}", s, k, "results") for s in SEEDS]
            pairs = [(a, _seed_ap(gpu, "gpu/yolo11n", s, None, "results")) for s, a in zip(SEEDS, aps) if a is not None]
            gaps = [a - b for a, b in pairs if b is not None]
            machines = sorted({r["machine"] for cid, r in gpu.items() if cid.startswith(f"gpu/{stem}/")})
            lines.append(
                f"| {stem} | {'-' if k is None else k} | {mean_std([a for a in aps if a is not None])} | "
                f"{'' if k is None else _gap(gaps)} | {'; '.join(machines)} |"
            )
    return lines


def _plots(project: Path, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pst_yolo.data.writer import save_figure

    recs = _records(project, [c.id for c in grid()])
    written = []
    series = [
        ("yolo11n", "noise/yolo11n", None),
        ("yolo11n-pst k=0", "noise/yolo11n-pst", 0),
        ("yolo11n-pst k=8", "noise/yolo11n-pst", 8),
        ("yolo12n", "noise/yolo12n", None),
        ("yolo12n-pst k=0", "noise/yolo12n-pst", 0),
        ("yolo12n-pst k=8", "noise/yolo12n-pst", 8),
        ("fine last 2 ep. k=8", "fine/last2", 8),
        ("fine 50% batches k=8", "fine/share0.5", 8),
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    for x, (_, prefix, k) in enumerate(series):
        vals = _values(recs, prefix, k)
        ax.scatter([x] * len(vals), vals, s=18, color="tab:blue" if k is None else "tab:orange")
        if len(vals) > 1:
            m, s = statistics.mean(vals), statistics.stdev(vals)
            ax.errorbar([x + 0.15], [m], yerr=[s], fmt="o", color="black", capsize=3, ms=4)
    ax.set_xticks(range(len(series)), [s[0] for s in series], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("COCO AP50-95 (val)")
    ax.set_title("Seeds at the main job's budget (dots: seeds; black: mean ± std)", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = out / "noise.png"
    save_figure(path, fig, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in ("yolo11n", "yolo11n-pst"):
        rec = recs.get(f"curves/{m}/s0")
        if rec and rec["curve"]:
            ax.plot([p["epoch"] for p in rec["curve"]], [p["AP"] for p in rec["curve"]], label=m)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mAP50-95 (Ultralytics val)")
    ax.set_title(f"Learning curves, {CURVE_EPOCHS} epochs, seed 0", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = out / "curves.png"
    save_figure(path, fig, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


REPORT_FILES = ("study.md", "noise.png", "curves.png")


def check_report_folder(out: str | Path, overwrite: bool = False, key: str = "out") -> Path:
    """The folder the report goes to (``key=``): not a file, and none of its report files one that pst-yolo did
    not write (or that was changed since) unless ``overwrite``. Nothing is written."""
    from pst_yolo.data.writer import WriterError, check_owned_file

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WriterError(f"{key}={out} is a file; give the folder for {', '.join(REPORT_FILES)}")
    for name in REPORT_FILES:
        check_owned_file(out / name, overwrite=overwrite)
    return out


def write_report(project: str | Path = DEFAULT_PROJECT, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write ``study.md`` (the tables), ``noise.png`` and ``curves.png`` into ``out`` (default ``project``).

    A report file there that pst-yolo did not write (or that was edited since) is not replaced unless
    ``overwrite``: the error names it, and nothing is written. The files written are recorded in the folder's
    ``.pst-yolo-manifest.json``, so the next report replaces them."""
    from pst_yolo.data.writer import record_files, write_text

    project = Path(project)
    if not cells_dir(project).is_dir():
        raise FileNotFoundError(
            f"no study results in {cells_dir(project)}; run `pst-yolo study project={project}` first "
            "(or give the folder that holds cells/, e.g. project=docs/accuracy)"
        )
    out = check_report_folder(out if out is not None else project, overwrite)
    text = report_markdown(project)  # (reads and checks every cell before anything is written)
    out.mkdir(parents=True, exist_ok=True)
    md = write_text(out / "study.md", text)
    _plots(project, out)
    record_files(out, "study report", REPORT_FILES)
    return md
