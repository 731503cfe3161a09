"""COCO-style mask AP (pycocotools ``segm``) of an instance-segmentation model on a COCO-format dataset.

    from pst_yolo.eval.coco_segm import evaluate_segm
    r = evaluate_segm("best.pt", "images/val", "annotations/instances_val.json", topk=8, imgsz=128)
    r.stats["AP"], r.detections            # the 12 COCOeval segm stats by name, the results JSON

The counterpart of ``pst_yolo.eval.coco.evaluate`` (boxes) for masks, built on the same ground-truth checks,
class-index -> category-id mapping and COCOeval run. Predicted masks are taken at the original image
resolution (Ultralytics ``retina_masks=True``) and written as COCO compressed RLE with the dataset's own
image and category ids; ``score_segm`` scores any such results list.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from pst_yolo.data.synth_tasks import mask_rle
from pst_yolo.data.writer import write_json
from pst_yolo.eval.coco import (
    CocoDataError,
    CocoResult,
    _load_model,
    cocoeval,
    image_paths,
    known_ids,
    load_ground_truth,
    read_image,
    resolve_class_map,
)
from pst_yolo.integration.runtime import progress as progress_bar
from pst_yolo.nn.topk import pst_layers
from pst_yolo.nn.topk import topk as topk_context


def check_masks(gt_data: dict) -> None:
    """Every annotation has a mask (polygon or RLE), else a :class:`CocoDataError` saying so."""
    missing = [a for a in gt_data["annotations"] if not a.get("segmentation")]
    if missing:
        raise CocoDataError(
            f"{len(missing)} annotation(s) have no 'segmentation' (e.g. annotation id "
            f"{missing[0].get('id')!r}); mask AP needs a polygon or RLE mask for every object "
            "(`pst-yolo synth task=segment` writes them)"
        )


def _rle_bytes(rle: Mapping) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def score_segm(
    detections: Sequence[Mapping] | str | Path, annotations: str | Path | Mapping, max_dets: int = 100
) -> tuple[dict[str, float], str]:
    """COCOeval ``segm`` on results ``{image_id, category_id, segmentation (RLE), score}``; the 12 stats by name
    and the printed summary. Every image of the annotations is scored."""
    if isinstance(detections, (str, Path)):
        detections = json.loads(Path(detections).read_text())
    gt_data = load_ground_truth(annotations)
    check_masks(gt_data)
    return _score_segm(detections, gt_data, max_dets)


def _score_segm(detections: Sequence[Mapping], gt_data: dict, max_dets: int) -> tuple[dict[str, float], str]:
    from pycocotools import mask as mask_utils

    if not gt_data["images"]:
        raise CocoDataError("the annotations list no images: nothing to evaluate")
    known_images, known_cats = known_ids(gt_data)
    sizes = {im["id"]: (im.get("height"), im.get("width")) for im in gt_data["images"]}
    results = []
    for n, d in enumerate(detections, 1):
        if d.get("image_id") not in known_images or d.get("category_id") not in known_cats:
            raise CocoDataError(
                f"detection {n} refers to an image or category id not in the annotations "
                f"(image_id={d.get('image_id')!r}, category_id={d.get('category_id')!r})"
            )
        rle = _rle_bytes(d["segmentation"])
        if tuple(rle["size"]) != sizes[d["image_id"]]:
            raise CocoDataError(
                f"detection {n}: mask size {rle['size']} differs from image {d['image_id']}'s "
                f"height x width {list(sizes[d['image_id']])}"
            )
        results.append(
            {
                "id": n,
                "image_id": d["image_id"],
                "category_id": d["category_id"],
                "segmentation": rle,
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "score": float(d["score"]),
                "iscrowd": 0,
            }
        )
    return cocoeval(gt_data, results, "segm", max_dets)


def evaluate_segm(
    model: Any,
    images: str | Path,
    annotations: str | Path | Mapping,
    topk: int | None = None,
    imgsz: int = 640,
    batch: int = 1,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 100,
    device: str | None = None,
    class_map: Mapping[int, int] | str | Path | None = None,
    save: str | Path | None = None,
    verbose: bool = True,
    progress: bool = False,
) -> CocoResult:
    """Run a segmentation model on every image of ``annotations`` and score its masks with COCOeval ``segm``.

    Args as ``pst_yolo.eval.coco.evaluate`` (``model``: a ``.pt``/``.yaml`` path or an Ultralytics ``YOLO``
    segmentation model). ``ms_per_image`` is the wall time of predict (preprocess, inference, NMS, masks at
    full resolution) per image at ``batch``, without the RLE encoding.
    """
    gt_data = load_ground_truth(annotations)
    check_masks(gt_data)
    if not gt_data["images"]:
        raise CocoDataError("the annotations list no images: nothing to evaluate")
    paths = image_paths(gt_data, images)
    model = _load_model(model)
    if getattr(model, "task", None) != "segment":
        raise ValueError(f"mask AP needs a segmentation model; this one's task is {getattr(model, 'task', None)!r}")
    mapping, _ = resolve_class_map(getattr(model, "names", None), gt_data["categories"], class_map)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    context = contextlib.nullcontext()
    if topk is not None:
        if not pst_layers(model):
            raise ValueError("topk= was given, but this model has no PST layers; leave topk unset for it")
        context = topk_context(model, int(topk))

    def predict(arrays: list) -> list:
        return model.predict(
            arrays,
            imgsz=imgsz,
            conf=conf,
            iou=iou,
            max_det=max_det,
            device=device,
            retina_masks=True,
            verbose=False,
            save=False,
        )

    results, seconds = [], 0.0
    with context:
        first = gt_data["images"][0]
        predict([read_image(paths[0], first.get("width"), first.get("height"))])  # warm-up, not timed
        starts = range(0, len(paths), batch)
        desc = f"COCO segm{'' if topk is None else f' k={topk}'}"
        for start in progress_bar(starts, desc=desc, total=len(starts), disable=not progress):
            infos = gt_data["images"][start : start + batch]
            arrays = [
                read_image(p, im.get("width"), im.get("height")) for p, im in zip(paths[start : start + batch], infos)
            ]
            t0 = time.perf_counter()
            outputs = predict(arrays)
            seconds += time.perf_counter() - t0
            for info, img, r in zip(infos, arrays, outputs):
                if r.masks is None or not len(r.boxes):
                    continue
                masks = r.masks.data.cpu().numpy() > 0.5  # [n, H, W] at the image's size (retina_masks)
                if masks.shape[1:] != img.shape[:2]:
                    raise RuntimeError(f"mask size {masks.shape[1:]} differs from the image's {img.shape[:2]}")
                for mask, score, cls in zip(masks, r.boxes.conf.tolist(), r.boxes.cls.tolist()):
                    cid = mapping.get(int(cls))
                    if cid is None:
                        continue
                    results.append(
                        {
                            "image_id": info["id"],
                            "category_id": cid,
                            "score": round(float(score), 5),
                            "segmentation": mask_rle(mask),
                        }
                    )
    if save is None:
        stem = Path(str(getattr(model, "ckpt_path", None) or "model")).stem
        save = Path("runs/pst-coco") / f"{stem}{'' if topk is None else f'_k{topk}'}_segm.json"
    save = Path(save)
    write_json(save, results)
    stats, summary = _score_segm(results, gt_data, max_det)
    if verbose:
        print(
            f"COCO segm evaluation{'' if topk is None else f' (PST k={topk})'}: {len(paths)} images, "
            f"{len(results)} masks -> {save}"
        )
        print(summary.rstrip())
    return CocoResult(
        stats=stats,
        detections=save,
        images=len(paths),
        num_detections=len(results),
        ms_per_image=seconds * 1000 / len(paths),
        topk=topk,
        class_map=mapping,
        summary=summary,
    )
