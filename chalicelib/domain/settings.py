"""Every setting boatyard reads, from environment variables, in one place.

Defaults work for the local stack (a moto server on 127.0.0.1:5001).  Each entry
point (app.py, the worker, the tools) calls :func:`load_settings` once and hands the
result on (inside :class:`~chalicelib.stores.services.Services`); nothing else reads
``os.environ`` for configuration, and nothing caches it at module level.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

MiB = 1024 * 1024
GiB = 1024 * MiB
# the repository's ui/ folder, next to app.py (served only when BOATYARD_SERVE_UI is true)
_DEFAULT_UI_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "ui")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:  # a bad deployment setting must be loud
        raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """boatyard's configuration; see README.md's configuration table."""

    region: str
    table_name: str
    bucket_name: str
    queue_name: str
    queue_url: str
    kms_key_id: str
    # API limits
    max_inline_bytes: int
    max_dockerfile_bytes: int
    max_upload_bytes: int
    upload_url_ttl_seconds: int
    max_log_response_bytes: int
    job_ttl_days: int
    # jobs and logs
    max_attempts: int
    log_chunk_bytes: int
    log_flush_bytes: int
    log_flush_seconds: float
    log_cap_bytes: int
    queue_timeout_seconds: int
    # worker
    worker_concurrency: int
    visibility_timeout_seconds: int
    heartbeat_seconds: float
    build_timeout_seconds: int
    shutdown_grace_seconds: int
    docker_host: str
    allow_private_urls: bool
    github_archive_base: str
    fetch_timeout_seconds: float
    fetch_deadline_seconds: float
    fetch_min_bytes_per_second: int
    max_context_bytes: int
    max_context_files: int
    max_context_ratio: int
    disk_budget_bytes: int
    work_dir: str
    dlq_name: str
    # static UI served by the API (local stack only)
    serve_ui: bool = False
    ui_dir: str = ""
    # worker: network mode for RUN steps ("" = the daemon's default bridge; "none" builds offline; never "host")
    build_network: str = ""
    # worker: where per-image-name lock files live; every worker process sharing a Docker daemon must use the same one
    image_lock_dir: str = "/tmp/boatyard-image-locks"
    # operations: the origin the API answers CORS for ("*" locally; the UI's CloudFront origin when deployed)
    cors_origin: str = "*"
    # worker: the Stack dimension of its EMF build metrics, and its spot interruption watch (IMDSv2)
    stack_name: str = "local"
    metrics_enabled: bool = True
    spot_watch: bool = False
    imds_url: str = "http://169.254.169.254"
    spot_poll_seconds: float = 5.0
    # the most a build may ask for with its `memory` / `cpus` options (the API refuses more)
    max_build_memory_bytes: int = 4 * GiB
    max_build_cpus: float = 2.0
    # GitHub's REST API (private repositories with a github_token)
    github_api_base: str = "https://api.github.com"
    gitlab_base: str = "https://gitlab.com"  # a self-hosted GitLab's URL
    bitbucket_base: str = "https://bitbucket.org"
    # build engines: which the deployment allows, which a job gets when it asks for none (see worker/build/engines.py)
    allowed_engines: tuple[str, ...] = ("classic", "buildkit")
    default_engine: str = "classic"
    # the Docker CLI that drives BuildKit: the docker.io package's, by path (a newer client may shadow it on PATH)
    docker_cli: str = "/usr/bin/docker"
    # worker: the OCI runtime the daemon must run RUN steps with (its default runtime; see docs/security.md)
    build_runtime: str = "runsc"
    # worker: per-build resource limits (0 = no limit); see worker/build/limits.py
    build_memory_bytes: int = 2 * GiB
    build_memory_swap_bytes: int = 2 * GiB  # memory + swap; equal to memory = no swap
    build_cpu_shares: int = 1024
    build_cpus: float = 1.0
    build_pids_limit: int = 1024
    max_image_bytes: int = 10 * GiB
    # registries on loopback/private/link-local/CGNAT addresses in image_name (local stack and tests only)
    allow_private_registries: bool = False
    # identity (issue 12): "none" = the seed's open API (owner "anonymous"), "keys" = API keys required
    auth_mode: str = "none"
    auth_cache_seconds: int = 30
    # per-owner quotas, enforced in "keys" mode
    quota_live_jobs: int = 10
    quota_submissions_per_minute: int = 30
    quota_outstanding_uploads: int = 10
    # build triggers (issue 14): the KMS key sealing their secrets (the API may decrypt it, only with a trigger_id
    # encryption context), the public base URL of the API for webhook URLs ("" = from the request), limits
    trigger_kms_key_id: str = "alias/boatyard-triggers"
    public_url: str = ""
    hook_max_body_bytes: int = 2 * MiB
    quota_triggers: int = 50
    # notifications (issue 14): their own queue, read by the sender (SQS Lambda deployed, a poller locally)
    notify_queue_name: str = "boatyard-notify"
    notify_queue_url: str = ""
    notify_dlq_name: str = "boatyard-notify-dlq"
    notify_kms_key_id: str = (
        "alias/boatyard"  # seals subscriptions' secrets and tokens (deployed: a key only the sender decrypts)
    )
    # http:// and 127.0.0.1 / ::1 / localhost receivers (test and local stacks only; never deployed)
    allow_loopback_notify_urls: bool = False
    notify_connect_timeout_seconds: float = 3.0
    notify_read_timeout_seconds: float = 10.0  # the whole answer (status line and headers) must come within this
    notify_backoff_base_seconds: float = 30.0  # retry n waits base * 2^(n-1) ...
    notify_backoff_max_seconds: float = 3600.0  # ... at most this long ...
    notify_retry_window_seconds: float = 86400.0  # ... and nothing is tried after this long since the first attempt


ENGINES = ("classic", "buildkit")


def _engines(env: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    """``BOATYARD_ALLOWED_ENGINES`` (comma-separated) and ``BOATYARD_DEFAULT_ENGINE``, checked together."""
    raw = env.get("BOATYARD_ALLOWED_ENGINES", "").strip() or ",".join(ENGINES)
    allowed = tuple(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    unknown = [name for name in allowed if name not in ENGINES]
    if unknown or not allowed:
        raise ValueError(f"setting BOATYARD_ALLOWED_ENGINES must list engines of {', '.join(ENGINES)}, got {raw!r}")
    default = env.get("BOATYARD_DEFAULT_ENGINE", "").strip().lower() or (
        "classic" if "classic" in allowed else allowed[0]
    )
    if default not in allowed:
        raise ValueError(
            f"setting BOATYARD_DEFAULT_ENGINE must be one of the allowed engines {', '.join(allowed)}, got {default!r}"
        )
    return allowed, default


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1"
    queue_name = env.get("BOATYARD_QUEUE_NAME", "boatyard-jobs")
    allowed_engines, default_engine = _engines(env)
    return Settings(
        region=region,
        table_name=env.get("BOATYARD_TABLE", "boatyard-jobs"),
        bucket_name=env.get("BOATYARD_BUCKET", "boatyard-contexts"),
        queue_name=queue_name,
        queue_url=env.get("BOATYARD_QUEUE_URL", ""),
        kms_key_id=env.get("BOATYARD_KMS_KEY_ID", "alias/boatyard"),
        max_inline_bytes=_int(env, "BOATYARD_MAX_INLINE_BYTES", 6 * MiB),
        max_dockerfile_bytes=_int(env, "BOATYARD_MAX_DOCKERFILE_BYTES", 256 * 1024),
        max_upload_bytes=_int(env, "BOATYARD_MAX_UPLOAD_BYTES", 5 * GiB),
        upload_url_ttl_seconds=_int(env, "BOATYARD_UPLOAD_URL_TTL_SECONDS", 3600),
        max_log_response_bytes=_int(env, "BOATYARD_MAX_LOG_RESPONSE_BYTES", 4 * MiB),
        job_ttl_days=_int(env, "BOATYARD_JOB_TTL_DAYS", 30),
        max_attempts=_int(env, "BOATYARD_MAX_ATTEMPTS", 3),
        log_chunk_bytes=_int(env, "BOATYARD_LOG_CHUNK_BYTES", 32 * 1024),
        log_flush_bytes=_int(env, "BOATYARD_LOG_FLUSH_BYTES", 16 * 1024),
        log_flush_seconds=_float(env, "BOATYARD_LOG_FLUSH_SECONDS", 1.0),
        log_cap_bytes=_int(env, "BOATYARD_LOG_CAP_BYTES", 64 * MiB),
        queue_timeout_seconds=_int(env, "BOATYARD_QUEUE_TIMEOUT_SECONDS", 24 * 3600),
        worker_concurrency=_int(env, "BOATYARD_WORKER_CONCURRENCY", 2),
        visibility_timeout_seconds=_int(env, "BOATYARD_VISIBILITY_TIMEOUT_SECONDS", 60),
        heartbeat_seconds=_float(env, "BOATYARD_HEARTBEAT_SECONDS", 20.0),
        build_timeout_seconds=_int(env, "BOATYARD_BUILD_TIMEOUT_SECONDS", 3600),
        shutdown_grace_seconds=_int(env, "BOATYARD_SHUTDOWN_GRACE_SECONDS", 600),
        docker_host=env.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        allow_private_urls=_bool(env, "BOATYARD_ALLOW_PRIVATE_URLS", False),
        github_archive_base=env.get("BOATYARD_GITHUB_ARCHIVE_BASE", "https://github.com").rstrip("/"),
        fetch_timeout_seconds=_float(env, "BOATYARD_FETCH_TIMEOUT_SECONDS", 30.0),
        fetch_deadline_seconds=_float(env, "BOATYARD_FETCH_DEADLINE_SECONDS", 900.0),
        fetch_min_bytes_per_second=_int(env, "BOATYARD_FETCH_MIN_BYTES_PER_SECOND", 16 * 1024),
        max_context_bytes=_int(env, "BOATYARD_MAX_CONTEXT_BYTES", 5 * GiB),
        max_context_files=_int(env, "BOATYARD_MAX_CONTEXT_FILES", 100_000),
        max_context_ratio=_int(env, "BOATYARD_MAX_CONTEXT_RATIO", 200),
        disk_budget_bytes=_int(env, "BOATYARD_DISK_BUDGET_BYTES", 20 * GiB),
        work_dir=env.get("BOATYARD_WORK_DIR", "/tmp/boatyard-work"),
        dlq_name=env.get("BOATYARD_DLQ_NAME", queue_name + "-dlq"),
        serve_ui=_bool(env, "BOATYARD_SERVE_UI", False),
        ui_dir=env.get("BOATYARD_UI_DIR") or _DEFAULT_UI_DIR,
        build_network=_build_network(env),
        build_runtime=_build_runtime(env),
        build_memory_bytes=_int(env, "BOATYARD_BUILD_MEMORY_BYTES", 2 * GiB),
        build_memory_swap_bytes=_int(
            env, "BOATYARD_BUILD_MEMORY_SWAP_BYTES", _int(env, "BOATYARD_BUILD_MEMORY_BYTES", 2 * GiB)
        ),
        build_cpu_shares=_int(env, "BOATYARD_BUILD_CPU_SHARES", 1024),
        build_cpus=_float(env, "BOATYARD_BUILD_CPUS", 1.0),
        build_pids_limit=_int(env, "BOATYARD_BUILD_PIDS_LIMIT", 1024),
        max_image_bytes=_int(env, "BOATYARD_MAX_IMAGE_BYTES", 10 * GiB),
        allow_private_registries=_bool(env, "BOATYARD_ALLOW_PRIVATE_REGISTRIES", False),
        image_lock_dir=env.get("BOATYARD_IMAGE_LOCK_DIR", "/tmp/boatyard-image-locks"),
        cors_origin=env.get("BOATYARD_CORS_ORIGIN", "*").strip() or "*",
        stack_name=env.get("BOATYARD_STACK_NAME", "local").strip() or "local",
        metrics_enabled=_bool(env, "BOATYARD_METRICS", True),
        spot_watch=_bool(env, "BOATYARD_SPOT_WATCH", False),
        imds_url=env.get("BOATYARD_IMDS_URL", "http://169.254.169.254").rstrip("/"),
        spot_poll_seconds=_float(env, "BOATYARD_SPOT_POLL_SECONDS", 5.0),
        max_build_memory_bytes=_int(env, "BOATYARD_MAX_BUILD_MEMORY_BYTES", 4 * GiB),
        max_build_cpus=_float(env, "BOATYARD_MAX_BUILD_CPUS", 2.0),
        github_api_base=env.get("BOATYARD_GITHUB_API_BASE", "https://api.github.com").rstrip("/"),
        gitlab_base=env.get("BOATYARD_GITLAB_BASE", "https://gitlab.com").rstrip("/"),
        bitbucket_base=env.get("BOATYARD_BITBUCKET_BASE", "https://bitbucket.org").rstrip("/"),
        allowed_engines=allowed_engines,
        default_engine=default_engine,
        docker_cli=env.get("BOATYARD_DOCKER_CLI", "").strip() or "/usr/bin/docker",
        auth_mode=_auth_mode(env),
        auth_cache_seconds=_int(env, "BOATYARD_AUTH_CACHE_SECONDS", 30),
        quota_live_jobs=_int(env, "BOATYARD_QUOTA_LIVE_JOBS", 10),
        quota_submissions_per_minute=_int(env, "BOATYARD_QUOTA_SUBMISSIONS_PER_MINUTE", 30),
        quota_outstanding_uploads=_int(env, "BOATYARD_QUOTA_OUTSTANDING_UPLOADS", 10),
        trigger_kms_key_id=env.get("BOATYARD_TRIGGER_KMS_KEY_ID", "").strip() or "alias/boatyard-triggers",
        public_url=env.get("BOATYARD_PUBLIC_URL", "").strip().rstrip("/"),
        hook_max_body_bytes=_int(env, "BOATYARD_HOOK_MAX_BYTES", 2 * MiB),
        quota_triggers=_int(env, "BOATYARD_QUOTA_TRIGGERS", 50),
        notify_queue_name=env.get("BOATYARD_NOTIFY_QUEUE_NAME", "boatyard-notify"),
        notify_queue_url=env.get("BOATYARD_NOTIFY_QUEUE_URL", ""),
        notify_dlq_name=env.get(
            "BOATYARD_NOTIFY_DLQ_NAME", env.get("BOATYARD_NOTIFY_QUEUE_NAME", "boatyard-notify") + "-dlq"
        ),
        notify_kms_key_id=env.get("BOATYARD_NOTIFY_KMS_KEY_ID") or env.get("BOATYARD_KMS_KEY_ID", "alias/boatyard"),
        allow_loopback_notify_urls=_bool(env, "BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS", False),
        notify_connect_timeout_seconds=_float(env, "BOATYARD_NOTIFY_CONNECT_TIMEOUT_SECONDS", 3.0),
        notify_read_timeout_seconds=_float(env, "BOATYARD_NOTIFY_READ_TIMEOUT_SECONDS", 10.0),
        notify_backoff_base_seconds=_float(env, "BOATYARD_NOTIFY_BACKOFF_BASE_SECONDS", 30.0),
        notify_backoff_max_seconds=_float(env, "BOATYARD_NOTIFY_BACKOFF_MAX_SECONDS", 3600.0),
        notify_retry_window_seconds=_float(env, "BOATYARD_NOTIFY_RETRY_WINDOW_SECONDS", 86400.0),
    )


def _build_network(env: Mapping[str, str]) -> str:
    """BOATYARD_BUILD_NETWORK; ``host`` is refused: a RUN step would share the host's network stack."""
    value = env.get("BOATYARD_BUILD_NETWORK", "").strip()
    if value.lower() == "host":
        raise ValueError(
            "setting BOATYARD_BUILD_NETWORK=host is refused: RUN steps would reach everything the host reaches "
            "(its loopback, the instance metadata service); leave it empty for the daemon's bridge or use none"
        )
    return value


def _build_runtime(env: Mapping[str, str]) -> str:
    """BOATYARD_BUILD_RUNTIME: a Docker runtime name such as ``runsc`` (gVisor) or ``runc``."""
    value = env.get("BOATYARD_BUILD_RUNTIME", "").strip() or "runsc"
    if not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"setting BOATYARD_BUILD_RUNTIME must be a Docker runtime name, got {value!r}")
    return value


AUTH_MODES = ("none", "keys")


def _auth_mode(env: Mapping[str, str]) -> str:
    raw = (env.get("BOATYARD_AUTH") or "none").strip().lower()
    if raw not in AUTH_MODES:  # a typo must not silently open the API
        raise ValueError(f"setting BOATYARD_AUTH must be one of {', '.join(AUTH_MODES)}, got {raw!r}")
    return raw
