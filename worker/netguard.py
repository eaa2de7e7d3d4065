"""The SSRF guard: every URL the worker downloads goes through :func:`open_url`.

Built on the maintained ``requests-hardened`` library, whose adapter resolves
the host once, refuses private and special addresses, and connects to exactly
the address it checked (the resolved IP is pinned: no DNS rebinding between
check and connect).  Its adapter runs again for every redirect hop.  On top of
it this module adds a stricter policy on the pinned address (anything not
globally routable: loopback, private, link-local incl. 169.254.169.254, CGNAT
100.64/10, IPv4-mapped IPv6, unspecified, multicast, reserved), clear
refusal messages, a redirect limit, connect/read timeouts, a size cap, and
``on_socket``: every socket the download opens (first request and redirect
hops) is handed to the caller as soon as it exists, so a job's control can
shut it down mid-connect, mid-headers or mid-body.

``allow_private_urls`` (local stack and tests only) lets loopback and private
addresses through; link-local (cloud metadata), multicast, unspecified and
reserved addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.urls import display_url

MAX_REDIRECTS = 5
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UrlRefused(BuildFailed):
    """A URL (or a redirect) pointed somewhere the worker must not connect to."""


def forbidden_reason(ip: IPAddress, allow_private: bool = False) -> str | None:
    """Why the worker must not connect to ``ip`` (None when it may)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        reason = forbidden_reason(ip.ipv4_mapped, allow_private)
        return f"an IPv4-mapped IPv6 address of {reason}" if reason else None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return None if allow_private else "a loopback address"
    if ip.is_reserved:
        return "a reserved address"
    if ip in _CGNAT:
        return None if allow_private else "a carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_private:
        return None if allow_private else "a private address"
    if not ip.is_global:
        return None if allow_private else "an address that is not publicly routable"
    return None


def _refusal(host: str, ip: str, reason: str) -> UrlRefused:
    return UrlRefused(
        f"refused to download from {host}: it resolves to {ip}, {reason}; only public internet addresses are allowed"
    )


def _parse_ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.strip("[]"))


SocketHook = Callable[[socket.socket], None]


def _hooked_pools(on_socket: SocketHook) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections hand every new socket to ``on_socket`` (before TLS)."""

    class Hook:
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]  # a mixin: the pool class comes after it
            on_socket(sock)
            return sock

    class Connection(Hook, HTTPConnection):
        pass

    class TlsConnection(Hook, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    return {"http": Pool, "https": TlsPool}


class _SocketHookMixin:
    """Installs :func:`_hooked_pools` in an adapter's pool manager when a hook is given."""

    _on_socket: SocketHook | None = None

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[misc]  # a mixin: the adapter class comes after it
        if self._on_socket is not None:
            self.poolmanager.pool_classes_by_scheme = _hooked_pools(self._on_socket)  # type: ignore[attr-defined]  # as above


class GuardedAdapter(_SocketHookMixin, IPFilterAdapter):  # type: ignore[misc]  # requests-hardened ships no types
    """requests-hardened's pinning adapter plus boatyard's stricter policy on the pinned address."""

    def __init__(self, is_https_proto: bool, on_socket: SocketHook | None = None) -> None:
        self._on_socket = on_socket
        super().__init__(is_https_proto=is_https_proto)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host = urllib.parse.urlsplit(request.url).hostname or ""
        try:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        except InvalidIPAddress as exc:
            ip = _parse_ip(str(exc.args[0]))
            raise _refusal(host, str(ip), forbidden_reason(ip) or "not a public address") from None
        ip = _parse_ip(host_params["host"])
        reason = forbidden_reason(ip)
        if reason:
            raise _refusal(host, str(ip), reason)
        return host_params, pool_kwargs


