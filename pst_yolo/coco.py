"""The documented import path ``pst_yolo.coco.evaluate`` (the code lives in ``pst_yolo.eval.coco``)."""

from pst_yolo.eval.coco import STAT_NAMES, CocoDataError, CocoResult, evaluate, score  # noqa: F401
