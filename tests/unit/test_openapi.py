"""openapi.yaml describes the API exactly: every route, the shared field patterns, and what the validator accepts."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate as validate_spec

from app import STATIC_UI_ROUTES, app
from chalicelib.api.validation import validate_build
from chalicelib.domain import patterns
from chalicelib.domain.errors import BoatyardError
from chalicelib.domain.settings import load_settings
from tests.support.openapi import DOC_PATH, schema_validator

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text())


def test_is_a_valid_openapi_document(doc):
    validate_spec(doc)
    assert doc["openapi"].startswith("3.")


def test_every_route_is_documented_and_nothing_else(doc):
    chalice_routes = {(path, method.lower()) for path, entries in app.routes.items() for method in entries}
    api_routes = chalice_routes - {(path, method.lower()) for path, method in STATIC_UI_ROUTES}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item if method in METHODS}
    assert api_routes == documented
    assert len(api_routes) == 12  # build, uploads, jobs, status, logs, cancel; triggers (4), hooks; notifications


def test_every_operation_documents_its_errors_with_the_error_schema(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "500" in codes, (path, method)
            if "{job_id}" in path:
                assert "404" in codes
                param = doc["components"]["parameters"]["JobId"]
                assert param["schema"] == {"type": "string", "format": "uuid"}
            if "{trigger_id}" in path:
                assert ("401" if "/hooks/" in path else "404") in codes
                assert doc["components"]["parameters"]["TriggerId"]["schema"] == {"type": "string", "format": "uuid"}
            if method == "post" and path.endswith("/build"):
                assert {"202", "400", "413", "415", "503"} <= codes
    for response in doc["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(
    "schema_name, pattern_name",
    [
        ("ImageName", "IMAGE_NAME"),
        ("TarUrl", "TAR_URL"),
        ("GitHubUsername", "GITHUB_USERNAME"),
        ("GitHubReponame", "GITHUB_REPONAME"),
        ("GitHubTag", "GIT_REF"),
        ("UploadId", "UUID"),
        ("Username", "NO_CONTROL_CHARS"),
        ("Password", "NO_CONTROL_CHARS"),
        ("Email", "NO_CONTROL_CHARS"),
        ("OptionValue", "NO_CONTROL_CHARS"),
        ("ContextPath", "RELATIVE_PATH"),
        ("GitLabProject", "GITLAB_PROJECT"),
        ("BitbucketName", "BITBUCKET_NAME"),
        ("Token", "TOKEN"),
    ],
)
def test_documented_patterns_are_the_validators_patterns(doc, schema_name, pattern_name):
    assert doc["components"]["schemas"][schema_name]["pattern"] == patterns.ALL[pattern_name]


def test_documented_option_patterns_are_the_validators_patterns(doc):
    options = doc["components"]["schemas"]["BuildOptions"]["properties"]
    assert options["build_args"]["propertyNames"]["pattern"] == patterns.BUILD_ARG_NAME
    assert options["labels"]["propertyNames"]["pattern"] == patterns.LABEL_KEY
    assert options["tags"]["items"]["pattern"] == patterns.IMAGE_TAG
    assert options["target"]["anyOf"][1]["pattern"] == patterns.STAGE_NAME
    assert options["memory"]["anyOf"][2]["pattern"] == patterns.MEMORY
    settings = load_settings({})
    assert options["memory"]["anyOf"][1]["maximum"] == settings.max_build_memory_bytes
    assert options["cpus"]["maximum"] == settings.max_build_cpus


UUID = "3f1c1f0e-8c8b-4d47-9a53-6c1b0f5e2a10"
BODIES: list[dict[str, Any]] = [
    {"image_name": "u/i", "dockerfile": "FROM x"},
    {"image_name": "u/i", "tar_url": "https://h.example/a.tgz"},
    {"image_name": "u/i", "github_username": "o", "github_reponame": "r", "github_tag": "v1"},
    {"image_name": "u/i", "upload_id": UUID},
    {"image_name": "u/i", "upload_id": UUID.upper(), "dockerfile": "", "tar_url": None, "extra": 1},
    {"image_name": "u/i", "dockerfile": "FROM x", "username": "me", "password": "p", "email": None},
    {"image_name": "u/i", "dockerfile": "FROM x", "tar_url": "https://h/a"},
    {"image_name": "u/i", "dockerfile": "FROM x", "github_tag": "v1"},
    {"image_name": "u/i", "github_username": "o", "github_reponame": "r"},
    {"image_name": "u/i"},
    {"image_name": "u/i", "dockerfile": "  "},
    {"image_name": "u/i", "dockerfile": 5},
    {"image_name": "U/i", "dockerfile": "FROM x"},
    {"image_name": "u/i@sha256:" + "0" * 64, "dockerfile": "FROM x"},
    {"image_name": "a" * 256, "dockerfile": "FROM x"},
    {"image_name": "u/i\n", "dockerfile": "FROM x"},
    {"image_name": "", "dockerfile": "FROM x"},
    {"dockerfile": "FROM x"},
    {"image_name": "u/i", "tar_url": "ftp://h/a"},
    {"image_name": "u/i", "tar_url": "http://u:p@h/a"},
    {"image_name": "u/i", "tar_url": "http://h:70000/a"},
    {"image_name": "u/i", "github_username": "-o", "github_reponame": "r", "github_tag": "v"},
    {"image_name": "u/i", "github_username": "o" * 40, "github_reponame": "r", "github_tag": "v"},
    {"image_name": "u/i", "github_username": "o", "github_reponame": "..", "github_tag": "v"},
    {"image_name": "u/i", "github_username": "o", "github_reponame": "r", "github_tag": "v.lock"},
    {"image_name": "u/i", "upload_id": "nope"},
    {"image_name": "u/i", "dockerfile": "FROM x", "username": 3},
    {"image_name": "u/i", "dockerfile": "FROM x", "password": "a\tb"},
    {"image_name": "u/i", "dockerfile": "FROM x", "password": "p" * 1025},
    {"image_name": "u/i", "dockerfile": "FROM x", "email": "e" * 321},
    # build options
    {
        "image_name": "u/i",
        "tar_url": "https://h/a",
        "build_args": {"VERSION": "1", "_x": ""},
        "labels": {"a.b/c-d": "v"},
        "dockerfile_path": "docker/Dockerfile.prod",
        "context_path": "services/api",
        "target": "runtime",
        "no_cache": True,
        "pull": False,
        "tags": ["latest", "1.0"],
        "memory": "512m",
        "cpus": 1.5,
    },
    {
        "image_name": "u/i",
        "dockerfile": "FROM x",
        "build_args": None,
        "labels": None,
        "tags": None,
        "target": "",
        "no_cache": None,
        "pull": None,
        "memory": None,
        "cpus": None,
        "dockerfile_path": "",
        "context_path": None,
    },
    {"image_name": "u/i", "dockerfile": "FROM x", "memory": 6291456, "cpus": 2},
    {"image_name": "u/i", "dockerfile": "FROM x", "context_path": "app"},
    {"image_name": "u/i", "dockerfile": "FROM x", "dockerfile_path": "Dockerfile"},
    {"image_name": "u/i", "tar_url": "https://h/a", "context_path": "../up"},
    {"image_name": "u/i", "tar_url": "https://h/a", "context_path": "/abs"},
    {"image_name": "u/i", "tar_url": "https://h/a", "dockerfile_path": "a/./Dockerfile"},
    {"image_name": "u/i", "tar_url": "https://h/a", "dockerfile_path": "a\\Dockerfile"},
    {"image_name": "u/i", "tar_url": "https://h/a", "context_path": "app/"},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": {"1X": "v"}},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": {"X": 1}},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": {"X": "a\nb"}},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": {"X": "v" * 4097}},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": {f"A{i}": "v" for i in range(65)}},
    {"image_name": "u/i", "dockerfile": "FROM x", "build_args": ["X=1"]},
    {"image_name": "u/i", "dockerfile": "FROM x", "labels": {"-x": "v"}},
    {"image_name": "u/i", "dockerfile": "FROM x", "target": "1stage"},
    {"image_name": "u/i", "dockerfile": "FROM x", "no_cache": "true"},
    {"image_name": "u/i", "dockerfile": "FROM x", "pull": 1},
    {"image_name": "u/i", "dockerfile": "FROM x", "tags": ["a", "a"]},
    {"image_name": "u/i", "dockerfile": "FROM x", "tags": [".hidden"]},
    {"image_name": "u/i", "dockerfile": "FROM x", "tags": "latest"},
    {"image_name": "u/i", "dockerfile": "FROM x", "tags": [f"t{i}" for i in range(11)]},
    {"image_name": "u/i", "dockerfile": "FROM x", "memory": "lots"},
    {"image_name": "u/i", "dockerfile": "FROM x", "memory": 1024},
    {"image_name": "u/i", "dockerfile": "FROM x", "memory": 5 * 1024**3},
    {"image_name": "u/i", "dockerfile": "FROM x", "memory": True},
    {"image_name": "u/i", "dockerfile": "FROM x", "cpus": 0},
    {"image_name": "u/i", "dockerfile": "FROM x", "cpus": 3},
    {"image_name": "u/i", "dockerfile": "FROM x", "cpus": "1"},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": ["u/i:latest", "ghcr.io/o/app:cache"]},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": None},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": []},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": "u/i"},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": ["u/i@sha256:" + "0" * 64]},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": ["u/i", "u/i"]},
    {"image_name": "u/i", "dockerfile": "FROM x", "cache_from": [f"u/i{n}" for n in range(5)]},
    # secrets beside the password
    {
        "image_name": "u/i",
        "github_username": "o",
        "github_reponame": "r",
        "github_tag": "main",
        "github_token": "ghp_x",
        "registry_auths": {
            "ghcr.io": {"username": "u", "password": "p"},
            "127.0.0.1:5000": {"username": "a", "password": "b"},
        },
    },
    {"image_name": "u/i", "dockerfile": "FROM x", "registry_auths": None, "github_token": ""},
    {"image_name": "u/i", "dockerfile": "FROM x", "github_token": "ghp_x"},
    {"image_name": "u/i", "tar_url": "https://h/a", "github_token": "ghp_x"},
    {"image_name": "u/i", "github_username": "o", "github_reponame": "r", "github_tag": "v", "github_token": "a b"},
    {"image_name": "u/i", "dockerfile": "FROM x", "registry_auths": {"no host": {"username": "u", "password": "p"}}},
    {"image_name": "u/i", "dockerfile": "FROM x", "registry_auths": {"ghcr.io": {"username": "u"}}},
    {"image_name": "u/i", "dockerfile": "FROM x", "registry_auths": {"ghcr.io": {"username": "u", "password": ""}}},
    {
        "image_name": "u/i",
        "dockerfile": "FROM x",
        "registry_auths": {"ghcr.io": {"username": "u", "password": "p", "x": 1}},
    },
    {"image_name": "u/i", "dockerfile": "FROM x", "registry_auths": ["ghcr.io"]},
    # GitLab and Bitbucket
    {"image_name": "u/i", "gitlab_project": "group/sub/app", "gitlab_ref": "main", "gitlab_token": "glpat-x"},
    {"image_name": "u/i", "gitlab_project": "123", "gitlab_ref": "v1.0", "context_path": "svc"},
    {"image_name": "u/i", "bitbucket_workspace": "team", "bitbucket_repo": "app", "bitbucket_ref": "main"},
    {
        "image_name": "u/i",
        "bitbucket_workspace": "team",
        "bitbucket_repo": "app",
        "bitbucket_ref": "a" * 40,
        "bitbucket_username": "me",
        "bitbucket_app_password": "secret",
    },
    {"image_name": "u/i", "gitlab_project": "group/app"},
    {"image_name": "u/i", "gitlab_project": "solo", "gitlab_ref": "main"},
    {"image_name": "u/i", "gitlab_project": "../x", "gitlab_ref": "main"},
    {"image_name": "u/i", "gitlab_project": "g/a", "gitlab_ref": "a..b"},
    {"image_name": "u/i", "gitlab_project": "g/a", "gitlab_ref": "main", "github_token": "t"},
    {"image_name": "u/i", "gitlab_project": "g/a", "gitlab_ref": "main", "dockerfile": "FROM x"},
    {"image_name": "u/i", "bitbucket_workspace": "team", "bitbucket_repo": "..", "bitbucket_ref": "main"},
    {"image_name": "u/i", "bitbucket_workspace": "team", "bitbucket_repo": "app"},
    {
        "image_name": "u/i",
        "bitbucket_workspace": "team",
        "bitbucket_repo": "app",
        "bitbucket_ref": "main",
        "bitbucket_app_password": "secret",
    },
    {
        "image_name": "u/i",
        "bitbucket_workspace": "team",
        "bitbucket_repo": "app",
        "bitbucket_ref": "main",
        "gitlab_token": "t",
    },
    {"image_name": "u/i", "tar_url": "https://h/a", "bitbucket_app_password": "secret", "bitbucket_username": "me"},
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_request_schema_accepts_exactly_what_the_validator_accepts(doc, body):
    """schemathesis judges the API by this schema: schema-valid must be accepted, schema-invalid refused."""
    by_schema = schema_validator(doc, "BuildRequest").is_valid(body)
    try:
        validate_build(body, load_settings({}))
        by_server = True
    except BoatyardError:
        by_server = False
    assert by_schema == by_server


def test_multipart_json_part_is_build_fields_without_a_source(doc):
    validator = schema_validator(doc, "BuildFields")
    assert validator.is_valid({"image_name": "u/i", "username": "me"})
    assert not validator.is_valid({"image_name": "u/i", "dockerfile": "FROM x"})
    settings = load_settings({})
    validate_build({"image_name": "u/i", "username": "me"}, settings, archive_supplied=True)
    with pytest.raises(BoatyardError):
        validate_build({"image_name": "u/i", "dockerfile": "FROM x"}, settings, archive_supplied=True)
