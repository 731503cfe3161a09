"""Measuring models: COCO scoring (``coco``), the benchmark runner (``bench``), top-k comparison
(``compare``), latency/memory (``speed``), the one FLOP count (``flops``), parameter/GFLOPs tables and
labels (``tables``), and the smoke run (``quickstart``)."""
