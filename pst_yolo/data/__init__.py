"""Datasets: the synthetic detection and classification sets (``synth``, ``synth_classify``) and the
COCO-JSON-to-Ultralytics converter (``coco2yolo``)."""
