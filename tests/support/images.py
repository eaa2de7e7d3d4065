"""Pull what a build pushed from the test registry and run it: the proof a user's image works."""

from __future__ import annotations

from typing import Any

from tests.support.waiting import wait_until


def pull_and_run(docker: Any, registry, image: str, command: list[str] | None = None, digest: str | None = None) -> str:
    """Pull ``image`` (by ``digest`` when given) with the registry's credentials, run ``command`` (default: the
    image's own) with no network, assert it exits 0 and return its standard output.  The container and the
    pulled image are removed after.  ``docker`` is the daemon's URL (``docker_host``) or a ``docker.APIClient``.

    Pulled by tag, the image must first be gone from the build host: the worker removes the tag it pushed when
    the job ends (waited for here, then asserted), so what runs is the registry's copy, not a leftover of the
    build.  Pulled by digest no tag is involved, so no worker's clean-up of the user's name can touch it.
    """
    import docker as docker_sdk

    api = docker_sdk.APIClient(base_url=docker, timeout=300) if isinstance(docker, str) else docker
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:  # no tag in the name (that colon was a port's)
        repository, tag = image, "latest"
    reference, pull_tag = (f"{repository}@{digest}", digest) if digest else (f"{repository}:{tag}", tag)
    try:
        if not digest:
            wait_until(
                lambda: not api.images(name=reference, quiet=True),
                30,
                f"the worker to remove {reference} from the build host",
            )
        for message in api.pull(repository, tag=pull_tag, auth_config=registry.auth_config, stream=True, decode=True):
            assert "error" not in message, message
        container = api.create_container(reference, command, host_config=api.create_host_config(network_mode="none"))
        try:
            api.start(container)
            code = api.wait(container, timeout=120)["StatusCode"]
            output = api.logs(container, stdout=True, stderr=False).decode()
            assert code == 0, f"{reference} {command or ''} exited {code}: {api.logs(container).decode()[-2000:]}"
        finally:
            api.remove_container(container, force=True)
    finally:
        try:
            api.remove_image(reference, force=True)
        except docker_sdk.errors.ImageNotFound:
            pass
        if isinstance(docker, str):
            api.close()
    return output
