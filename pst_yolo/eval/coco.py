"""COCO-style evaluation with pycocotools: run a detector on every image of a COCO instances JSON and score it.

    from pst_yolo.eval.coco import evaluate
    r = evaluate("best.pt", "val2017", "annotations/instances_val2017.json", topk=8, imgsz=640)
    r.stats["AP"], r.stats["APs"], r.detections      # all 12 COCOeval bbox stats, the results JSON

Detections are written in the COCO results format (``image_id``, ``category_id``, ``bbox`` as
``[x, y, w, h]`` in original image pixels, ``score``) with the dataset's *own* image and category
ids, so the file can also be scored by any other COCO tool. The model's class indices are turned
into category ids by, in this order: an explicit ``class_map`` (a dict, or the ``coco_map.json``
written by ``pst-yolo synth`` / ``pst-yolo coco2yolo``); the standard 80-index -> 91-id COCO table
when the model has COCO's 80 class names; the class names.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pst_yolo.data.coco_json import ImageFileError, decode_image, load_coco_json
from pst_yolo.data.coco_map import read_map
from pst_yolo.data.writer import write_json
from pst_yolo.eval.inputs import (
    check_export_topk,
    check_fraction,
    check_positive,
    export_k,
    export_path_of,
    load_model,
    runtime_format,
)
from pst_yolo.integration.precision import (
    SWITCHES,
    PrecisionError,
    PrecisionRun,
    check_precision,
    parse_precision,
    runtime_name,
    runtime_precision,
)
from pst_yolo.integration.runtime import (
    backend_precision,
    choose_imgsz,
    export_batch,
    export_quantization,
    predictor_backend,
    predictor_imgsz,
)
from pst_yolo.integration.runtime import progress as progress_bar
from pst_yolo.nn.topk import pst_layers
from pst_yolo.nn.topk import topk as topk_context

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# The 80 category ids COCO uses (1..90 less the 10 ids that have no annotations in 2017), in class-index order.
COCO80_TO_91 = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))


class CocoDataError(ValueError):
    """The COCO JSON or the images folder is not usable; the message says what to fix."""


@dataclass
class CocoResult:
    """What :func:`evaluate` returns. ``stats`` has the 12 COCOeval bbox numbers (-1 where COCO has no
    ground truth to score, e.g. APl without large objects)."""

    stats: dict[str, float]
    detections: Path
    images: int
    num_detections: int
    ms_per_image: float | None = None
    topk: int | None = None
    class_map: dict[int, int] = field(default_factory=dict)
    unmapped_detections: int = 0  # detections of model classes without a category in the dataset (dropped)
    summary: str = ""  # COCOeval's printed table
    imgsz: int | None = None  # the inference size used (None: a detection function, which chooses its own)
    imgsz_source: str = ""  # why that size: "given", "the model's training size", ...
    runtime: str = ""  # the Ultralytics format it ran in: "pt" (PyTorch), "onnx", "openvino", ...; "" for a function
    precision: str = ""  # what that runtime computed in: "fp32", "bf16", ... (integration.precision)
    precision_source: str = ""  # why: "given", "OpenVINO's default here", "the runtime's own"

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.stats,
            "detections": str(self.detections),
            "images": self.images,
            "num_detections": self.num_detections,
            "ms_per_image": self.ms_per_image,
            "topk": self.topk,
            "runtime": self.runtime,
            "precision": self.precision,
        }


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------
def load_ground_truth(annotations: str | Path | Mapping) -> dict:
    """Read and check a COCO instances JSON (a path or the loaded dict); returns a cleaned copy.

    Fills what pycocotools needs but files often lack (``area`` = w*h, ``iscrowd`` = 0, unique
    non-zero annotation ids) and refuses what would make the scores wrong, naming the fix.
    """
    # structure, finite numbers, no null entries (an empty image list is refused where something is run on it)
    data, where = load_coco_json(annotations, error=CocoDataError, need_images=False)
    images, cats = data["images"], data["categories"]
    image_ids = [im.get("id") for im in images]
    cat_ids = [c.get("id") for c in cats]
    problems = []
    if len(set(image_ids)) != len(image_ids) or any(not isinstance(i, int) for i in image_ids):
        problems.append("image ids must be unique integers")
    if len(set(cat_ids)) != len(cat_ids) or any(not isinstance(i, int) for i in cat_ids):
        problems.append("category ids must be unique integers")
    if any("file_name" not in im for im in images):
        problems.append("every image needs a 'file_name'")
    if not cats:
        problems.append("there are no categories")
    known_images, known_cats = set(image_ids), set(cat_ids)
    bad_image = [a for a in data["annotations"] if a.get("image_id") not in known_images]
    bad_cat = [a for a in data["annotations"] if a.get("category_id") not in known_cats]
    bad_box = [a for a in data["annotations"] if not _valid_box(a.get("bbox"))]
    if bad_image:
        problems.append(
            f"{len(bad_image)} annotation(s) refer to image ids not in 'images' (e.g. {bad_image[0].get('image_id')!r})"
        )
    if bad_cat:
        problems.append(
            f"{len(bad_cat)} annotation(s) have category ids not in 'categories' "
            f"(e.g. {bad_cat[0].get('category_id')!r})"
        )
    if bad_box:
        problems.append(
            f"{len(bad_box)} annotation(s) have no valid 'bbox' [x, y, w, h] with w, h >= 0 "
            f"(e.g. annotation id {bad_box[0].get('id')!r}: {bad_box[0].get('bbox')!r})"
        )
    if problems:
        raise CocoDataError(f"{where}: " + "; ".join(problems))
    ids = [a.get("id") for a in data["annotations"]]
    renumber = len(set(ids)) != len(ids) or any(not isinstance(i, int) or i <= 0 for i in ids)
    for n, a in enumerate(data["annotations"], 1):
        x, y, w, h = (float(v) for v in a["bbox"])
        a["bbox"] = [x, y, w, h]
        a.setdefault("area", w * h)
        a["iscrowd"] = int(bool(a.get("iscrowd", 0)))
        if renumber:
            a["id"] = n  # pycocotools matches by annotation id; 0 or duplicates would break matching
    return data


def _valid_box(box: Any) -> bool:
    return (
        isinstance(box, (list, tuple))
        and len(box) == 4
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)
        and box[2] >= 0
        and box[3] >= 0
    )


def _coco_api(data: dict):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO()
        api.dataset = data
        api.createIndex()
    return api


def image_paths(data: dict, images: str | Path) -> list[Path]:
    """The file of every image in ``data['images']``: ``file_name`` absolute, or relative to ``images``
    (also tried: its last part alone, for files that list ``val2017/xxx.jpg``). Missing files are an error."""
    root = Path(images)
    if not root.is_dir():
        raise CocoDataError(f"images folder not found: {root}")
    paths, missing = [], []
    for im in data["images"]:
        name = Path(im["file_name"])
        candidates = [name] if name.is_absolute() else [root / name, root / name.name]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            missing.append(str(candidates[0]))
        paths.append(found)
    if missing:
        raise CocoDataError(
            f"{len(missing)} of {len(paths)} image(s) listed in the annotations are missing, "
            f"e.g. {', '.join(missing[:3])}; point images= at the folder the file_name entries "
            "are relative to"
        )
    return paths


def read_image(path: Path, width: int | None = None, height: int | None = None) -> np.ndarray:
    """BGR uint8 HxWx3 (grayscale, alpha, 16-bit, PNG, JPEG, ... converted) in the frame the JSON's
    width/height describe: raw pixel order first, EXIF-rotated if only that matches."""
    import cv2

    try:
        expect = (int(width), int(height)) if width and height else None
        img = decode_image(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION, expect=expect)
    except ImageFileError as e:
        raise CocoDataError(str(e)) from None
    if width and height and img.shape[:2] != (height, width):
        rotated = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
        if rotated is not None and rotated.shape[:2] == (height, width):
            return rotated
        raise CocoDataError(
            f"image {path} is {img.shape[1]}x{img.shape[0]} pixels but the annotations say "
            f"{width}x{height}; fix the width/height in the JSON (boxes are in those pixels)"
        )
    return img


# ---------------------------------------------------------------------------------------------
# Class index -> category id
# ---------------------------------------------------------------------------------------------
def coco80_names() -> list[str]:
    """Ultralytics' 80 COCO class names (from the coco.yaml shipped inside the package; no download)."""
    import yaml
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text(encoding="utf-8"))["names"]
    return [names[i] for i in range(len(names))]


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


