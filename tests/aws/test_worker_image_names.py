"""Image names on the shared build host: once a job is Finished, the worker touches no image name.

A client that pulls the pushed name right after Finished (the e2e tests do, on the same daemon) gets
the image id the job built.  If the worker untagged the job's private tag after that, it could remove
the image's last name under the pull, and the pulled tag would point at a deleted image.
"""

from __future__ import annotations

from chalicelib.domain.jobs import Phase
from tests.support import worker_jobs
from tests.support.services import stores
from worker.job.loop import Worker


class RecordingBuilder:
    """A build and push that succeed at once, recording the job's phase whenever a tag is removed."""

    def __init__(self) -> None:
        self.job_id = ""
        self.removed: list[tuple[str, Phase]] = []

    def build(self, context, image, write, control, registry_auths=None, plan=None) -> str:
        write("Step 1/1 : RUN true\n")
        return "sha256:" + "1" * 64

    def publish(self, image_id, ref, credentials, write, control) -> str:
        return "sha256:" + "2" * 64

    def remove_image(self, image: str) -> None:
        self.removed.append((image, stores().jobs.get_job(self.job_id).phase))

    def keep_disk_budget(self, force: bool = False) -> int:
        return 0


def test_the_private_tag_is_gone_before_finished_is_announced(aws_env, monkeypatch):
    worker_jobs.set_env(
        monkeypatch, BOATYARD_ALLOW_PRIVATE_REGISTRIES="true", DOCKER_HOST="unix:///nonexistent/docker.sock"
    )
    builder = RecordingBuilder()
    builder.job_id = worker_jobs.submit("127.0.0.1:5000/t/names:v1", dockerfile="FROM scratch\n")
    worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600, builder=builder)
    try:
        worker_jobs.run_until_terminal(worker, builder.job_id, timeout=60)
    finally:
        worker.shutdown(grace_seconds=5)
    assert stores().jobs.get_job(builder.job_id).phase == Phase.FINISHED
    assert [image for image, _ in builder.removed] == [f"boatyard.invalid/job/{builder.job_id}:1"]
    assert [phase for _, phase in builder.removed] == [Phase.PUSHING], "the tag was removed after Finished was written"
