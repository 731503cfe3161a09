"""Pictures and the live demo: the fine-branch selection recorder and drawing (``attention_maps``), the
detector wrapper (``detector``), frame sources (``sources``), the demo loop (``demo``) and ``explain``."""