def resolve_class_map(
    names: Sequence[str] | Mapping[int, str] | None,
    categories: Sequence[Mapping],
    class_map: Mapping[int, int] | str | Path | None = None,
) -> tuple[dict[int, int], str]:
    """``{model class index: category id}`` and how it was found ("given", "mapping file", "coco80", "names")."""
    cat_ids = {int(c["id"]) for c in categories}
    if isinstance(names, Mapping):
        names = [names[i] for i in sorted(names)]
    if class_map is not None:
        how = "given"
        if isinstance(class_map, (str, Path)):
            doc = read_map(class_map)
            class_map, how = doc["class_map"], f"mapping file {doc['path']}"
        mapping = {int(k): int(v) for k, v in class_map.items()}
        unknown = sorted({v for v in mapping.values() if v not in cat_ids})
        if unknown:
            raise CocoDataError(
                f"class map ({how}) names category ids {unknown} that the annotations do not have "
                f"(they have {sorted(cat_ids)}); it belongs to another dataset"
            )
        if names is not None and len(names) != len(mapping):
            raise CocoDataError(
                f"class map ({how}) covers {len(mapping)} classes but the model has {len(names)}; "
                "it belongs to another dataset"
            )
        return mapping, how
    if names is None:
        raise CocoDataError("the model has no class names: pass class_map={class index: category id}")
    by_name: dict[str, list[int]] = {}
    for c in categories:
        by_name.setdefault(_norm(c["name"]), []).append(int(c["id"]))
    if list(names) == coco80_names():
        # The standard table, as long as the dataset really uses COCO's ids (names agree where both exist).
        consistent = all(by_name.get(_norm(n), [cid])[0] == cid for n, cid in zip(names, COCO80_TO_91))
        if consistent and cat_ids & set(COCO80_TO_91):
            return {i: cid for i, cid in enumerate(COCO80_TO_91) if cid in cat_ids}, "coco80"
    mapping = {}
    for i, n in enumerate(names):
        ids = by_name.get(_norm(n), [])
        if len(ids) > 1:
            raise CocoDataError(
                f"class name {n!r} matches several categories {ids}: pass class_map= "
                "(the coco_map.json written by `pst-yolo coco2yolo`)"
            )
        if ids:
            mapping[i] = ids[0]
    if not mapping:
        raise CocoDataError(
            f"none of the model's class names ({', '.join(map(str, list(names)[:6]))}...) is a category of the "
            f"annotations ({', '.join(c['name'] for c in list(categories)[:6])}...): the model was trained on another "
            "dataset, or pass class_map= (the coco_map.json written next to data.yaml)"
        )
    return mapping, "names"


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def score(
    detections: Sequence[Mapping] | str | Path, annotations: str | Path | Mapping, max_dets: int = 100
) -> tuple[dict[str, float], str]:
    """COCOeval bbox on COCO-format detections; returns the 12 stats by name and the printed summary.

    Every image of the annotations is scored (images without detections count as misses; images
    without annotations make any detection on them a false positive).
    """
    if isinstance(detections, (str, Path)):
        detections = json.loads(Path(detections).read_text())
    return _score(detections, load_ground_truth(annotations), max_dets)


