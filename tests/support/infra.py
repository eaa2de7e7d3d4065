"""The infra/ folder as the infra tests see it: its path, and infra/check_template.py loaded as a module."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout
INFRA = ROOT / "infra"


def _load_check_template() -> ModuleType:
    spec = importlib.util.spec_from_file_location("boatyard_infra_check_template", INFRA / "check_template.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check_template = _load_check_template()
