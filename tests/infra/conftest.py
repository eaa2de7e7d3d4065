"""Fixtures of the infra tests: infra/check_template.py and the parsed templates."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.support.infra import INFRA, check_template


@pytest.fixture(scope="session")
def ct() -> ModuleType:
    """infra/check_template.py (the checks infra/package.sh also runs)."""
    return check_template


@pytest.fixture
def resources_template() -> dict[str, Any]:
    """infra/resources.yaml as plain data (intrinsics in long form); a fresh copy per test."""
    return check_template.load_template(INFRA / "resources.yaml")