class DevAdapter(_SocketHookMixin, HTTPAdapter):
    """For ``allow_private_urls`` only: loopback/private allowed, metadata and special ranges still refused."""

    def __init__(self, on_socket: SocketHook | None = None) -> None:
        self._on_socket = on_socket
        super().__init__()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urllib.parse.urlsplit(request.url)
        host = parts.hostname or ""
        try:
            infos = socket.getaddrinfo(host, parts.port or 80, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise requests.ConnectionError(f"cannot resolve {host}") from exc
        for info in infos:
            ip = _parse_ip(str(info[4][0]))
            reason = forbidden_reason(ip, allow_private=True)
            if reason:
                raise _refusal(host, str(ip), reason)
        return super().send(request, *args, **kwargs)


def make_session(allow_private: bool, timeout: float, on_socket: SocketHook | None = None) -> requests.Session:
    """A session that applies the guard to the first request and every redirect (``on_socket``: see the module doc)."""
    session: requests.Session = HTTPSession(
        Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=False,
            never_redirect=False,
            default_timeout=(timeout, timeout),
            user_agent_override="boatyard-worker",
        )
    )
    if allow_private:
        session.mount("http://", DevAdapter(on_socket))
        session.mount("https://", DevAdapter(on_socket))
    else:
        session.mount("http://", GuardedAdapter(is_https_proto=False, on_socket=on_socket))
        session.mount("https://", GuardedAdapter(is_https_proto=True, on_socket=on_socket))
    session.trust_env = False  # no proxies or .netrc from the environment: the pinned address is what we reach
    session.max_redirects = MAX_REDIRECTS
    return session


_URL_QUERY = re.compile(r"\?[^\s'\"()<>]*")
MAX_ERROR_DETAIL_CHARS = 300


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of a transport error, for a failure reason a person reads.

    The innermost cause requests/urllib3 wrapped (``ConnectionError`` → ``MaxRetryError`` →
    ``NewConnectionError``), its message with every URL query cut (a redirect's download URL
    can carry a token there), at most :data:`MAX_ERROR_DETAIL_CHARS` characters.
    """
    inner, seen = exc, set()
    while id(inner) not in seen:
        seen.add(id(inner))
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            inner = reason
        elif inner.args and isinstance(inner.args[0], BaseException):
            inner = inner.args[0]
    text = inner.args[0] if inner.args and isinstance(inner.args[0], str) else str(inner)
    text = _URL_QUERY.sub("?…", " ".join(text.split()))
    detail = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    return detail if len(detail) <= MAX_ERROR_DETAIL_CHARS else detail[: MAX_ERROR_DETAIL_CHARS - 1] + "…"


def check_url(url: str) -> urllib.parse.SplitResult:
    """Reject what is not an http(s) URL with a host before any connection."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"refused to download {display_url(url)}: only http and https URLs with a host are allowed")
    return parts


def open_url(
    url: str,
    allow_private: bool,
    timeout: float,
    max_bytes: int,
    on_status: Callable[[requests.Response], None] | None = None,
    headers: dict[str, str] | None = None,
    on_socket: SocketHook | None = None,
) -> requests.Response:
    """GET ``url`` streamed through the guard; the caller reads ``response.raw`` and closes it.

    ``on_status`` may raise for a non-2xx answer (e.g. GitHub's 404); by default
    any non-2xx answer is a :class:`BuildFailed`.  A declared length above
    ``max_bytes`` is refused before reading.
    """
    check_url(url)
    session = make_session(allow_private, timeout, on_socket)
    try:
        # requests drops an Authorization header on a redirect to another host (GitHub's codeload)
        response = session.get(url, stream=True, allow_redirects=True, headers=headers)
    except UrlRefused:
        raise
    except InvalidIPAddress as exc:  # defensive: the adapter translates these
        raise UrlRefused(f"refused to download {display_url(url)}: {exc}") from None
    except requests.TooManyRedirects:
        raise BuildFailed(f"could not download {display_url(url)}: more than {MAX_REDIRECTS} redirects") from None
    except requests.Timeout:
        raise BuildFailed(f"could not download {display_url(url)}: no answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise BuildFailed(f"could not download {display_url(url)}: {describe_error(exc)}") from None
    if on_status is not None:
        try:
            on_status(response)
        except BaseException:
            response.close()
            raise
    if not 200 <= response.status_code < 300:
        response.close()
        raise BuildFailed(
            f"could not download {display_url(url)}: the server answered HTTP {response.status_code} {response.reason or ''}".rstrip()
        )
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise BuildFailed(f"the archive at {display_url(url)} is {declared} bytes; the limit is {max_bytes} bytes")
    return response
