"""The layer cache on a shared build host, both engines, real daemon and registry: one owner's repeated builds
reuse their layers; another owner's build of the same Dockerfile never gets them (issue 18, docs/security.md)."""

from __future__ import annotations

import io
import re
import tarfile
import uuid

import docker
import pytest

from tests.support import worker_jobs

pytestmark = pytest.mark.docker

ENGINES = ("classic", "buildkit")


@pytest.fixture
def as_owner(monkeypatch):
    """Set who the worker thinks owns the next job (the runner asks ``owner_of``)."""
    import worker.job.runner

    current = {"name": "anonymous"}
    monkeypatch.setattr(worker.job.runner, "owner_of", lambda job: current["name"])

    def set_owner(name: str) -> None:
        current["name"] = name

    return set_owner


def _random_value_dockerfile(base_image: str, nonce: str) -> str:
    """A RUN whose result is random: reusing its layer is the only way two builds can hold the same value."""
    return (
        f"FROM {base_image}\n"
        f"RUN echo {nonce}-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n') > /value\n"
        'CMD ["cat", "/value"]\n'
    )


def _build(make_worker, registry, password: str, dockerfile: str, engine: str, name: str, **kw) -> tuple[str, str, str]:
    image = worker_jobs.image_for(registry.host, name)
    job_id = worker_jobs.submit(
        image, dockerfile=dockerfile, username=registry.username, password=password, engine=engine, **kw
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    log = worker_jobs.full_log(job_id)
    assert worker_jobs.status(job_id) == "Finished", log
    return job_id, image, log


def _image_bytes(api: docker.APIClient, image: str, registry) -> bytes:
    """Every file of every layer of the pushed image, and its config, as one blob (pulled back, then removed)."""
    repository, _, tag = image.rpartition(":")
    for message in api.pull(repository, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    try:
        saved = b"".join(api.get_image(image))
    finally:
        api.remove_image(image)
    blobs = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer:
            data = _member_bytes(outer, member) if member.isfile() else b""
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer:
                        if entry.isfile():
                            blobs.append(_member_bytes(layer, entry))
            else:
                blobs.append(data)
    return b"\n".join(blobs)


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    content = tar.extractfile(member)
    assert content is not None, f"{member.name} is a regular file"
    return content.read()


def _value(blob: bytes, nonce: str) -> str:
    found = set(re.findall(rf"{nonce}-[0-9a-f]{{24}}".encode(), blob))
    assert len(found) == 1, found
    return found.pop().decode()


def _reused(log: str, engine: str) -> bool:
    """Whether the build's RUN step came from the layer cache, in the engine's own words."""
    if engine == "classic":
        # the RUN step's own lines only: the owner's ARG step before it is cached by any earlier build of that owner
        run = re.search(r"^Step \d+/\d+ : RUN .*?(?=^Step \d+/\d+ : |\Z)", log, re.MULTILINE | re.DOTALL)
        assert run, log
        return " ---> Using cache" in run.group(0)
    run = re.search(r"^#(\d+) \[[^\]]*\] RUN ", log, re.MULTILINE)
    assert run, log
    return re.search(rf"^#{run.group(1)} CACHED$", log, re.MULTILINE) is not None


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_owners_rebuild_reuses_its_layers(
    engine, make_worker, registry, base_image, docker_api, test_password, as_owner
):
    nonce = uuid.uuid4().hex[:10]
    dockerfile = _random_value_dockerfile(base_image, nonce)
    as_owner("alice")
    _, first, first_log = _build(make_worker, registry, test_password, dockerfile, engine, f"lc-{engine}-a1")
    _, second, second_log = _build(make_worker, registry, test_password, dockerfile, engine, f"lc-{engine}-a2")
    assert not _reused(first_log, engine), first_log
    assert _reused(second_log, engine), second_log  # the check the other-owner test relies on can fail
    assert _value(_image_bytes(docker_api, second, registry), nonce) == _value(
        _image_bytes(docker_api, first, registry), nonce
    )
    if engine == "classic":
        assert "ARG BOATYARD_CACHE_SCOPE" in first_log
    else:
        assert "layer cache kept to this owner: each RUN step (1)" in first_log


@pytest.mark.parametrize("engine", ENGINES)
def test_another_owners_build_never_reuses_a_layer_built_for_someone_else(
    engine, make_worker, registry, base_image, docker_api, test_password, as_owner
):
    nonce = uuid.uuid4().hex[:10]
    dockerfile = _random_value_dockerfile(base_image, nonce)  # byte for byte the same Dockerfile for both owners
    as_owner("alice")
    _, alice_image, _ = _build(make_worker, registry, test_password, dockerfile, engine, f"lc-{engine}-alice")
    alice_value = _value(_image_bytes(docker_api, alice_image, registry), nonce)
    as_owner("bob")
    _, bob_image, bob_log = _build(make_worker, registry, test_password, dockerfile, engine, f"lc-{engine}-bob")
    bob_blob = _image_bytes(docker_api, bob_image, registry)
    assert alice_value.encode() not in bob_blob, "bob's image holds the value alice's build wrote"
    assert _value(bob_blob, nonce) != alice_value
    assert not _reused(bob_log, engine), bob_log


def _forget_local_cache(api: docker.APIClient, nonce: str) -> None:
    """Remove this host's BuildKit cache records of the steps that mention ``nonce`` (only the ones this test made)."""
    mine = [record["ID"] for record in api.df().get("BuildCache") or [] if nonce in (record.get("Description") or "")]
    assert mine, "the first build left cache records on this host"
    for record_id in mine:
        api.prune_builds(filters={"id": [record_id]})  # type: ignore[arg-type]  # the stubs know only dangling/until; the Engine API takes id
    left = [record["ID"] for record in api.df().get("BuildCache") or [] if nonce in (record.get("Description") or "")]
    assert left == [], "the host still holds the first build's cache (an image still uses it?)"


def test_cache_from_lets_a_host_without_the_cache_reuse_the_pushed_layers(
    make_worker, registry, base_image, docker_api, test_password, as_owner
):
    nonce = uuid.uuid4().hex[:10]
    dockerfile = _random_value_dockerfile(base_image, nonce)
    as_owner("alice")
    _, first, first_log = _build(make_worker, registry, test_password, dockerfile, "buildkit", "lc-from-1")
    assert not _reused(first_log, "buildkit"), first_log
    pushed_value = _value(_image_bytes(docker_api, first, registry), nonce)  # pulled back, then removed from the host
    _forget_local_cache(docker_api, nonce)  # now this host is as fresh as a new one for this Dockerfile
    _, second, second_log = _build(
        make_worker, registry, test_password, dockerfile, "", "lc-from-2", options={"cache_from": [first]}
    )
    assert "[boatyard] engine: buildkit (the job has cache_from images)" in second_log
    assert _reused(second_log, "buildkit"), second_log  # "#N CACHED": the RUN step came from the registry
    assert _value(_image_bytes(docker_api, second, registry), nonce) == pushed_value
