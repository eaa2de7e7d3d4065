"""SSRF: tar URLs that point (directly, by a numeric trick, by a name or by a redirect) at
loopback, private, CGNAT or cloud-metadata addresses are refused with a clear ``Failed: ...``.

Everything runs in this process: the API and a worker against moto, with
``allow_private_urls`` false (production).  A network shim records every TCP
connection the worker opens and lets through only connections to 127.0.0.1, so no
case can reach a real address even if the guard broke.  Servers that *would*
answer with a valid build context listen on 127.0.0.1, so a broken guard turns
into a download that succeeds, which the tests see.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection

from devstack.archive_server import make_tar_gz
from tests.support.canary import TEST_PASSWORD
from tests.support.faults import report
from tests.support.services import stores

GOOD_ARCHIVE = make_tar_gz({"Dockerfile": "FROM scratch\nCOPY x /x\n", "x": "ssrf canary\n"})
FAKE_PUBLIC_IP = "93.184.215.14"  # a globally routable address; the shim maps it to a local server
REAL_GETADDRINFO = socket.getaddrinfo


class Server:
    """A local HTTP server: /ctx.tar.gz answers a valid archive, /redirect?to=URL answers 302."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                if self.path.startswith("/redirect"):
                    target = urllib.parse.unquote(self.path.split("to=", 1)[1])
                    self.send_response(302)
                    self.send_header("Location", urllib3.util.parse_url(target).url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(GOOD_ARCHIVE)))
                self.end_headers()
                self.wfile.write(GOOD_ARCHIVE)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


class Network:
    """Test-only resolver and connector: fake names, a fake public host, and a record of connections."""

    def __init__(self, public_port: int) -> None:
        self.names = {
            "internal.faults.test": "10.1.2.3",
            "metadata.faults.test": "169.254.169.254",
            "cgnat.faults.test": "100.64.0.1",
            "loopback.faults.test": "127.0.0.1",
            "public.faults.test": FAKE_PUBLIC_IP,
        }
        self.public_port = public_port
        self.connections: list[tuple[str, int]] = []

    def getaddrinfo(self, host, port, *args, **kwargs):  # socket.getaddrinfo's signature
        if isinstance(host, str) and host in self.names:
            return REAL_GETADDRINFO(self.names[host], port, *args, **kwargs)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    def create_connection(self, address, *args, **kwargs):
        host, port = address[0], address[1]
        self.connections.append((host, port))
        if host == FAKE_PUBLIC_IP:
            return REAL_CONNECT(("127.0.0.1", self.public_port), *args, **kwargs)
        if host not in ("127.0.0.1", "localhost"):
            raise OSError(f"test network: connection to {host}:{port} blocked (nothing leaves this machine)")
        return REAL_CONNECT(address, *args, **kwargs)

    def touched_private(self) -> list[tuple[str, int]]:
        return [c for c in self.connections if c[0] != FAKE_PUBLIC_IP]


REAL_CONNECT = urllib3.util.connection.create_connection


@pytest.fixture
def network(server, monkeypatch) -> Iterator[Network]:
    """Install the shim.  Also switch off moto's ``responses`` patch of requests' HTTPAdapter.send for the
    test: in process it answers http://169.254.169.254/ itself (moto mocks instance metadata) *before*
    the worker's guarding adapter runs, which would hide what the guard does."""
    from moto.core.models import responses_mock

    net = Network(server.port)
    monkeypatch.setattr(socket, "getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", net.create_connection)
    responses_mock.stop(allow_assert=False)
    yield net
    responses_mock.start()


