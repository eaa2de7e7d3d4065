"""Tests that must run after every other test of the session, whatever their file names.

Mark such a test ``@pytest.mark.after_all_tests`` (the leak scan over everything the session
left behind is one).  ``tests/conftest.py`` calls :func:`move_marked_last` from its
``pytest_collection_modifyitems`` hook (``trylast``, so it sees the final order), which moves
the marked tests to the end and keeps every other test where it was.
"""

from __future__ import annotations

import pytest

MARKER = "after_all_tests"


def move_marked_last(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: tests marked :data:`MARKER` last (in their own order), the rest unchanged."""
    marked = [item for item in items if item.get_closest_marker(MARKER) is not None]
    if marked:
        items[:] = [item for item in items if item.get_closest_marker(MARKER) is None] + marked
