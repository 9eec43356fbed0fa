"""Hatch build hook: build the live view's front end (js/ -> ipy_stream/static/).

Runs for wheels, editable installs and sdists. It builds with npm only when the
bundle is missing or was built from other sources (see js/stamp.py), so an
install from a checkout or an sdist with an up-to-date bundle needs no Node.js.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _stamp_module() -> Any:
    path = Path(__file__).resolve().parent / "stamp.py"
    spec = importlib.util.spec_from_file_location("ipy_stream_js_stamp", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is beside this one
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class JsBuildHook(BuildHookInterface):
    """Make sure the bundles in ipy_stream/static/ match js/'s sources."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Build the front end if needed, before files are collected."""
        _stamp_module().ensure_built(log=self.app.display_info, warn=self.app.display_warning)
