"""The state machine and the seed's status words."""

import pytest

from chalicelib.domain.jobs import Job, Phase, SourceKind, can_transition
from chalicelib.stores.logs import split_utf8


@pytest.mark.parametrize(
    "phase, word",
    [
        (Phase.QUEUED, "Building"),
        (Phase.FETCHING, "Building"),
        (Phase.BUILDING, "Building"),
        (Phase.PUSHING, "Pushing"),
        (Phase.FINISHED, "Finished"),
        (Phase.CANCELLED, "Cancelled"),
    ],
)
def test_status_words_are_the_seeds(phase, word):
    job = Job("id", "u/i", SourceKind.DOCKERFILE, {}, phase=phase)
    assert job.status_body()["Status"] == word


def test_failed_status_carries_the_reason():
    job = Job("id", "u/i", SourceKind.DOCKERFILE, {}, phase=Phase.FAILED, reason="boom: exit 3")
    assert job.status_body()["Status"] == "Failed: boom: exit 3"


def test_forward_only_and_terminal_is_final():
    assert can_transition(Phase.QUEUED, Phase.FETCHING)
    assert can_transition(Phase.BUILDING, Phase.FAILED)
    assert not can_transition(Phase.PUSHING, Phase.BUILDING)
    assert not can_transition(Phase.QUEUED, Phase.PUSHING)
    assert not can_transition(Phase.FINISHED, Phase.FAILED)
    assert not can_transition(Phase.FAILED, Phase.FETCHING)


def test_split_utf8_keeps_limit_and_characters():
    text = ("line ünïcødé ✓\n" * 5000) + "x" * 70000 + "é" * 40000
    pieces = split_utf8(text, 32 * 1024)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 32 * 1024 for p in pieces)
