"""``python -m pst_yolo.cli ...`` is ``pst-yolo ...``."""

import sys

from pst_yolo.cli import main

sys.exit(main())
