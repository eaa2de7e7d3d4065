"""Helpers for the fault, load and bad-input tests (tests/faults): inject faults, count, scan for leaks.

* :func:`report` prints a one-line summary and appends it to ``test-artifacts/faults-report.txt``.
* :class:`PrivateDockerd` runs a Docker daemon of our own (own socket, data root, exec root, no
  bridge) so a test can kill and restart it without disturbing the shared daemon others use.
* :class:`OwnRegistry` is a registry on a free port that a test may stop and start again.
* :func:`inject_aws_errors` makes chosen AWS calls of a boto3 client fail (throttling,
  ``UnprocessedItems``) through botocore's ``before-call`` event.
* :func:`find_secret` and the ``scan_*`` functions look for a secret in the places a leak
  would land: moto's DynamoDB/S3/SQS, log files, the registry's blobs, the Docker daemon.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from devstack import services
from devstack.services import REPO_ROOT, STATE_DIR, Registry

REPORT_PATH = REPO_ROOT / "test-artifacts" / "faults-report.txt"
LEAKS_PATH = REPO_ROOT / "test-artifacts" / "faults-leaks.jsonl"
_REPORT_LOCK = threading.Lock()


# --- reporting -------------------------------------------------------------------------------


def report(line: str) -> str:
    """Print a one-line summary and append it (time-stamped) to the faults report."""
    line = " ".join(line.split())
    print(line, flush=True)
    with _REPORT_LOCK:
        REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
        with open(REPORT_PATH, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
    return line


def record_leaks(where: str, findings: list[str]) -> None:
    """Remember leak findings of a scan that ran in a fixture's teardown (the last test reads them)."""
    LEAKS_PATH.parent.mkdir(parents=True, exist_ok=True)
    with _REPORT_LOCK, open(LEAKS_PATH, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"where": where, "findings": findings, "at": time.time()}) + "\n")


def recorded_leaks(since: float = 0.0) -> list[dict[str, Any]]:
    """Leak findings recorded by :func:`record_leaks` after ``since`` (epoch seconds)."""
    if not LEAKS_PATH.exists():
        return []
    out = []
    for line in LEAKS_PATH.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("at", 0) >= since:
            out.append(entry)
    return out


# --- finding a secret in bytes ---------------------------------------------------------------


def _variants(secret: str) -> list[bytes]:
    """The secret as it could appear: plain, JSON-escaped, base64 of user:password is checked separately."""
    raw = secret.encode("utf-8")
    escaped = json.dumps(secret)[1:-1].encode("utf-8")
    return sorted({raw, escaped})


