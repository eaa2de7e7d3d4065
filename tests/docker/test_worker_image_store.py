"""The shared image store (issue 11 item 3) and the build's registry credentials (item 4) — real daemon and registry.

Jobs build to a tag private to the job; the user's name exists on the host only while that
job pushes it under a per-name lock, and is put back as it was; bases are pulled fresh with
the job's own credentials and never the worker user's Docker config; clean-up removes only
the job's own tag, never parents a concurrent build may use as cache.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid

import docker
import pytest

from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.services import stores

pytestmark = pytest.mark.docker

OPERATOR_SECRET = "operator-secret-" + uuid.uuid4().hex[:8]


@pytest.fixture
def two_slots(monkeypatch):
    """Workers made after this run two jobs at once."""
    worker_jobs.set_env(monkeypatch, BOATYARD_WORKER_CONCURRENCY=2)


def _run_all(worker, job_ids: list[str], timeout: float = 240) -> list:
    results = []
    for job_id in job_ids:
        results += worker_jobs.run_until_terminal(worker, job_id, timeout=timeout)
    return results


def _config_digest(registry, repository: str, digest: str) -> str:
    status, body = registry.get(f"/v2/{repository}/manifests/{digest}")
    assert status == 200, body[:300]
    return json.loads(body)["config"]["digest"]


def _run_by_digest(api: docker.APIClient, registry, repository: str, digest: str, command: list[str]) -> str:
    """Pull ``repository@digest`` with the registry's credentials and run ``command`` in it."""
    for message in api.pull(repository, tag=digest, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    name = f"{repository}@{digest}"
    container = api.create_container(name, command=command, host_config=api.create_host_config(network_mode="none"))
    try:
        api.start(container)
        api.wait(container, timeout=60)
        return api.logs(container).decode()
    finally:
        api.remove_container(container, force=True)
        try:
            api.remove_image(name, noprune=True)
        except docker.errors.APIError:
            pass


def _own_base(api: docker.APIClient, registry, base_image: str) -> str:
    """A private base of this test's own in the registry, built FROM the shared one (never touch the shared tag)."""
    name = worker_jobs.image_for(registry.host, "base", "latest")
    repository, _, tag = name.rpartition(":")
    base_repository, _, base_tag = base_image.rpartition(":")
    for message in api.pull(base_repository, tag=base_tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message  # fresh: the shared base's local tag is not ours to rely on
    context = io.BytesIO(
        make_tar({"Dockerfile": f"FROM {base_image}\nRUN echo {uuid.uuid4().hex} > /base-marker\n"}, gz=False)
    )
    for message in api.build(fileobj=context, custom_context=True, tag=name, rm=True, decode=True, network_mode="none"):
        assert "error" not in message, message
    for message in api.push(repository, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    return name


def _base_id(api: docker.APIClient, name: str) -> str | None:
    try:
        return api.inspect_image(name)["Id"]
    except docker.errors.NotFound:
        return None


def test_two_jobs_pushing_one_name_each_push_their_own_bytes(
    two_slots, make_worker, registry, base_image, docker_api, test_password, monkeypatch
):
    image = worker_jobs.image_for(registry.host, "samename")
    repository = image.rpartition(":")[0].split("/", 1)[1]
    jobs = {
        who: worker_jobs.submit(
            image,
            dockerfile=f"FROM {base_image}\nRUN echo {who}-{uuid.uuid4().hex[:6]} > /who\n",
            username=registry.username,
            password=test_password,
        )
        for who in ("first", "second")
    }
    worker = make_worker()
    built: dict[str, str] = {}
    both_built = threading.Barrier(2, timeout=180)
    original = worker.builder.build

    def build_then_wait(context, tag, write, control, **options):  # stands in for Builder.build (its signature)
        image_id = original(context, tag, write, control, **options)
        built[threading.current_thread().name] = image_id
        both_built.wait()  # neither pushes before both are built: the worst interleaving for a shared tag
        return image_id

    monkeypatch.setattr(worker.builder, "build", build_then_wait)
    _run_all(worker, list(jobs.values()))

    digests = {}
    for who, job_id in jobs.items():
        job = stores().jobs.get_job(job_id)
        assert job.status_word == "Finished", worker_jobs.full_log(job_id)
        digests[who] = job.image_digest
    assert digests["first"] != digests["second"]
    config_digests = {_config_digest(registry, repository, d) for d in digests.values()}
    assert config_digests == set(built.values()), "each pushed manifest's config is an image a job built"
    for who, digest in digests.items():
        text = _run_by_digest(docker_api, registry, image.rpartition(":")[0], digest, ["cat", "/who"])
        assert text.startswith(f"{who}-"), (who, text)
        assert digest in worker_jobs.full_log(jobs[who])
    assert docker_api.images(name=image) == [], "the user's name does not stay on the host"


def test_a_job_named_after_a_base_cannot_change_what_from_that_base_gets(
    two_slots, make_worker, registry, base_image, docker_api, test_password
):
    base = _own_base(docker_api, registry, base_image)
    before = _base_id(docker_api, base)
    assert before
    # A hostile job: the base's own name, a wrong password, content that needs no pull.
    hostile = dict(
        dockerfile=None,
        archive=make_tar({"Dockerfile": "FROM scratch\nCOPY evil /evil\n", "evil": "evil\n"}),
        username=registry.username,
        password="wrong-" + uuid.uuid4().hex[:6],
    )
    user = dict(
        dockerfile=f"FROM {base}\nRUN test ! -e /evil && cat /base-marker > /seen\n",
        username=registry.username,
        password=test_password,
    )
    worker = make_worker()
    first_hostile = worker_jobs.submit(base, **hostile)
    _run_all(worker, [first_hostile])
    assert worker_jobs.status(first_hostile).startswith("Failed")
    assert _base_id(docker_api, base) == before, "the base's local tag is what it was"

    later = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "later"), **user
    )  # a later FROM of the base still works
    concurrent = [
        worker_jobs.submit(base, **hostile),
        worker_jobs.submit(worker_jobs.image_for(registry.host, "beside"), **user),
    ]
    _run_all(worker, [later, *concurrent])
    assert worker_jobs.status(concurrent[0]).startswith("Failed")
    for job_id in (later, concurrent[1]):
        assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
    assert _base_id(docker_api, base) == before
    status, _ = registry.get(f"/v2/{base.split('/', 1)[1].rpartition(':')[0]}/manifests/latest")
    assert status == 200


def test_clean_up_leaves_the_cache_of_concurrent_builds_alone(
    two_slots, make_worker, registry, base_image, docker_api, test_password
):
    shared = f"RUN echo shared-{uuid.uuid4().hex[:8]} > /shared\n"
    first = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cache-a"),
        dockerfile=f"FROM {base_image}\n{shared}RUN echo a > /a\n",
        username=registry.username,
        password=test_password,
    )
    worker = make_worker()
    _run_all(worker, [first])
    assert worker_jobs.status(first) == "Finished", worker_jobs.full_log(first)
    # the shared step's image is an untagged parent of the first job's image: clean-up must leave it
    log_text = worker_jobs.full_log(first)
    step_ids = [
        line.split("---> ", 1)[1].strip()
        for line in log_text.splitlines()
        if line.startswith(" ---> ") and "Running in" not in line
    ]
    assert len(step_ids) >= 2, log_text
    shared_step = step_ids[-2]  # the image after the shared RUN
    assert docker_api.inspect_image(shared_step)["Id"]

    second = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cache-b"),
        dockerfile=f"FROM {base_image}\n{shared}RUN echo b > /b\n",
        username=registry.username,
        password=test_password,
    )
    third = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cache-c"),
        dockerfile=f"FROM {base_image}\n{shared}RUN echo c > /c\n",
        username=registry.username,
        password=test_password,
    )
    _run_all(worker, [second, third])
    for job_id in (second, third):
        assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
        assert "Using cache" in worker_jobs.full_log(job_id)