def _score(detections: Sequence[Mapping], gt_data: dict, max_dets: int) -> tuple[dict[str, float], str]:
    if not gt_data["images"]:
        raise CocoDataError("the annotations list no images: nothing to evaluate")
    dets = [dict(d) for d in detections]
    known_images, known_cats = known_ids(gt_data)
    for d in dets:
        if d.get("image_id") not in known_images or d.get("category_id") not in known_cats:
            raise CocoDataError(f"detection {d} refers to an image or category id not in the annotations")
    results = []
    for n, d in enumerate(dets, 1):
        x, y, w, h = d["bbox"]
        results.append(
            {
                "id": n,
                "image_id": d["image_id"],
                "category_id": d["category_id"],
                "bbox": [x, y, w, h],
                "area": w * h,
                "score": float(d["score"]),
                "iscrowd": 0,
            }
        )
    return cocoeval(gt_data, results, "bbox", max_dets)


def known_ids(gt_data: dict) -> tuple[set, set]:
    """The image ids and category ids of a (checked) ground truth."""
    return {im["id"] for im in gt_data["images"]}, {c["id"] for c in gt_data["categories"]}


def cocoeval(gt_data: dict, results: list[dict], iou_type: str, max_dets: int) -> tuple[dict[str, float], str]:
    """COCOeval (``bbox`` or ``segm``) of result annotations (ids, areas and boxes filled in) against the ground
    truth, every image of it scored; the 12 stats by name and the printed summary."""
    from pycocotools.cocoeval import COCOeval

    if not gt_data["annotations"]:
        raise CocoDataError("the annotations have no objects: every AP would be -1 (no ground truth), not a score")
    gt = _coco_api(gt_data)
    # pycocotools' loadRes fails on an empty list: build the (possibly empty) result set the same way it would.
    dt = _coco_api({"images": gt_data["images"], "categories": gt_data["categories"], "annotations": results})
    ev = COCOeval(gt, dt, iouType=iou_type)
    ev.params.imgIds = sorted(gt.getImgIds())
    ev.params.maxDets = [1, 10, max_dets]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}
    return stats, buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Running the model
