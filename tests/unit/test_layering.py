"""The layers of chalicelib/ point one way: api → stores → domain; the worker uses only stores and domain.

docs/layout.md draws the tree. A module that imports upwards (a domain module reaching for a store, a
store reaching for the HTTP edge, the worker importing the API's code) fails here, naming the file and
the import, before the layering quietly turns back into a tangle. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package (as a path prefix) -> module prefixes it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "chalicelib/domain": ("chalicelib.stores", "chalicelib.api", "worker", "devstack", "tests"),
    "chalicelib/stores": ("chalicelib.api", "worker", "devstack", "tests"),
    "chalicelib/api": ("worker", "devstack", "tests"),
    "worker": ("chalicelib.api", "devstack", "tests"),
}


def imported_modules(source: str, package: str) -> list[str]:
    """Every absolute module name ``source`` imports, ``from X import y`` also as ``X.y`` (y may be a module)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def violations(path: Path, source: str) -> list[str]:
    """The imports of the file at ``path`` (relative to the repository) that point up a layer."""
    rel = path.as_posix()
    rules = [banned for prefix, banned in FORBIDDEN.items() if rel.startswith(prefix + "/")]
    package = ".".join(path.parent.parts)
    found = []
    for rule in rules:
        for name in imported_modules(source, package):
            if any(name == b or name.startswith(b + ".") for b in rule):
                found.append(f"{rel} imports {name}")
    return found


def _sources() -> list[Path]:
    return sorted(p.relative_to(ROOT) for d in ("chalicelib", "worker") for p in (ROOT / d).rglob("*.py"))


def test_every_import_points_down_a_layer():
    problems = [v for rel in _sources() for v in violations(rel, (ROOT / rel).read_text(encoding="utf-8"))]
    assert problems == []


def test_chalicelib_has_only_its_three_layers():
    """New code finds its room in api/, stores/ or domain/; nothing flat grows back beside them."""
    flat = sorted(p.name for p in (ROOT / "chalicelib").glob("*.py") if p.name != "__init__.py")
    assert flat == []
    assert sorted(p.name for p in (ROOT / "chalicelib").iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "api",
        "domain",
        "stores",
    ]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("chalicelib/domain/x.py", "from chalicelib.stores import jobs\n"),
        ("chalicelib/domain/x.py", "def f():\n    import chalicelib.api.submit\n"),
        ("chalicelib/domain/x.py", "from chalicelib import api\n"),
        ("chalicelib/stores/x.py", "from chalicelib.api.validation import BuildRequest\n"),
        ("chalicelib/stores/x.py", "from ..api import submit\n"),
        ("worker/job/x.py", "from chalicelib.api import submit\n"),
        ("chalicelib/api/x.py", "from tests.support import faults\n"),
    ],
)
def test_an_upward_import_is_caught(path, source):
    assert violations(Path(path), source) != []


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "chalicelib/api/x.py",
            "from chalicelib.stores import jobs\nfrom chalicelib.domain.errors import InvalidRequest\n",
        ),
        ("chalicelib/stores/x.py", "from chalicelib.domain.jobs import Job\n"),
        ("worker/job/x.py", "from chalicelib.stores import queue\nfrom chalicelib.domain.settings import Settings\n"),
    ],
)
def test_a_downward_import_passes(path, source):
    assert violations(Path(path), source) == []