def test_builds_send_only_the_jobs_credentials_never_the_workers_docker_config(
    make_worker, registry, base_image, docker_api, test_password, monkeypatch, tmp_path
):
    base = _own_base(docker_api, registry, base_image)
    docker_api.remove_image(base, noprune=True)  # our own base, gone from the host: FROM must pull it
    # The worker user's Docker config holds an operator credential that opens the registry.
    token = base64.b64encode(f"{registry.username}:{test_password}".encode()).decode()
    other = base64.b64encode(f"operator:{OPERATOR_SECRET}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {registry.host: {"auth": token}, "registry.example.invalid": {"auth": other}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))

    sent: list[dict] = []
    original_post = docker.APIClient._post

    def recording_post(self, url, **kwargs):  # stands in for requests.Session.post
        if url.endswith("/build"):
            header = (kwargs.get("headers") or {}).get("X-Registry-Config")
            sent.append(json.loads(base64.urlsafe_b64decode(header)) if header else {})
        return original_post(self, url, **kwargs)

    monkeypatch.setattr(docker.APIClient, "_post", recording_post)
    worker = make_worker()

    anonymous = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "anon"), dockerfile=f"FROM {base}\nRUN echo anon\n"
    )
    _run_all(worker, [anonymous])
    assert worker_jobs.status(anonymous).startswith("Failed")
    assert "Successfully built" not in worker_jobs.full_log(anonymous), (
        "the private base must not be pulled for a job without credentials"
    )
    assert sent and sent[-1] == {}, "a job without credentials sends none"

    owner = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "owner"),
        dockerfile=f"FROM {base}\nRUN cat /base-marker\n",
        username=registry.username,
        password=test_password,
    )
    _run_all(worker, [owner])
    assert worker_jobs.status(owner) == "Finished", worker_jobs.full_log(
        owner
    )  # a private base with the job's own credentials
    assert set(sent[-1]) == {registry.host}
    assert sent[-1][registry.host]["username"] == registry.username
    assert OPERATOR_SECRET not in json.dumps(sent)
    assert test_password not in worker_jobs.full_log(owner)
