"""Hatch build hook: ship the auto-registration .pth file in editable installs too.

Hatchling applies ``force-include`` to regular wheels only; an editable wheel gets its files
from ``build_data["force_include_editable"]``.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class AutoloadPthHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":
            build_data.setdefault("force_include_editable", {})["pst_yolo_autoload.pth"] = "pst_yolo_autoload.pth"
