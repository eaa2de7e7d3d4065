"""The SSRF guard: which addresses a tarball URL may reach, pinning, redirects, size and timeouts."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from requests.adapters import HTTPAdapter

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.urls import display_url
from worker import netguard
from worker.netguard import GuardedAdapter, UrlRefused, forbidden_reason, make_session, open_url


@pytest.mark.parametrize(
    "ip, words",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:169.254.169.254", "IPv4-mapped"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("fc00::1", "private"),
        ("198.18.0.1", "private"),
    ],
)
def test_special_addresses_are_refused(ip, words):
    reason = forbidden_reason(ipaddress.ip_address(ip))
    assert reason and words in reason


@pytest.mark.parametrize("ip", ["93.184.216.34", "140.82.121.4", "2606:4700::6810:85e5", "100.128.0.1"])
def test_public_addresses_are_allowed(ip):
    assert forbidden_reason(ipaddress.ip_address(ip)) is None


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.5", "192.168.0.2", "100.64.1.1"])
def test_allow_private_lets_local_addresses_through(ip):
    assert forbidden_reason(ipaddress.ip_address(ip), allow_private=True) is None


@pytest.mark.parametrize("ip", ["169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0", "224.0.0.1", "240.0.0.1"])
def test_allow_private_still_refuses_metadata_and_special_addresses(ip):
    assert forbidden_reason(ipaddress.ip_address(ip), allow_private=True)


class _Server:
    """A local server: /blob (200 body), /redirect?to=<url> (302)."""

    def __init__(self, body: bytes = b"hello", chunked: bool = False) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                hits.append(self.path)
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/missing":
                    self.send_response(404, "Not Found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_loopback_url_is_refused_before_any_request(server):
    with pytest.raises(UrlRefused) as caught:
        open_url(server.url + "/blob", allow_private=False, timeout=5, max_bytes=10**6)
    assert "refused to download from 127.0.0.1" in caught.value.message and "loopback" in caught.value.message
    assert server.hits == []


def test_localhost_name_is_refused(server):
    port = server.url.rsplit(":", 1)[1]
    with pytest.raises(UrlRefused) as caught:
        open_url(f"http://localhost:{port}/blob", allow_private=False, timeout=5, max_bytes=10**6)
    assert "loopback" in caught.value.message and server.hits == []


def test_metadata_address_is_refused():
    with pytest.raises(UrlRefused) as caught:
        open_url("http://169.254.169.254/latest/meta-data/", allow_private=False, timeout=2, max_bytes=10**6)
    assert "link-local" in caught.value.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.tar", "gopher://x", "http:///nohost"])
def test_only_http_urls(url):
    with pytest.raises(UrlRefused):
        open_url(url, allow_private=True, timeout=2, max_bytes=10**6)


def test_allow_private_fetches_from_loopback(server):
    response = open_url(server.url + "/blob", allow_private=True, timeout=5, max_bytes=10**6)
    with response:
        assert response.raw.read() == b"hello"


def test_every_redirect_is_checked_again_in_strict_mode(server):
    # the first hop goes through a plain adapter (as if it were a public host); the redirect target must
    # then pass the guard again — and 127.0.0.1 on another port does not.
    session = make_session(allow_private=False, timeout=5)
    session.mount(server.url + "/redirect", HTTPAdapter())
    other = _Server()
    try:
        with pytest.raises(UrlRefused) as caught:
            session.get(f"{server.url}/redirect?to={other.url}/blob", stream=True)
        assert "loopback" in caught.value.message
        assert other.hits == []
    finally:
        other.close()


def test_redirect_to_metadata_is_refused_even_with_allow_private(server):
    with pytest.raises(UrlRefused) as caught:
        open_url(
            f"{server.url}/redirect?to=http://169.254.169.254/latest", allow_private=True, timeout=5, max_bytes=10**6
        )
    assert "link-local" in caught.value.message


def test_resolved_address_is_pinned(monkeypatch):
    """The connection goes to the address that was checked, not to a second DNS answer."""
    answers = iter([("93.184.216.34", 80), ("127.0.0.1", 80)])

    def fake_getaddrinfo(host, port, *args, **kwargs):
        ip, p = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, p))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    adapter = GuardedAdapter(is_https_proto=False)
    request = requests.Request("GET", "http://rebind.example/archive.tar.gz").prepare()
    host_params, _ = adapter.build_connection_pool_key_attributes(request, True)
    assert host_params["host"] == "93.184.216.34"
    assert request.headers["Host"] == "rebind.example"


def test_declared_size_over_the_cap_is_refused():
    big = _Server(body=b"x" * 5000)
    try:
        with pytest.raises(BuildFailed) as caught:
            open_url(big.url + "/blob", allow_private=True, timeout=5, max_bytes=1000)
        assert "5000 bytes; the limit is 1000 bytes" in caught.value.message
    finally:
        big.close()


def test_http_errors_fail_with_the_status(server):
    with pytest.raises(BuildFailed) as caught:
        open_url(server.url + "/redirect?to=/missing", allow_private=True, timeout=5, max_bytes=10**6)
    assert caught.value.message == f"could not download {server.url}/redirect: the server answered HTTP 404 Not Found"


def test_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection but never answers
    try:
        with pytest.raises(BuildFailed) as caught:
            open_url(f"http://127.0.0.1:{listener.getsockname()[1]}/x", allow_private=True, timeout=1, max_bytes=10**6)
        assert "no answer within 1 s" in caught.value.message
    finally:
        listener.close()


def test_urls_in_reasons_drop_userinfo_and_query():
    assert display_url("https://u:p@host:8443/a.tar.gz?sig=secret") == "https://host:8443/a.tar.gz"


def test_a_failed_download_names_its_inner_cause_without_the_url_query():
    """The reason carries what broke (the innermost exception), never a query string (redirect tokens live there)."""
    with pytest.raises(BuildFailed) as caught:
        open_url("http://127.0.0.1:1/a.tgz?token=s3cr3t-redirect-token", allow_private=True, timeout=5, max_bytes=10**6)
    message = caught.value.message
    assert "NewConnectionError" in message and "Connection refused" in message, message
    assert "s3cr3t" not in message
    chained = requests.ConnectionError(
        OSError("Max retries exceeded with url: /x?X-Amz-Signature=s3cr3t (Caused by something)")
    )
    assert netguard.describe_error(chained) == "OSError: Max retries exceeded with url: /x?… (Caused by something)"
    assert len(netguard.describe_error(OSError("x" * 1000))) == netguard.MAX_ERROR_DETAIL_CHARS


def test_a_body_cut_short_fails_the_job_with_the_protocol_error():
    """A server that declares more than it sends: the job fails saying the connection broke and how."""
    from chalicelib.domain.settings import load_settings
    from worker.job.control import JobControl
    from worker.sources.download import download

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)

    threading.Thread(target=serve, daemon=True).start()
    settings = load_settings({"BOATYARD_ALLOW_PRIVATE_URLS": "true"})
    try:
        with pytest.raises(BuildFailed) as caught:
            with download(
                f"http://127.0.0.1:{listener.getsockname()[1]}/a.tgz", "the download", settings, 10**6, JobControl()
            ) as body:
                while body.read(65536):
                    pass
    finally:
        listener.close()
    assert caught.value.message.startswith(
        "the download was interrupted (ProtocolError: Connection broken: IncompleteRead("
    )
