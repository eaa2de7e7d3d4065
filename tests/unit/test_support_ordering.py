"""The session's order: a test marked ``after_all_tests`` runs after every other one, whatever the file names.

The leak scan (tests/faults/test_no_leaks.py) relies on it: it must see what every other test left behind.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from tests.support.ordering import move_marked_last

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    move_marked_last(items)

def pytest_configure(config):
    config.addinivalue_line("markers", "after_all_tests: runs last")
"""


def test_a_marked_test_in_the_first_file_runs_after_all_others(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_aa_leaks="""
        import pytest

        @pytest.mark.after_all_tests
        def test_scan():
            pass

        def test_plain_neighbour():
            pass
        """,
        test_mm_middle="def test_one():\n    pass\n\ndef test_two():\n    pass\n",
        test_zz_end="def test_last_by_name():\n    pass\n",
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    order = [line.split(" ")[0] for line in result.outlines if "PASSED" in line]
    assert order == [
        "test_aa_leaks.py::test_plain_neighbour",
        "test_mm_middle.py::test_one",
        "test_mm_middle.py::test_two",
        "test_zz_end.py::test_last_by_name",
        "test_aa_leaks.py::test_scan",
    ]


def test_without_a_marked_test_the_order_is_unchanged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_b="def test_b1():\n    pass\n", test_a="def test_a1():\n    pass\n")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    order = [line.split(" ")[0] for line in result.outlines if "PASSED" in line]
    assert order == ["test_a.py::test_a1", "test_b.py::test_b1"]