# ---------------------------------------------------------------------------------------------
Detector = Callable[[list], list]  # images (BGR arrays) -> per image an (n, 6) array: x1, y1, x2, y2, score, class


def _load_model(model: Any):
    return load_model(model) if isinstance(model, (str, Path)) else model


def _check_save(save: Path, annotations: Any) -> None:
    """The detections file may replace an earlier detections file, never the ground truth or another file."""
    if save.is_dir():
        raise ValueError(f"save={save} is a folder; give the path of the detections JSON to write")
    if not isinstance(annotations, Mapping) and save.resolve() == Path(annotations).resolve():
        raise ValueError(f"save={save} is the annotations file itself; choose another path for the detections")
    if save.exists():
        try:
            earlier = json.loads(save.read_text())
        except (OSError, ValueError):
            earlier = None
        if not isinstance(earlier, list) or not all(isinstance(d, dict) and "image_id" in d for d in earlier):
            raise ValueError(
                f"save={save} exists and is not a detections JSON written by an earlier evaluation; "
                "choose another path (it is not replaced)"
            )


def _yolo_detector(yolo, imgsz: int, conf: float, iou: float, max_det: int, device: str | None) -> Detector:
    def detect(batch: list) -> list:
        results = yolo.predict(
            batch, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det, device=device, verbose=False, save=False
        )
        out = []
        for r in results:
            b = r.boxes
            out.append(
                np.concatenate([b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None], b.cls.cpu().numpy()[:, None]], 1)
                if len(b)
                else np.zeros((0, 6))
            )
        return out

    return detect


def _is_yolo(model: Any) -> bool:
    return hasattr(model, "predict") and hasattr(model, "model")