def _expand(data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """``data`` and, when it is gzip/zlib or a tar, what it holds (a few levels deep)."""
    yield "", data
    if depth > 3 or not data:
        return
    if data[:2] == b"\x1f\x8b":
        try:
            inner = gzip.GzipFile(fileobj=io.BytesIO(data)).read(64 * 1024 * 1024)
        except (OSError, EOFError, zlib.error):
            inner = b""
        for where, chunk in _expand(inner, depth + 1):
            yield f"gunzip{'/' + where if where else ''}", chunk
        return
    if len(data) >= 512 and (data[257:262] == b"ustar" or _looks_like_tar(data)):
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar:
                    yield (
                        f"tar:{member.name}:name",
                        member.name.encode("utf-8", "replace") + member.linkname.encode("utf-8", "replace"),
                    )
                    if member.isfile() and member.size <= 16 * 1024 * 1024:
                        handle = tar.extractfile(member)
                        if handle is not None:
                            for where, chunk in _expand(handle.read(), depth + 1):
                                yield f"tar:{member.name}{'/' + where if where else ''}", chunk
        except (tarfile.TarError, OSError, EOFError):
            return


def _looks_like_tar(data: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(data[:10240] + b"\0" * 1024), mode="r:"):
            return True
    except (tarfile.TarError, OSError, EOFError):
        return False


def find_secret(data: bytes | str, secret: str) -> list[str]:
    """Where (if anywhere) the secret occurs in ``data`` or in archives it holds."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    hits = []
    variants = _variants(secret)
    for where, chunk in _expand(data):
        if any(v in chunk for v in variants):
            hits.append(where or "(raw)")
    return hits


# --- scanning the places a leak would land --------------------------------------------------


def aws_client(service: str, endpoint: str | None) -> Any:
    """A boto3 client of ``service`` on a moto server (``endpoint``), or in-process ``mock_aws`` when None."""
    import boto3
    from botocore.config import Config

    session: Any = boto3.session.Session()  # any service by name (the stubs type each literal name)
    return session.client(
        service,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=30),
    )


def scan_table_items(endpoint: str | None, table: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every DynamoDB item (raw attribute values) of every table (or one) on the endpoint."""
    ddb = aws_client("dynamodb", endpoint)
    tables = [table] if table else ddb.list_tables().get("TableNames", [])
    for name in tables:
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            page = ddb.scan(**kwargs)
            for item in page.get("Items", []):
                yield name, item
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_aws(endpoint: str | None, secret: str, include_sqs: bool = True) -> list[str]:
    """Findings of ``secret`` in DynamoDB items, S3 objects and SQS messages (and moto's model dump).

    ``endpoint`` None means the in-process ``mock_aws``.  Reading SQS messages makes them
    invisible for a moment; call it when no worker runs any more.
    """
    findings = _scan_dynamodb(endpoint, secret) + _scan_s3(endpoint, secret)
    if include_sqs:
        findings += _scan_sqs(endpoint, secret)
    if endpoint:
        findings += _scan_moto_dump(endpoint, secret)
    return findings


def _scan_dynamodb(endpoint: str | None, secret: str) -> list[str]:
    findings: list[str] = []
    for table, item in scan_table_items(endpoint):
        text = json.dumps(item, sort_keys=True)
        if find_secret(text, secret):
            findings.append(f"dynamodb {table} item {item.get('pk', {}).get('S')}/{item.get('sk', {}).get('S')}")
    return findings


def _scan_s3(endpoint: str | None, secret: str) -> list[str]:
    findings: list[str] = []
    s3 = aws_client("s3", endpoint)
    for bucket in s3.list_buckets().get("Buckets", []):
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                for where in find_secret(body, secret):
                    findings.append(f"s3://{bucket['Name']}/{obj['Key']} {where}")
    return findings


def _scan_sqs(endpoint: str | None, secret: str) -> list[str]:
    findings: list[str] = []
    sqs = aws_client("sqs", endpoint)
    for url in sqs.list_queues().get("QueueUrls", []):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            if find_secret(message.get("Body", ""), secret):
                findings.append(f"sqs {url} message {message.get('MessageId')}")
    return findings


def _scan_moto_dump(endpoint: str, secret: str) -> list[str]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as answer:
            dump = answer.read()
    except OSError:
        return []
    return [f"{endpoint}/moto-api/data.json (moto's model dump)"] if find_secret(dump, secret) else []


def without_user_instructions(doc: Any) -> Any:
    """An image config / inspect / history document minus what the user's own Dockerfile wrote.

    A Dockerfile that itself contains a secret (``RUN echo <password>``, as the redaction tests
    do on purpose) puts it in the image's history ``created_by`` and the classic builder's
    ``ContainerConfig.Cmd``: that is the user's text, not a leak by boatyard.  Everything else
    (``Env``, ``Labels``, auth, ``Comment``, ...) is still scanned.
    """
    if isinstance(doc, list):  # docker history
        return [{k: v for k, v in e.items() if k != "CreatedBy"} if isinstance(e, dict) else e for e in doc]
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    if isinstance(out.get("history"), list):
        out["history"] = [
            {k: v for k, v in h.items() if k != "created_by"} for h in out["history"] if isinstance(h, dict)
        ]
    for key in ("container_config", "ContainerConfig"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k != "Cmd"}
    return out


def _image_config(data: bytes) -> Any | None:
    if not data[:1] == b"{" or len(data) > 4 * 1024 * 1024:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "rootfs" in doc and "history" in doc else None


def scan_files(paths: Iterable[Path], secret: str, max_bytes: int = 64 * 1024 * 1024) -> list[str]:
    """Findings of ``secret`` in files (recursively for folders), archives unpacked."""
    findings = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            continue
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
        for path in files:
            try:
                if path.stat().st_size > max_bytes:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            config = _image_config(data)
            if config is not None:  # a registry's image config blob: the user's own instructions do not count
                data = json.dumps(without_user_instructions(config)).encode()
            for where in find_secret(data, secret):
                findings.append(f"{path} {where}")
    return findings


def scan_docker(docker_host: str, secret: str, repo_prefixes: tuple[str, ...] = ("127.0.0.1:",)) -> list[str]:
    """Findings in ``docker info``, and the config/history/labels/env of images under the prefixes."""
    import docker

    api = docker.APIClient(base_url=docker_host, timeout=60)
    findings = []
    if find_secret(json.dumps(api.info()), secret):
        findings.append(f"docker info of {docker_host}")
    for image in api.images(all=True):
        tags = image.get("RepoTags") or []
        if repo_prefixes and tags and not any(t.startswith(repo_prefixes) for t in tags):
            continue
        inspected = without_user_instructions(api.inspect_image(image["Id"]))
        history = without_user_instructions(api.history(image["Id"]))
        if find_secret(json.dumps(inspected), secret) or find_secret(json.dumps(history), secret):
            findings.append(f"docker image {tags or image['Id']} (inspect/history)")
    for container in api.containers(all=True):
        if find_secret(json.dumps(api.inspect_container(container["Id"])), secret):
            findings.append(f"docker container {container['Id'][:12]}")
    return findings


def docker_client_config_files() -> list[Path]:
    """The Docker client configuration files a login could have written to."""
    home = Path(os.path.expanduser("~"))
    candidates = [home / ".docker" / "config.json", Path("/root/.docker/config.json"), Path("/etc/docker/daemon.json")]
    if os.environ.get("DOCKER_CONFIG"):
        candidates.append(Path(os.environ["DOCKER_CONFIG"]) / "config.json")
    return [p for p in candidates if p.exists()]


def scan_registry_auths(secret: str, username: str) -> list[str]:
    """Base64 ``user:password`` (what ``docker login`` writes) in the client config files."""
    import base64

    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    findings = []
    for path in docker_client_config_files():
        text = path.read_text(errors="replace")
        if token in text or secret in text:
            findings.append(f"{path} (registry credentials)")
    return findings


# --- counting in the registry ----------------------------------------------------------------


def registry_tags(registry: Registry, repository: str) -> list[str]:
    """The tags of ``repository`` in the registry (all pages); [] when it has none."""
    tags: list[str] = []
    path = f"/v2/{repository}/tags/list?n=1000"
    while path:
        status, body = registry.get(path)
        if status == 404:
            return tags
        if status != 200:
            raise AssertionError(f"registry answered {status} to {path}: {body[:300]!r}")
        tags.extend(json.loads(body).get("tags") or [])
        path = ""  # the registry answers a Link header for more; 1000 per page is enough here
    return tags


# --- a Docker daemon of our own --------------------------------------------------------------


class PrivateDockerd:
    """A ``dockerd`` with its own socket, data and exec roots and its own bridge (``byfaults0``).

    A test may kill and restart it without touching the daemon everyone else uses.
    Never start it with ``--bridge none``: dockerd then *deletes the host's docker0*
    (moby's initNetworkController calls removeDefaultBridgeInterface), which breaks
    every build of the shared daemon.  Its own bridge, created here, avoids that;
    ``--iptables=false`` keeps it away from the host's firewall rules.
    """

    BRIDGE = "byfaults0"
    BRIDGE_CIDR = "10.213.77.1/24"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or STATE_DIR / "faults-dockerd")
        self.sock = self.root / "docker.sock"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._made_bridge = False

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` URL of this daemon."""
        return f"unix://{self.sock}"

    @staticmethod
    def available() -> str | None:
        """None when a private daemon can be started here, else why not."""
        if os.geteuid() != 0:
            return "starting a private dockerd needs root"
        if not shutil.which("dockerd"):
            return "no dockerd binary (Debian package docker.io)"
        return None

    def start(self, timeout: float = 60.0) -> PrivateDockerd:
        """Start the daemon and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure_bridge()
        argv = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "docker.pid"),
            "--bridge",
            self.BRIDGE,
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--cgroup-parent",
            "/boatyard-faults",
        ]
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if services.docker_answers(self.host):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        raise services.ServiceError(f"the private dockerd did not start; its log ends:\n{tail}")

    def _ensure_bridge(self) -> None:
        if subprocess.run(["ip", "link", "show", self.BRIDGE], capture_output=True).returncode == 0:
            return
        for argv in (
            ["ip", "link", "add", self.BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", self.BRIDGE_CIDR, "dev", self.BRIDGE],
            ["ip", "link", "set", self.BRIDGE, "up"],
        ):
            subprocess.run(argv, check=True, capture_output=True)
        self._made_bridge = True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill this daemon (SIGKILL by default: a crash) and wait until it is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        # a crashed dockerd's containerd either dies with it or keeps running (the next dockerd adopts it);
        # never signal it: a containerd caught half-way through stopping makes the next dockerd time out
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            try:
                os.kill(int(pidfile.read_text().strip()), 0)
            except (ValueError, ProcessLookupError, OSError):
                break
            time.sleep(0.2)
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()

    def restart(self, sig: int = signal.SIGKILL) -> None:
        """Kill and start again (same data root: images survive)."""
        self.kill(sig)
        self.start()

    def stop(self) -> None:
        """Stop gracefully, and remove the bridge if this object created it."""
        self.kill(signal.SIGTERM)
        if self._made_bridge:
            subprocess.run(["ip", "link", "del", self.BRIDGE], capture_output=True)
            self._made_bridge = False

    def load_image(self, image: str, from_host: str) -> None:
        """Copy ``image`` from another daemon (``docker save | docker load``): no registry pull needed."""
        import docker

        source = docker.APIClient(base_url=from_host, timeout=300)
        target = docker.APIClient(base_url=self.host, timeout=300)
        data = b"".join(source.get_image(image))
        list(target.load_image(data))
        if not target.images(name=image):
            raise services.ServiceError(f"loading {image} into the private dockerd failed")


# --- a registry of our own -------------------------------------------------------------------


@dataclasses.dataclass
class OwnRegistry:
    """A registry on a port of its own that a test may stop (down during a push) and start again."""

    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    registry: Registry | None = None

    def start(self) -> Registry:
        """Start (or find running) and return the registry."""
        self.registry = services.ensure_registry(self.port, self.username, self.password)
        return self.registry

    def _pid(self) -> int | None:
        pidfile = services.registry_state_dir(self.port) / "pid"
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the registry process this object started; wait until the port is closed."""
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and services.port_open("127.0.0.1", self.port):
            time.sleep(0.1)
        if services.port_open("127.0.0.1", self.port):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        (services.registry_state_dir(self.port) / "pid").unlink(missing_ok=True)


# --- AWS faults ------------------------------------------------------------------------------


@dataclasses.dataclass
class InjectedFaults:
    """What :func:`inject_aws_errors` did: how many calls it saw and how many it broke."""

    seen: int = 0
    injected: int = 0
    operations: list[str] = dataclasses.field(default_factory=list)


def _error_response(code: str, status: int, message: str) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    http = AWSResponse("https://fault.invalid/", status, HTTPHeaders(), None)
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected-fault", "HTTPHeaders": {}},
    }
    return http, parsed


@contextlib.contextmanager
def inject_aws_errors(
    client: Any,
    operations: Iterable[str],
    code: str = "ProvisionedThroughputExceededException",
    status: int = 400,
    times: int | None = None,
    every: int = 1,
    unprocessed: bool = False,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[InjectedFaults]:
    """Make ``operations`` (e.g. ``dynamodb.BatchWriteItem``) of ``client`` fail.

    The error is answered in botocore's ``before-call`` event, which skips the
    HTTP request and botocore's own retries: the caller sees the error as it
    would after retries ran out.  ``times`` limits how many calls fail (None:
    all); ``every`` breaks one call in ``every``.  With ``unprocessed`` a
    BatchWriteItem answers 200 with every request item back in ``UnprocessedItems``.
    """
    stats = InjectedFaults()
    lock = threading.Lock()

    def handler(model: Any = None, params: dict[str, Any] | None = None, **_: Any) -> Any:
        with lock:
            if predicate is not None and not predicate(params or {}):
                return None
            stats.seen += 1
            if times is not None and stats.injected >= times:
                return None
            if (stats.seen - 1) % every != 0:
                return None
            stats.injected += 1
            stats.operations.append(getattr(model, "name", "?"))
        if unprocessed:
            from botocore.awsrequest import AWSResponse, HTTPHeaders

            # ``params`` is the serialised request here: the items are in its JSON body
            body = (params or {}).get("body") or b"{}"
            items = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body).get("RequestItems", {})
            if not items:
                raise AssertionError("inject_aws_errors(unprocessed=True) found no RequestItems to hand back")
            return AWSResponse("https://fault.invalid/", 200, HTTPHeaders(), None), {
                "UnprocessedItems": items,
                "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "injected-fault", "HTTPHeaders": {}},
            }
        return _error_response(code, status, f"injected fault: {code}")

    events = [f"before-call.{op}" for op in operations]
    for event in events:
        client.meta.events.register(event, handler, unique_id=f"faults-{id(stats)}-{event}")
    try:
        yield stats
    finally:
        for event in events:
            client.meta.events.unregister(event, unique_id=f"faults-{id(stats)}-{event}")