def direct_cases(port: int) -> list[tuple[str, str]]:
    """(case, URL) that reach a private address without any redirect."""
    p = port
    return [
        ("loopback", f"http://127.0.0.1:{p}/ctx.tar.gz"),
        ("cloud metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        ("IPv4-mapped IPv6 metadata", "http://[::ffff:169.254.169.254]/latest/meta-data/"),
        ("IPv4-mapped IPv6 loopback", f"http://[::ffff:127.0.0.1]:{p}/ctx.tar.gz"),
        ("CGNAT", "http://100.64.0.1/ctx.tar.gz"),
        ("decimal loopback", f"http://2130706433:{p}/ctx.tar.gz"),
        ("octal loopback", f"http://0177.0.0.1:{p}/ctx.tar.gz"),
        ("hex loopback", f"http://0x7f000001:{p}/ctx.tar.gz"),
        ("dotted hex loopback", f"http://0x7f.0x0.0x0.0x1:{p}/ctx.tar.gz"),
        ("short loopback", f"http://127.1:{p}/ctx.tar.gz"),
        ("decimal metadata", "http://2852039166/latest/meta-data/"),
        ("IPv6 loopback", f"http://[::1]:{p}/ctx.tar.gz"),
        ("unspecified", f"http://0.0.0.0:{p}/ctx.tar.gz"),
        ("private 10/8", "http://10.0.0.1/ctx.tar.gz"),
        ("private 172.16/12", "http://172.16.0.1/ctx.tar.gz"),
        ("private 192.168/16", "http://192.168.1.1/ctx.tar.gz"),
        ("IPv6 unique local", "http://[fd00::1]/ctx.tar.gz"),
        ("IPv6 link-local", "http://[fe80::1]/ctx.tar.gz"),
        ("localhost name", f"http://localhost:{p}/ctx.tar.gz"),
        ("name resolving to 10/8", f"http://internal.faults.test:{p}/ctx.tar.gz"),
        ("name resolving to metadata", "http://metadata.faults.test/latest/meta-data/"),
        ("name resolving to CGNAT", "http://cgnat.faults.test/ctx.tar.gz"),
        ("name resolving to loopback", f"http://loopback.faults.test:{p}/ctx.tar.gz"),
        ("https to loopback", f"https://127.0.0.1:{p}/ctx.tar.gz"),
    ]


def redirect_targets(port: int) -> list[tuple[str, str]]:
    """(case, URL) a public server redirects to."""
    return [
        ("redirect to loopback", f"http://127.0.0.1:{port}/ctx.tar.gz"),
        ("redirect to metadata", "http://169.254.169.254/latest/meta-data/"),
        ("redirect to mapped metadata", "http://[::ffff:169.254.169.254]/latest/meta-data/"),
        ("redirect to a private name", f"http://internal.faults.test:{port}/ctx.tar.gz"),
        ("redirect to localhost", f"http://localhost:{port}/ctx.tar.gz"),
        ("redirect to decimal loopback", f"http://2130706433:{port}/ctx.tar.gz"),
    ]


def _build(url: str) -> dict:
    return {
        "image_name": "registry.example.com/faults/ssrf:1",
        "tar_url": url,
        "username": "u",
        "password": TEST_PASSWORD,
        "email": "e@example.com",
    }


def _refusal_ok(status: dict) -> bool:
    text = status["Status"]
    return text.startswith("Failed: ") and "refused" in text.lower() and status.get("Phase") == "failed"


def test_guard_lets_a_public_host_through(inproc, server, network):
    """The control case: through the fake public host the same archive is fetched (so the refusals below mean something)."""
    from worker.job.control import JobControl
    from worker.sources import fetch_context

    harness = inproc(BOATYARD_ALLOW_PRIVATE_URLS="false")
    job_id = harness.submit(_build(f"http://public.faults.test:{server.port}/ctx.tar.gz"))
    out = io.BytesIO()
    stats = fetch_context(stores().jobs.get_job(job_id), out, stores(), JobControl())
    assert stats.files == 2 and out.getvalue()
    assert network.connections == [(FAKE_PUBLIC_IP, server.port)]


def test_private_targets_are_refused_with_a_clear_status(inproc, server, network):
    """Each URL goes through the API (which may already refuse it with a 400) and, bypassing the API,
    straight to the worker, whose guard must refuse it on its own."""
    harness = inproc(BOATYARD_ALLOW_PRIVATE_URLS="false")
    cases = direct_cases(server.port)
    cases += [
        (name, f"http://public.faults.test:{server.port}/redirect?to={target}")
        for name, target in redirect_targets(server.port)
    ]
    api_refused, api_jobs, worker_jobs = {}, {}, {}
    for name, url in cases:
        code, body = harness.try_submit(_build(url))
        if code == 202:
            api_jobs[name] = body["JobIdentifier"]
        else:
            api_refused[name] = (code, body)
        worker_jobs[name] = harness.enqueue_direct(
            "registry.example.com/faults/ssrf:1", "tar_url", {"tar_url": url}, "u", TEST_PASSWORD
        )
    harness.run_queue(rounds=2 * len(cases) + 5)
    wrong = []
    for name, (code, body) in api_refused.items():
        if code != 400 or set(body) != {"Code", "Message"} or "tar_url" not in body["Message"]:
            wrong.append(f"{name}: API answered {code} {body}")
    for name, job_id in [*api_jobs.items(), *[(f"{n} (direct)", j) for n, j in worker_jobs.items()]]:
        status = harness.status(job_id)
        if not _refusal_ok(status):
            wrong.append(f"{name}: {status['Status']!r}")
    served = [h for h in server.hits if not h.startswith("/redirect")]
    private = network.touched_private()
    line = report(
        f"SSRF: {len(cases)} tar URLs to private/metadata/CGNAT/numeric/named/redirected targets: "
        f"{len(api_refused)} refused by the API with 400, {len(api_jobs)} accepted and then refused by the worker, "
        f"{len(worker_jobs)} sent straight to the worker all refused = {len(wrong) == 0}; {len(wrong)} wrong, "
        f"{len(private)} connections to a private address, {len(served)} archives served"
    )
    assert not wrong, line + "\n" + "\n".join(wrong)
    assert not private and not served, f"{line}: {private} {served}"
    example = harness.status(worker_jobs["cloud metadata"])["Status"]
    assert "169.254.169.254" in example and "link-local" in example, example
    redirected = harness.status(worker_jobs["redirect to metadata"])["Status"]
    assert "169.254.169.254" in redirected, redirected
    assert {r.outcome.value for r in harness.results} == {"failed"}, [r.outcome for r in harness.results]
    everything = [*api_jobs.values(), *worker_jobs.values()]
    assert TEST_PASSWORD not in "".join(harness.status(j)["Status"] + harness.logs(j) for j in everything)


def test_dev_mode_still_refuses_metadata_even_after_a_redirect(inproc, server, network):
    """allow_private_urls (local stack only) lets loopback through, never link-local metadata."""
    harness = inproc(BOATYARD_ALLOW_PRIVATE_URLS="true")
    cases = {
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "mapped metadata": "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "decimal metadata": "http://2852039166/latest/meta-data/",
        "named metadata": "http://metadata.faults.test/latest/meta-data/",
        "loopback redirect to metadata": f"http://127.0.0.1:{server.port}/redirect?to=http://169.254.169.254/latest/",
    }
    jobs = {
        name: harness.enqueue_direct("registry.example.com/faults/ssrf:1", "tar_url", {"tar_url": url})
        for name, url in cases.items()
    }
    harness.run_queue(rounds=10)
    wrong = {n: harness.status(j)["Status"] for n, j in jobs.items() if not _refusal_ok(harness.status(j))}
    report(f"SSRF (dev mode): {len(cases)} metadata URLs, {len(cases) - len(wrong)} refused, {len(wrong)} not")
    assert not wrong, wrong
    assert not [c for c in network.connections if c[0] != "127.0.0.1"], network.connections


def test_guard_function_refuses_redirect_hops_directly(server, network):
    """worker.netguard.open_url, the single entry point for downloads, refuses each bad redirect hop itself."""
    from worker.netguard import UrlRefused, open_url

    refused = 0
    for name, target in redirect_targets(server.port):
        with pytest.raises(UrlRefused) as caught:
            open_url(f"http://public.faults.test:{server.port}/redirect?to={target}", False, 5, 10**6).close()
        assert "refused" in str(caught.value), name
        refused += 1
    with contextlib.closing(open_url(f"http://public.faults.test:{server.port}/ctx.tar.gz", False, 5, 10**6)) as ok:
        assert ok.raw.read(10**6, decode_content=False) == GOOD_ARCHIVE
    assert not network.touched_private()
    report(f"SSRF (guard function): {refused} redirect hops to private targets refused, public control fetched")
