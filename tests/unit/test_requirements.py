"""Security floors of dependencies are pinned where they are installed, and the installed versions meet them."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_urllib3_is_pinned_past_the_streamed_decompression_bomb():
    # CVE-2025-66471: urllib3 < 2.6 decompressed a streamed Content-Encoding body without bound
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("#")[0].strip() for line in lines if line.strip().startswith("urllib3")]
    assert pins == ["urllib3>=2.6"]
    assert _version(metadata.version("urllib3")) >= (2, 6)