def evaluate(
    model: Any,
    images: str | Path,
    annotations: str | Path | Mapping,
    topk: int | None = None,
    imgsz: int | None = None,
    batch: int = 16,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 100,
    device: str | None = None,
    class_map: Mapping[int, int] | str | Path | None = None,
    save: str | Path | None = None,
    names: Sequence[str] | None = None,
    verbose: bool = True,
    progress: bool = True,
    precision: str | None = None,
) -> CocoResult:
    """Run ``model`` on every image of ``annotations`` (files under ``images``) and score it with COCOeval.

    Args:
        model: a ``.pt``/``.yaml`` path, an export Ultralytics loads (``.onnx``, ``.torchscript``, ``.mnn``,
            a ``*_openvino_model`` / ``*_ncnn_model`` / ``*_saved_model`` folder, an OpenVINO ``.xml``), an
            Ultralytics ``YOLO`` object, or a function taking a list of BGR images and returning, per image,
            an ``(n, 6)`` array ``x1, y1, x2, y2, score, class`` in that image's pixels (give ``names=`` or
            ``class_map=`` with it).
        images: the folder that the ``file_name`` entries are relative to (absolute names work too).
        annotations: a COCO instances JSON (path or loaded dict).
        topk: fine-branch k of every PST layer during this evaluation (None: leave the model's k);
            an error for models without PST layers. An export runs at the k it was exported at only.
        precision: what the runtime computes in, where it has a switch: OpenVINO ``fp32`` / ``bf16`` /
            ``fp16`` (``INFERENCE_PRECISION_HINT``); None: the runtime's default (OpenVINO: bf16 on CPUs with
            AVX512-BF16 or AMX). Runtimes without a switch take only ``fp32``. The result says what ran.
        imgsz: inference size; None: the size the checkpoint was trained at, as ``yolo val`` uses (an
            export: its fixed size; a config: 640). A size that differs from the training size is used,
            with an ``ImageSizeWarning``.
        batch, conf, iou, max_det, device: inference settings. COCO's protocol: low
            ``conf`` (0.001) and at most 100 detections per image (``max_det``, also COCOeval's maxDets).
        class_map: ``{class index: category id}`` or the ``coco_map.json`` of ``pst-yolo synth`` /
            ``coco2yolo``; default: COCO's 80->91 table for COCO-named models, else by class name.
        save: where to write the detections JSON (default ``runs/pst-coco/<model>_k<k>_detections.json``).

    Returns:
        :class:`CocoResult`: ``stats`` (the 12 COCOeval numbers by name), ``detections`` (the JSON
        path), ``ms_per_image`` (wall time of preprocess + inference + NMS per image, batch ``batch``),
        ``runtime`` and ``precision`` (what ran).
    """
    # Every input is checked before the model runs: settings, ground truth, image files, output path, model.
    check_positive(imgsz=imgsz, batch=batch, max_det=max_det)
    check_fraction(conf=conf, iou=iou)
    if precision is not None:
        parse_precision(precision)
    if topk is not None and (isinstance(topk, bool) or int(topk) < 0):
        raise ValueError(f"topk={topk!r}: must be a non-negative integer (0 = coarse only) or None")
    gt_data = load_ground_truth(annotations)
    where = "the annotations dict" if isinstance(annotations, Mapping) else str(annotations)
    if not gt_data["images"]:
        raise CocoDataError(f"{where} lists no images: nothing to evaluate")
    if not gt_data["annotations"]:
        raise CocoDataError(
            f"{where} has no annotations: every AP would be -1 (COCO's 'no ground truth'), not a score. "
            "Evaluate on a split with labelled objects"
        )
    paths = image_paths(gt_data, images)
    empty = [p for p in paths if p.stat().st_size == 0]
    if empty:
        raise CocoDataError(
            f"{len(empty)} of {len(paths)} image file(s) are empty (0 bytes), e.g. {', '.join(map(str, empty[:3]))}: "
            "corrupt or truncated images; replace them"
        )
    if save is not None:
        _check_save(Path(save), annotations)
    model = _load_model(model)
    yolo = _is_yolo(model)
    fmt = runtime_format(model) if yolo else None
    if yolo:
        check_precision(fmt, precision)
    elif precision is not None:
        raise ValueError("precision= needs a model (a path or a YOLO object): it sets the precision of its runtime")
    if names is None:
        names = getattr(model, "names", None)
    mapping, how = resolve_class_map(names, gt_data["categories"], class_map)
    size, size_source = None, ""
    if yolo and fmt != "pt":  # a fixed-shape export takes its own batch (1), as Ultralytics' validator runs it
        batch = min(batch, export_batch(export_path_of(model)) or batch)
    if yolo:
        size, size_source = choose_imgsz(model, imgsz, str(getattr(model, "ckpt_path", None) or "the model"))
        detect = _yolo_detector(model, size, conf, iou, max_det, device)
    elif callable(model):
        detect = model
    else:
        raise TypeError(
            f"model must be a weights/config path, a YOLO object or a detection function, got {type(model).__name__}"
        )

    context = contextlib.nullcontext()
    if topk is not None:
        if not yolo:
            raise ValueError("topk= needs a YOLO model (or a .pt/.yaml path); it sets the k of its PST layers")
        if fmt != "pt":
            check_export_topk(model, topk)  # (the k it was exported at: nothing to set)
        elif not pst_layers(model):
            raise ValueError("topk= was given, but this model has no PST layers; leave topk unset for it")
        else:
            context = topk_context(model, int(topk))
    running = (
        runtime_precision(fmt, precision, export_quantization(export_path_of(model)) if fmt != "pt" else None)
        if yolo
        else contextlib.nullcontext()
    )

    results, unmapped, seconds = [], 0, 0.0
    with context, running as ran:
        if yolo and paths:  # warm-up outside the timing (first calls build the predictor, fuse, allocate)
            first = gt_data["images"][0]
            detect([read_image(paths[0], first.get("width"), first.get("height"))])
            size = _settled_imgsz(model, size)
        starts = range(0, len(paths), batch)
        for start in progress_bar(
            starts, desc=f"COCO eval{'' if topk is None else f' k={topk}'}", total=len(starts), disable=not progress
        ):
            infos = gt_data["images"][start : start + batch]
            arrays = [
                read_image(p, im.get("width"), im.get("height")) for p, im in zip(paths[start : start + batch], infos)
            ]
            t0 = time.perf_counter()
            outputs = detect(arrays)
            seconds += time.perf_counter() - t0
            if len(outputs) != len(arrays):
                raise ValueError(f"the detector returned {len(outputs)} results for {len(arrays)} images")
            for info, img, det in zip(infos, arrays, outputs):
                det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
                if len(det) > max_det:
                    det = det[np.argsort(-det[:, 4], kind="stable")[:max_det]]
                h, w = img.shape[:2]
                for x1, y1, x2, y2, s, c in det:
                    cid = mapping.get(int(c))
                    if cid is None:
                        unmapped += 1
                        continue
                    x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
                    y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
                    results.append(
                        {
                            "image_id": info["id"],
                            "category_id": cid,
                            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                            "score": round(float(s), 5),
                        }
                    )

    if yolo:
        _check_precision_ran(model, ran)
    if save is None:
        save = (
            Path("runs/pst-coco")
            / f"{_detections_stem(model, fmt, ran)}{'' if topk is None else f'_k{topk}'}_detections.json"
        )
        _check_save(save, annotations)
    save = Path(save)
    write_json(save, results)
    stats, summary = _score(results, gt_data, max_det)
    if verbose:
        k = topk if topk is not None or fmt in (None, "pt") else export_k(model)
        label = "" if k is None else f" (PST k={k}{'' if fmt in (None, 'pt') else ', fixed in the export'})"
        at = "" if size is None else f" at imgsz {size} ({size_source})"
        how = "" if ran is None else f", {runtime_name(fmt)} {ran.label()} ({ran.how()})"
        print(
            f"COCO bbox evaluation{label}{at}{how}: {len(paths)} images, {len(results)} detections -> {save}"
            f"{f'; {unmapped} detections of classes without a category dropped' if unmapped else ''}"
        )
        print(summary.rstrip())
    ms = seconds * 1000 / len(paths) if paths else None
    return CocoResult(
        stats=stats,
        detections=save,
        images=len(paths),
        num_detections=len(results),
        ms_per_image=ms,
        topk=topk,
        class_map=mapping,
        unmapped_detections=unmapped,
        summary=summary,
        imgsz=size,
        imgsz_source=size_source,
        runtime=fmt or "",
        precision="" if ran is None else ran.label(),
        precision_source="" if ran is None else ran.how(),
    )


