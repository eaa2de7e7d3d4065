"""The demo registry's state is one per machine, like its port (not one per checkout)."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _registry_dir_seen_from(checkout: pathlib.Path, home: pathlib.Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("BOATYARD_DEV_DIR", "BOATYARD_REGISTRY_DIR")}
    env["HOME"] = str(home)
    code = "from devstack import services; print(services.registry_state_dir(5000))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_two_checkouts_find_the_same_registry_password_file(tmp_path):
    other = tmp_path / "second-checkout"
    shutil.copytree(ROOT / "devstack", other / "devstack", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    first = _registry_dir_seen_from(ROOT, home)
    second = _registry_dir_seen_from(other, home)
    assert first == second
    assert first.startswith(str(home)) and str(ROOT) not in first and str(other) not in first
