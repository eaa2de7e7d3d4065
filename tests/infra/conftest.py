"""Fixtures of the infra tests: infra/check_template.py and the parsed templates."""
from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _load_check_template() -> ModuleType:
    spec = importlib.util.spec_from_file_location("boatyard_infra_check_template", INFRA / "check_template.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check_template = _load_check_template()


@pytest.fixture(scope="session")
def ct() -> ModuleType:
    """infra/check_template.py (the checks infra/package.sh also runs)."""
    return check_template


@pytest.fixture
def resources_template() -> dict[str, Any]:
    """infra/resources.yaml as plain data (intrinsics in long form); a fresh copy per test."""
    return check_template.load_template(INFRA / "resources.yaml")
