"""One corpus of image references through every image-name check: the API's parser, the UI's
``ui/validate.js`` (run with node) and the CLI's registry lookup, so that none of them drifts.

The corpus (``image_refs.json``) holds the verdict the API gives for ``image_name`` and, for the
valid ones, the parts: which registry the name pushes to, its path and its tag.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

from boatyard import credentials
from chalicelib.api.validation import validate_image_name
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.image_ref import DOCKER_HUB, InvalidReference, parse_image_ref

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = json.loads((pathlib.Path(__file__).with_name("image_refs.json")).read_text(encoding="utf-8"))["refs"]
VALID = [entry for entry in CORPUS if entry["valid"]]

# Imports ui/validate.js as it is served (an ES module, through a data: URL so no file is copied or
# renamed) and prints, for every corpus reference, the UI's message ("" = accepted) and its parts.
_NODE_RUNNER = r"""
import {readFileSync} from "node:fs";
const [validatePath, corpusPath] = process.argv.slice(1);
const source = readFileSync(validatePath, "utf8");
const ui = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
const refs = JSON.parse(readFileSync(corpusPath, "utf8")).refs;
const out = refs.map(({ref}) => ({ref, message: ui.checkImageName(ref), parts: ui.splitImageName(ref)}));
process.stdout.write(JSON.stringify(out));
"""


def _ids(entries: list[dict]) -> list[str]:
    return [entry["ref"][:60] or "<empty>" for entry in entries]


@pytest.mark.parametrize("entry", CORPUS, ids=_ids(CORPUS))
def test_the_api_gives_the_corpus_verdict(entry):
    try:
        validate_image_name({"image_name": entry["ref"]})
        accepted = True
    except InvalidRequest as exc:
        assert exc.field == "image_name"
        accepted = False
    assert accepted == entry["valid"], entry.get("note", "")


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_the_parser_splits_valid_references_into_the_corpus_parts(entry):
    ref = parse_image_ref(entry["ref"])
    assert (ref.domain, ref.path, ref.tag) == (entry["domain"], entry["path"], entry["tag"] or "latest")
    assert ref.registry == (entry["domain"] or DOCKER_HUB)


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_the_cli_looks_up_credentials_for_the_registry_the_api_pushes_to(entry):
    """The CLI sends the Docker config's credentials of this registry: it must be the one the push goes to."""
    hub = entry["domain"] in (None, DOCKER_HUB, "index.docker.io")  # Docker's legacy name for the Hub
    assert credentials.registry_of(entry["ref"]) == (DOCKER_HUB if hub else entry["domain"])


def test_the_parser_refuses_what_the_api_refuses_with_its_reason():
    for entry in CORPUS:
        if entry["valid"] or len(entry["ref"]) > 255:  # longer fields stop at the API's length check first
            continue
        with pytest.raises(InvalidReference):
            parse_image_ref(entry["ref"])


@pytest.fixture(scope="module")
def ui_answers() -> dict[str, dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/install-system-deps.sh installs it)")
    run = subprocess.run(
        [
            node,
            "--input-type=module",
            "-e",
            _NODE_RUNNER,
            "--",
            str(ROOT / "ui" / "validate.js"),
            str(pathlib.Path(__file__).with_name("image_refs.json")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return {answer["ref"]: answer for answer in json.loads(run.stdout)}


@pytest.mark.parametrize("entry", CORPUS, ids=_ids(CORPUS))
def test_the_ui_gives_the_corpus_verdict_and_parts(entry, ui_answers):
    answer = ui_answers[entry["ref"]]
    assert (answer["message"] == "") == entry["valid"], (answer["message"], entry.get("note", ""))
    if entry["valid"]:
        parts = answer["parts"]
        assert (parts["domain"] or None, parts["path"], parts["tag"]) == (entry["domain"], entry["path"], entry["tag"])
