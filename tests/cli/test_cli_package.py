"""``pip install .`` installs the ``boatyard`` command and only the CLI's package, with its dependencies declared."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tests.cli.helpers import REPO_ROOT

# import name → distribution name, for the CLI's third-party imports
DISTRIBUTIONS = {
    "requests": "requests",
    "urllib3": "urllib3",
    "requests_toolbelt": "requests-toolbelt",
    "docker": "docker",
    "rich": "rich",
    "tomli": "tomli",
}


OPERATOR_MODULES = {"admin.py"}
"""``boatyard admin`` (API keys, issue 12) acts on DynamoDB with the service's own code: it runs from a
checkout of the service, and the installed CLI leaves it out when that code is absent."""


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (REPO_ROOT / "boatyard").glob("*.py"):
        if path.name in OPERATOR_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "boatyard"}


def test_every_import_of_the_cli_is_a_declared_dependency():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        dep.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]
    }
    imports = _third_party_imports()
    assert imports, "the scan found no imports"
    unknown = imports - set(DISTRIBUTIONS)
    assert not unknown, f"add these imports to DISTRIBUTIONS and pyproject.toml: {unknown}"
    assert {DISTRIBUTIONS[name] for name in imports} <= declared
    # the CLI must not need the service's own packages
    assert not imports & {"chalicelib", "worker", "devstack", "boto3", "chalice"}


def test_pip_install_puts_the_boatyard_command_and_only_the_cli_package(tmp_path):
    # a copy of what the build reads (setuptools writes build/ and egg-info beside the sources)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for folder in ("boatyard", "chalicelib", "worker", "devstack", "bench", "tests"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    # offline: no dependencies, this environment's setuptools and wheel as the build backend
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    top = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"boatyard", "bin"}, top
    entry_points = next(target.glob("boatyard-*.dist-info")).joinpath("entry_points.txt").read_text()
    assert "boatyard = boatyard.cli:main" in entry_points
    ran = subprocess.run(
        [str(target / "bin" / "boatyard"), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "boatyard 1.0.0", ran.stderr[-2000:]