def _settled_imgsz(yolo: Any, size: int) -> int:
    """The size an export actually ran at, once its predictor is built: Ultralytics runs a fixed-size export at its
    own size whatever is asked, and for a format whose metadata is not readable unloaded (MNN) only the
    predictor knows it."""
    settled = predictor_imgsz(yolo) if runtime_format(yolo) != "pt" else None
    if isinstance(settled, (list, tuple)) and settled:
        settled = max(settled)
    return int(settled) if isinstance(settled, int) else size


def _check_precision_ran(yolo: Any, ran: PrecisionRun) -> None:
    """Every OpenVINO model that ran was compiled inside ``runtime_precision`` (so it got the hint and its precision
    was read); a ``YOLO`` object whose predictor was built before the evaluation is read directly instead, and a
    precision that differs from the one asked for is an error, not a silently different number."""
    if ran.fmt not in SWITCHES:
        return
    if not ran.compiled:
        ran.compiled.append(backend_precision(predictor_backend(yolo)))
    if ran.asked is not None and ran.precision() != ran.asked:
        raise PrecisionError(
            f"precision={ran.asked} was asked, but {runtime_name(ran.fmt)} ran in {ran.precision()} (on a CPU "
            f"without {ran.asked} arithmetic it falls back; a YOLO object run before keeps its precision: pass a path)"
        )


def _detections_stem(model: Any, fmt: str | None, ran: PrecisionRun | None) -> str:
    """``best`` for ``best.pt``; for an export its name with the format (``best_onnx``, ``best_openvino_model``)
    and a precision that was asked for (``_bf16``), so scoring one model in several runtimes keeps every file."""
    name = Path(str(getattr(model, "ckpt_path", None) or getattr(model, "model_name", None) or "model"))
    if fmt in (None, "pt"):
        return name.stem
    return name.name.replace(".", "_") + (f"_{ran.asked}" if ran is not None and ran.asked else "")
